'use strict';
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { NexaDB, NexaDBError, DEFAULT_PORT } = require('..');
const { startServer } = require('./server');

let server;
test.before(async () => { server = await startServer(); });
test.after(async () => { await server.stop(); });

test('default port is the gRPC port', () => {
  assert.strictEqual(DEFAULT_PORT, 6970);
  const db = new NexaDB();
  assert.strictEqual(db.port, 6970);
  assert.strictEqual(db.host, 'localhost');
  db.close();
});

test('status needs no key', async () => {
  const db = new NexaDB({ host: '127.0.0.1', port: server.port, apiKey: '' });
  const st = await db.status();
  assert.strictEqual(st.status, 'ok');
  assert.ok(st.version);
  db.close();
});

test('stats with the key', async () => {
  const db = new NexaDB({ host: '127.0.0.1', port: server.port, apiKey: server.apiKey });
  const s = await db.stats();
  assert.ok(s.rss_bytes > 0);
  assert.ok(Array.isArray(s.collections));
  db.close();
});

test('missing key rejects with UNAUTHENTICATED', async () => {
  const saved = process.env.NEXADB_API_KEY;
  delete process.env.NEXADB_API_KEY;
  const db = new NexaDB({ host: '127.0.0.1', port: server.port });
  await assert.rejects(db.stats(), (e) => {
    assert.ok(e instanceof NexaDBError);
    assert.strictEqual(e.codeName, 'UNAUTHENTICATED');
    assert.strictEqual(e.code, 16);
    assert.match(e.details, /API key/);
    assert.strictEqual(e.method, 'Stats');
    return true;
  });
  db.close();
  if (saved !== undefined) process.env.NEXADB_API_KEY = saved;
});

test('api key from the environment', async () => {
  process.env.NEXADB_API_KEY = server.apiKey;
  const db = new NexaDB({ host: '127.0.0.1', port: server.port });
  assert.ok((await db.stats()).rss_bytes > 0);
  db.close();
  delete process.env.NEXADB_API_KEY;
});

test('unreachable server rejects with UNAVAILABLE', async () => {
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const db = new NexaDB({ host: '127.0.0.1', port, apiKey: 'k', timeoutMs: 3000 });
  await assert.rejects(db.status(), (e) => e instanceof NexaDBError && e.codeName === 'UNAVAILABLE');
  await assert.rejects(db.collection('c').find({}), (e) => e instanceof NexaDBError && e.codeName === 'UNAVAILABLE');
  db.close();
});

test('bad arguments are refused before sending', async () => {
  const db = new NexaDB({ host: '127.0.0.1', port: server.port, apiKey: server.apiKey });
  const c = db.collection('c');
  await assert.rejects(c.insert({ f: () => 1 }), TypeError);
  await assert.rejects(c.insert({ big: 2n ** 64n }), /RangeError: big: .* is outside int64/);
  await assert.rejects(c.find({ a: new Map() }), /TypeError: query\.a: Map/);
  await assert.rejects(c.updateMany({}, { $set: { a: [undefined] } }), /TypeError: update\.\$set\.a\[0\]/);
  await assert.rejects(c.find({}, 0, { sort: { a: 2 } }), RangeError);
  await assert.rejects(c.aggregate({ $match: {} }), TypeError);
  await assert.rejects(db.vectorCollection('v', { dimensions: 3, metric: 'hamming' }), RangeError);
  const vc = await db.vectorCollection('v');
  await assert.rejects(vc.insertMany([{}, {}], [[1]]), RangeError);
  db.close();
});

test('TLS to a plaintext server fails cleanly', async () => {
  const db = new NexaDB({ host: '127.0.0.1', port: server.port, tls: true, timeoutMs: 3000 });
  await assert.rejects(db.status(), (e) => e instanceof NexaDBError &&
    ['UNAVAILABLE', 'DEADLINE_EXCEEDED'].includes(e.codeName));
  db.close();
});
