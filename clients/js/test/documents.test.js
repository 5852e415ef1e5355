'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { NexaDB, NexaDBError } = require('..');
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

test('documents round-trip with their types and system fields', async () => {
  const c = db.collection(uniqueName('types'));
  const doc = { s: 'x', i: 7, f: 2.5, b: false, n: null, arr: [1, [2], { k: 'v' }], nested: { deep: { v: 1 } } };
  const id = await c.insert(doc);
  const got = await c.findById(id);
  assert.strictEqual(got._id, id);
  assert.ok(got._created_at && got._updated_at);
  for (const [k, v] of Object.entries(doc)) assert.deepStrictEqual(got[k], v, k);
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
  const id = await c.insert(Object.fromEntries(keys.map((k, i) => [k, i])));
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
  await assert.rejects(c.insert({ city: 'LA', age: 30 }), NexaDBError);
  const names = (await c.listIndexes()).map((i) => i.name);
  for (const n of [idx.name, 'by_tags', uniq.name]) assert.ok(names.includes(n), n);
  assert.strictEqual(await c.dropIndex('by_tags'), true);
  assert.strictEqual(await c.dropIndex('by_tags'), false);
  await c.drop();
});
