'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { NexaDB, NexaDBError } = require('..');
const { startServer, uniqueName } = require('./server');
const { ordered, withoutSystemFields } = require('./compare');

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

const isCode = (name) => (e) => e instanceof NexaDBError && e.codeName === name;

test('the brief\'s Quick Start', async () => {
  const users = db.collection(uniqueName('users'));
  const userId = await users.insert({ name: 'Alice Johnson', email: 'alice@example.com', age: 28, tags: ['javascript', 'database'] });
  assert.strictEqual(typeof userId, 'string');
  const results = await users.find({ age: { $gt: 25 } });
  assert.deepStrictEqual(results.map((u) => [u.name, u.age]), [['Alice Johnson', 28]]);
  assert.strictEqual(await users.update(userId, { age: 29 }), true);
  assert.strictEqual((await users.findById(userId)).age, 29);
  assert.strictEqual(await users.delete(userId), true);
  assert.strictEqual(await users.findById(userId), null);
  assert.strictEqual(await users.delete(userId), false);
  assert.strictEqual(await users.update(userId, { age: 1 }), false);
});

test('documents round-trip with their types, key order and system fields', async () => {
  const c = db.collection(uniqueName('types'));
  const doc = { s: 'x', i: 7, f: 2.5, b: false, n: null, arr: [1, [2], { k: 'v', a: [] }], nested: { z: { v: 1 }, a: {} } };
  const id = await c.insert(doc);
  const got = await c.findById(id);
  assert.strictEqual(got._id, id);
  assert.ok(got._created_at && got._updated_at);
  assert.deepStrictEqual(ordered(withoutSystemFields(got)), ordered(doc));
});

test('int64 extremes, dates and binary round-trip through the server', async () => {
  const c = db.collection(uniqueName('bson'));
  const doc = {
    max: 2n ** 63n - 1n, min: -(2n ** 63n), over: 2n ** 53n + 1n, safe: 2n ** 53n - 1n, small: 42n, n: 42,
    wide: 2 ** 40, frac: 0.1,
    at: new Date('2024-02-29T12:34:56.789Z'), before: new Date(-1),
    raw: Buffer.from([0, 1, 2, 254, 255]), empty: new Uint8Array(0),
    nested: [{ when: new Date(1), big: [2n ** 62n] }],
  };
  const id = await c.insert(doc);
  const got = withoutSystemFields(await c.findById(id));
  assert.deepStrictEqual(ordered(got), ordered({
    ...doc, safe: 2 ** 53 - 1, small: 42, raw: Buffer.from([0, 1, 2, 254, 255]), empty: Buffer.alloc(0),
  }));
  assert.strictEqual(typeof got.max, 'bigint');
  assert.strictEqual(got.at.getUTCMilliseconds(), 789);
  // the same values in filters and updates
  assert.deepStrictEqual((await c.find({ max: 2n ** 63n - 1n, at: { $gt: new Date('2024-02-29T12:34:56.788Z') } })).map((d) => d._id), [id]);
  assert.strictEqual(await c.count({ raw: Buffer.from([0, 1, 2, 254, 255]) }), 1);
  assert.strictEqual(await c.update(id, { $inc: { over: 1n }, $set: { at: new Date(1000) } }), true);
  const after = await c.findById(id);
  assert.strictEqual(after.over, 2n ** 53n + 2n);
  assert.strictEqual(after.at.getTime(), 1000);
});

test('update and delete of an id no document has resolve to false', async () => {
  const c = db.collection(uniqueName('missing'));
  await c.insert({ _id: 'here' });
  assert.strictEqual(await c.update('nowhere', { a: 1 }), false);
  assert.strictEqual(await c.delete('nowhere'), false);
  assert.strictEqual(await c.count(), 1);
  assert.strictEqual(await db.collection(uniqueName('nocoll')).delete('x'), false);
  await assert.rejects(c.update('here', { $bogus: 1 }), isCode('INVALID_ARGUMENT')); // other errors still reject
});

