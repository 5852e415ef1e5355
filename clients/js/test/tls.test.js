'use strict';
// TLS and mTLS handshakes against a real server, with certificates made fresh by
// tests/tls/mkcerts.sh (good, expired, wrong CA; client certificates).
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { NexaDB } = require('..');
const { startServer } = require('./server');

const certs = fs.mkdtempSync(path.join(os.tmpdir(), 'nexadb-js-certs-'));
const pem = (name) => fs.readFileSync(path.join(certs, name));
const serverArgs = (cert, clientCa) => [
  '--tls-cert', path.join(certs, `${cert}.crt`), '--tls-key', path.join(certs, `${cert}.key`),
  ...(clientCa ? ['--tls-client-ca', path.join(certs, clientCa)] : []),
];
let tlsServer, expiredServer, mtlsServer;

test.before(async () => {
  execFileSync(path.resolve(__dirname, '../../../tests/tls/mkcerts.sh'), [certs]);
  tlsServer = await startServer(serverArgs('server'));
  expiredServer = await startServer(serverArgs('expired'));
  mtlsServer = await startServer(serverArgs('server', 'ca.crt'));
});
test.after(async () => {
  await Promise.all([tlsServer, expiredServer, mtlsServer].map((s) => s && s.stop()));
  fs.rmSync(certs, { recursive: true, force: true });
});

// A fresh channel per attempt (grpc-js may share connections between equal channels).
function connect(server, opts) {
  return new NexaDB({
    host: 'localhost', port: server.port, apiKey: server.apiKey, timeoutMs: 5000,
    channelOptions: { 'grpc.use_local_subchannel_pool': 1 }, ...opts,
  });
}

async function ok(server, opts) {
  const db = connect(server, opts);
  try {
    assert.strictEqual((await db.status()).status, 'ok');
    await db.stats();
  } finally { db.close(); }
}

async function refused(server, opts) {
  const db = connect(server, opts);
  try {
    await assert.rejects(db.status(), (e) => e.code === 14 /* UNAVAILABLE */);
  } finally { db.close(); }
}

test('TLS with the right CA', () => ok(tlsServer, { rootCerts: pem('ca.crt') }));
test('TLS with the wrong CA is refused', () => refused(tlsServer, { rootCerts: pem('other-ca.crt') }));
test('TLS to an expired certificate is refused', () => refused(expiredServer, { rootCerts: pem('ca.crt') }));
test('plaintext to a TLS server is refused', () => refused(tlsServer, {}));

test('mTLS with a client certificate', () =>
  ok(mtlsServer, { rootCerts: pem('ca.crt'), clientCert: pem('client.crt'), clientKey: pem('client.key') }));
test('mTLS without a client certificate is refused', () => refused(mtlsServer, { rootCerts: pem('ca.crt') }));
test('mTLS with a certificate from another CA is refused', () =>
  refused(mtlsServer, { rootCerts: pem('ca.crt'), clientCert: pem('client-other.crt'), clientKey: pem('client-other.key') }));
test('mTLS with an expired client certificate is refused', () =>
  refused(mtlsServer, { rootCerts: pem('ca.crt'), clientCert: pem('client-expired.crt'), clientKey: pem('client-expired.key') }));

test('clientCert without clientKey is a TypeError', () => {
  assert.throws(() => new NexaDB({ clientCert: pem('client.crt') }), TypeError);
});
