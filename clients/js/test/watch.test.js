'use strict';
// Change streams (Collection.watch, NexaDB.watch) against a real server: events in commit
// order, resumeToken, resuming from a token, close(), and the one reconnection after the
// server is killed and restarted on its port.
const test = require('node:test');
const assert = require('node:assert');
const { NexaDB, ChangeStream } = require('..');
const { startServer, uniqueName } = require('./server');

let server;
let db;
test.before(async () => {
  server = await startServer();
  db = new NexaDB({ host: '127.0.0.1', port: server.port, apiKey: server.apiKey });
});
test.after(async () => {
  db.close();
  await server.stop();
});

// a stream starts from the server's position when its handler runs
const settle = () => new Promise((r) => setTimeout(r, 500)); // for a next() to be waiting
const op = (e) => `${e.operationType} ${e.documentKey?._id}`;

/** The next n events of stream, as 'operationType id', without closing it. */
async function take(stream, n) {
  const out = [];
  while (out.length < n) {
    const r = await stream.next();
    if (r.done) throw new Error(`the stream ended after ${out.length} of ${n} events`);
    out.push(op(r.value));
  }
  return out;
}

test('insert, update and delete come in order; resumeAfter delivers exactly the rest', async () => {
  const c = db.collection(uniqueName());
  const stream = c.watch();
  assert.ok(stream instanceof ChangeStream);
  await stream.ready(); // in place: the writes below all come
  await c.insertMany([{ _id: 'a', n: 1 }, { _id: 'b' }]);
  await c.update('a', { $set: { n: 2 } });
  await c.delete('b');
  const got = await take(stream, 2);
  const second = stream.resumeToken; // the second event's, though more came in the same message
  got.push(...await take(stream, 2));
  assert.deepStrictEqual(got, ['insert a', 'insert b', 'update a', 'delete b']);
  stream.close();
  assert.deepStrictEqual(await stream.next(), { done: true, value: undefined });

  const rest = c.watch({ resumeAfter: second, fullDocument: 'updateLookup' });
  const seen = [];
  for await (const e of rest) {
    seen.push(op(e));
    if (e.operationType === 'update') assert.strictEqual(e.fullDocument.n, 2);
    if (seen.length === 2) break; // closes the stream
  }
  assert.deepStrictEqual(seen, ['update a', 'delete b']);
  assert.deepStrictEqual(await rest.next(), { done: true, value: undefined });
});

test('close() ends a pending next(); a pipeline; the invalidate event ends the stream', async () => {
  const c = db.collection(uniqueName());
  const idle = c.watch();
  const pending = idle.next();
  await settle();
  idle.close();
  assert.deepStrictEqual(await pending, { done: true, value: undefined });

  const all = db.watch({ pipeline: [{ $match: { 'ns.coll': c.name } }] });
  const deletes = c.watch({ pipeline: [{ $match: { operationType: { $in: ['delete', 'invalidate'] } } }] });
  await Promise.all([all.ready(), deletes.ready()]);
  await c.insert({ _id: 'a' });
  await c.delete('a');
  await c.drop();
  const ops = [];
  for await (const e of deletes) ops.push(e.operationType);
  assert.deepStrictEqual(ops, ['delete', 'invalidate']);
  assert.deepStrictEqual(await take(all, 3), ['insert a', 'delete a', 'drop undefined']);
  all.close();
});

test('a dropped connection is resumed once, after the last token', async () => {
  const s = await startServer();
  const own = new NexaDB({ host: '127.0.0.1', port: s.port, apiKey: s.apiKey });
  try {
    const c = own.collection('w');
    const stream = c.watch();
    await stream.ready();
    await c.insertMany([{ _id: '1' }, { _id: '2' }]);
    assert.deepStrictEqual(await take(stream, 2), ['insert 1', 'insert 2']);
    await s.restart();
    await c.insert({ _id: '3' });
    await c.delete('1');
    assert.deepStrictEqual(await take(stream, 2), ['insert 3', 'delete 1']);
    stream.close();
  } finally {
    own.close();
    await s.stop();
  }
});

test('a server that stays down fails the stream after timeoutMs', async () => {
  const s = await startServer();
  const own = new NexaDB({ host: '127.0.0.1', port: s.port, apiKey: s.apiKey, timeoutMs: 1500 });
  try {
    const stream = own.collection('w').watch();
    await stream.ready();
    s.proc.kill('SIGKILL');
    const t0 = Date.now();
    await assert.rejects(stream.next(), (e) => e.codeName === 'UNAVAILABLE');
    assert.ok(Date.now() - t0 >= 1000, 'it waited for the server before giving up');
    assert.deepStrictEqual(await stream.next(), { done: true, value: undefined });
  } finally {
    own.close();
    await s.stop();
  }
});