test('insertMany, count, findOne, find options', async () => {
  const c = db.collection(uniqueName('many'));
  const ids = await c.insertMany([0, 1, 2, 3, 4, 5].map((i) => ({ n: i, even: i % 2 === 0 })));
  assert.strictEqual(ids.length, 6);
  assert.strictEqual(await c.count(), 6);
  assert.strictEqual(await c.count({ even: true }), 3);
  assert.strictEqual((await c.findOne({ n: 3 })).n, 3);
  assert.strictEqual(await c.findOne({ n: 99 }), null);
  assert.strictEqual((await c.findOne({ even: true }, { sort: { n: -1 } })).n, 4);
  assert.deepStrictEqual((await c.find({}, 3, { sort: '-n' })).map((d) => d.n), [5, 4, 3]);
  assert.deepStrictEqual((await c.find({ even: true }, 2, { sort: [['n', 1]], skip: 1 })).map((d) => d.n), [2, 4]);
  const proj = await c.find({ n: 0 }, 0, { projection: { n: 1 } });
  assert.deepStrictEqual(Object.keys(proj[0]).sort(), ['_id', 'n']);
});

test('updateMany merges plain fields, deleteMany counts', async () => {
  const c = db.collection(uniqueName('upd'));
  await c.insertMany([{ city: 'SF', status: 'active' }, { city: 'SF', status: 'inactive' }, { city: 'NY', status: 'inactive' }]);
  assert.strictEqual(await c.updateMany({ city: 'SF' }, { country: 'USA' }), 2);
  assert.strictEqual(await c.count({ country: 'USA' }), 2);
  assert.strictEqual(await c.deleteMany({ status: 'inactive' }), 2);
  assert.strictEqual(await c.count(), 1);
});

test('aggregate: the brief\'s pipeline', async () => {
  const c = db.collection(uniqueName('agg'));
  await c.insertMany([
    { name: 'Laptop', category: 'Electronics', price: 1200 },
    { name: 'Mouse', category: 'Electronics', price: 25 },
    { name: 'Desk', category: 'Furniture', price: 300 },
  ]);
  const out = await c.aggregate([
    { $group: { _id: '$category', count: { $sum: 1 }, avg_price: { $avg: '$price' } } },
    { $sort: { count: -1 } },
  ]);
  assert.deepStrictEqual(out, [
    { _id: 'Electronics', count: 2, avg_price: 612.5 },
    { _id: 'Furniture', count: 1, avg_price: 300 },
  ]);
  const lazy = [];
  for await (const d of c.aggregateIter([{ $sort: { price: 1 } }], { pageSize: 1 })) lazy.push(d.name);
  assert.deepStrictEqual(lazy, ['Mouse', 'Desk', 'Laptop']);
});

test('streaming find over many messages, and lazily', async () => {
  const c = db.collection(uniqueName('stream'));
  const n = 5000;
  for (let start = 0; start < n; start += 1000) {
    await c.insertMany(Array.from({ length: 1000 }, (_, i) => ({ i: start + i, pad: 'x'.repeat(100) })));
  }
  const all = await c.find({}, 0, { pageSize: 128 });
  assert.strictEqual(all.length, n);
  assert.strictEqual(new Set(all.map((d) => d.i)).size, n);
  assert.strictEqual((await c.find()).length, n);
  let seen = 0;
  for await (const d of c.findIter({}, 0, { pageSize: 64 })) {
    assert.ok(typeof d.i === 'number');
    if (++seen === 10) break; // cancels the rest of the stream
  }
  assert.strictEqual(seen, 10);
  assert.strictEqual(await c.count(), n);
});

test('errors carry the gRPC code', async () => {
  const c = db.collection(uniqueName('err'));
  await c.insert({ _id: 'dup', a: 1 });
  await assert.rejects(c.insert({ _id: 'dup' }), isCode('ALREADY_EXISTS'));
  await assert.rejects(c.find({ a: { $bogus: 1 } }), isCode('INVALID_ARGUMENT'));
  await assert.rejects(c.aggregate([{ $nosuchstage: {} }]), isCode('INVALID_ARGUMENT'));
  const anon = new NexaDB({ host: '127.0.0.1', port: server.port, apiKey: '' });
  const saved = process.env.NEXADB_API_KEY;
  delete process.env.NEXADB_API_KEY;
  await assert.rejects(anon.collection(c.name).insert({ a: 1 }), isCode('UNAUTHENTICATED'));
  await assert.rejects(anon.collection(c.name).find(), isCode('UNAUTHENTICATED'));
  anon.close();
  if (saved !== undefined) process.env.NEXADB_API_KEY = saved;
});

