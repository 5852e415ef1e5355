'use strict';
// Three real servers as a cluster over TLS, where followers do not pass calls on but refuse them
// naming the leader (certificates from tests/tls/mkcerts.sh): a client connected to a follower
// follows the redirect and then points at the leader; with no leader known the refusal comes back.
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { NexaDB } = require('..');
const { startCluster, uniqueName } = require('./server');

const KEY = 'cluster-test-key';
const certs = fs.mkdtempSync(path.join(os.tmpdir(), 'nexadb-js-certs-'));
const address = (node) => `127.0.0.1:${node.port}`;
const clients = [];
let nodes, leader, followers;

function connect(node, options = {}) {
  const db = new NexaDB({
    host: '127.0.0.1', port: node.port, apiKey: KEY, timeoutMs: 10000,
    rootCerts: fs.readFileSync(path.join(certs, 'ca.crt')), ...options,
  });
  clients.push(db);
  return db;
}

// The node's AdminService/Status, cluster part (status() leaves it out).
async function clusterStatus(db) {
  return (await db.unary('admin', 'Status', {})).cluster;
}

test.before(async () => {
  execFileSync(path.resolve(__dirname, '../../../tests/tls/mkcerts.sh'), [certs]);
  nodes = await startCluster(3, ['--api-key', KEY, '--shutdown-grace', '2',
    '--tls-cert', path.join(certs, 'server.crt'), '--tls-key', path.join(certs, 'server.key')]);
  // the leader, once every node names it by its gRPC address (which it announces through the
  // log; until then a node knows only its Raft address and redirects nowhere)
  const dbs = nodes.map(connect);
  const deadline = Date.now() + 30000;
  for (;;) {
    const st = await Promise.all(dbs.map(clusterStatus));
    const i = st.findIndex((c) => c.role === 'leader');
    if (i >= 0 && st.every((c) => c.leader_address === address(nodes[i]))) {
      leader = nodes[i];
      break;
    }
    if (Date.now() > deadline) throw new Error(`no leader known to all: ${JSON.stringify(st)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  followers = nodes.filter((s) => s !== leader);
});

test.after(async () => {
  for (const db of clients) db.close();
  await Promise.all((nodes ?? []).map((s) => s.stop()));
  fs.rmSync(certs, { recursive: true, force: true });
});

const name = uniqueName();

test('a client on a follower follows the redirect to the leader', async () => {
  const db = connect(followers[0]);
  const users = db.collection(name);
  await users.insert({ n: 1 });
  assert.strictEqual(db.target, address(leader));
  assert.strictEqual((await users.find({})).length, 1);
  assert.strictEqual(await users.count({}), 1);
});

test('streams opened on a follower are redirected before their first message', async () => {
  const db = connect(followers[1]);
  assert.strictEqual((await db.collection(name).find({})).length, 1);
  assert.strictEqual(db.target, address(leader));

  const stream = connect(followers[0]).collection(name).watch();
  try {
    await stream.ready();
    await db.collection(name).insert({ n: 2 });
    const { value } = await stream.next();
    assert.strictEqual(value.operationType, 'insert');
    assert.strictEqual(value.fullDocument.n, 2);
  } finally { stream.close(); }
});

test("a 'local' client reads on its follower; the default one is redirected to the leader", async () => {
  const writer = connect(leader);
  const coll = uniqueName();
  await writer.collection(coll).insert({ n: 1 });
  assert.ok(writer.lastLogIndex > 0, 'an insert in a cluster returns its log index');

  const local = connect(followers[0], { readConcern: 'local' });
  while ((await local.collection(coll).count({})) !== 1) await new Promise((r) => setTimeout(r, 50));
  assert.strictEqual((await local.collection(coll).find({})).length, 1);
  assert.strictEqual(local.target, address(followers[0]));

  const linear = connect(followers[0]);
  assert.strictEqual(await linear.collection(coll).count({}), 1);
  assert.strictEqual(linear.target, address(leader));

  // a session without a log index yet reads locally too
  const fresh = connect(followers[1], { readConcern: 'session' });
  await fresh.collection(coll).count({});
  assert.strictEqual(fresh.target, address(followers[1]));
  assert.strictEqual(fresh.lastLogIndex, 0);
});

test("a 'session' read waits for the client's last write on a follower", async () => {
  const coll = uniqueName();
  const frozen = followers[1];
  const reader = connect(frozen, { readConcern: 'session' });
  await reader.status(); // the connection, open before the freeze
  frozen.proc.kill('SIGSTOP');
  const resume = () => frozen.proc.kill('SIGCONT');
  try {
    // the write commits on the leader and the other follower
    const session = connect(leader, { readConcern: 'session' });
    const id = await session.collection(coll).insert({ n: 2 });
    assert.ok(session.lastLogIndex > 0);
    reader.advanceLogIndex(session.lastLogIndex);
    assert.strictEqual(reader.lastLogIndex, session.lastLogIndex);
    setTimeout(resume, 500);
    const doc = await reader.collection(coll).findById(id);
    assert.strictEqual(doc?.n, 2);
    assert.strictEqual(reader.target, address(frozen));

    // an entry no node has: the read waits for it until its deadline
    const impatient = connect(frozen, { readConcern: 'session', timeoutMs: 300 });
    impatient.advanceLogIndex(session.lastLogIndex + 1000);
    await assert.rejects(impatient.collection(coll).count({}));
  } finally { resume(); }
});

test('readConcern and advanceLogIndex check their values', () => {
  assert.throws(() => new NexaDB({ readConcern: 'majority' }), TypeError);
  const db = new NexaDB({ host: '127.0.0.1', port: 1 });
  db.advanceLogIndex(7);
  db.advanceLogIndex(3);
  assert.strictEqual(db.lastLogIndex, 7);
  assert.throws(() => db.advanceLogIndex(-1), TypeError);
  db.close();
});

test('with no leader known the refusal is returned', async () => {
  const onLeader = connect(followers[1]);
  await onLeader.status(); // points at the leader
  await onLeader.collection(name).count({});
  assert.strictEqual(onLeader.target, address(leader));

  await leader.stop();
  await followers[0].stop();
  const last = connect(followers[1]);
  while ((await clusterStatus(last)).leader_address !== '') await new Promise((r) => setTimeout(r, 100));
  await assert.rejects(last.collection(name).insert({ n: 3 }),
    (e) => e.code === 14 /* UNAVAILABLE */ && /no leader is known/.test(e.details));
  assert.strictEqual(last.target, address(followers[1]));
  // the transport's UNAVAILABLE (the leader is gone): returned, not sent elsewhere
  await assert.rejects(onLeader.collection(name).count({}), (e) => e.code === 14);
  assert.strictEqual(onLeader.target, address(leader));
});