test('collections: list and drop', async () => {
  const name = uniqueName('coll');
  await db.collection(name).insert({ a: 1 });
  const info = (await db.listCollections()).find((x) => x.name === name);
  assert.ok(info && info.count === 1 && info.kind === 'documents');
  assert.strictEqual(await db.dropCollection(name), true);
  assert.strictEqual(await db.dropCollection(name), false);
});

test('key order reaches the server: stored order and compound sorts', async () => {
  const c = db.collection(uniqueName('order'));
  const keys = ['zeta', 'alpha', 'mid', 'beta', 'omega', 'gamma', 'kappa', 'delta', 'eps', 'iota'];
  const doc = Object.fromEntries(keys.map((k, i) => [k, i]));
  const id = await c.insert(doc);
  assert.deepStrictEqual(Object.keys(withoutSystemFields(await c.findById(id))), keys);
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/collections/${c.name}/${id}`,
    { headers: { 'x-api-key': server.apiKey } });
  assert.strictEqual(res.status, 200);
  const text = await res.text();
  const stored = keys.map((k) => text.indexOf(`"${k}"`));
  assert.deepStrictEqual([...stored].sort((a, b) => a - b), stored); // JSON text keeps the order
  await c.insertMany([{ g: 'b', n: 1 }, { g: 'a', n: 2 }, { g: 'a', n: 1 }, { g: 'b', n: 2 }]);
  const pairs = (docs) => docs.map((d) => `${d.g}${d.n}`).join(' ');
  const m = { $match: { g: { $exists: true } } };
  assert.strictEqual(pairs(await c.aggregate([m, { $sort: { n: -1, g: 1 } }])), 'a2 b2 a1 b1');
  assert.strictEqual(pairs(await c.aggregate([m, { $sort: { g: 1, n: -1 } }])), 'a2 a1 b2 b1');
  assert.strictEqual(pairs(await c.find({ g: { $exists: true } }, 0, { sort: { n: -1, g: 1 } })), 'a2 b2 a1 b1');
  assert.strictEqual(pairs(await c.find({ g: { $exists: true } }, 0, { sort: { g: 1, n: -1 } })), 'a2 a1 b2 b1');
  assert.strictEqual(pairs(await c.find({ g: { $exists: true } }, 0, { sort: [['g', -1], ['n', 1]] })), 'b1 b2 a1 a2');
  assert.strictEqual(pairs([await c.findOne({ g: { $exists: true } }, { sort: { n: 1, g: -1 } })]), 'b1');
});

test('createCollection and indexes', async () => {
  const name = uniqueName('idx');
  const info = await db.createCollection(name);
  assert.strictEqual(info.name, name);
  assert.strictEqual(info.count, 0);
  await assert.rejects(db.createCollection(name), (e) => e instanceof NexaDBError && e.codeName === 'ALREADY_EXISTS');
  const c = db.collection(name);
  await c.insertMany([{ city: 'SF', age: 30, tags: ['a', 'b'] }, { city: 'NY', age: 40 }]);
  const idx = await c.createIndex({ city: 1, age: -1 });
  assert.deepStrictEqual(idx.fields, [['city', 1], ['age', -1]]);
  assert.ok(idx.name);
  const multi = await c.createIndex('tags', { name: 'by_tags' });
  assert.strictEqual(multi.name, 'by_tags');
  assert.strictEqual(multi.multikey, true);
  const uniq = await c.createIndex([['age', 1]], { unique: true });
  assert.strictEqual(uniq.unique, true);
  assert.strictEqual(uniq.expireAfterSeconds, null);
  const ttl = await c.createIndex('seen', { expireAfterSeconds: 3600 });
  assert.strictEqual(ttl.expireAfterSeconds, 3600);
  await assert.rejects(c.createIndex({ a: 1, b: 1 }, { expireAfterSeconds: 10 }), (e) => e.codeName === 'INVALID_ARGUMENT');
  await assert.rejects(c.insert({ city: 'LA', age: 30 }), NexaDBError);
  const names = (await c.listIndexes()).map((i) => i.name);
  for (const n of [idx.name, 'by_tags', uniq.name]) assert.ok(names.includes(n), n);
  assert.strictEqual(await c.dropIndex('by_tags'), true);
  assert.strictEqual(await c.dropIndex('by_tags'), false);
  await c.drop();
});
