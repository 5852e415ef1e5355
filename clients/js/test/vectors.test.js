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

const close = (a, b) => Math.abs(a - b) < 1e-5;

test('vectorCollection, insert and search', async () => {
  const name = uniqueName('vec');
  const vc = await db.vectorCollection(name, { dimensions: 4 });
  await db.vectorCollection(name, { dimensions: 4 }); // idempotent
  await assert.rejects(db.vectorCollection(name, { dimensions: 8 }), NexaDBError);
  const a = await vc.insert({ name: 'a' }, [1, 0, 0, 0]);
  const b = await vc.insert({ name: 'b' }, new Float32Array([0.9, 0.1, 0, 0]));
  await vc.insert({ name: 'c' }, [0, 0, 1, 0]);
  const hits = await vc.search([1, 0, 0, 0], 2);
  assert.deepStrictEqual(hits.map((h) => h.documentId), [a, b]);
  assert.ok(close(hits[0].similarity, 1));
  assert.strictEqual(hits[0].document.name, 'a');
  assert.ok(hits[0].similarity >= hits[1].similarity);
  const info = (await db.listVectorCollections()).find((x) => x.name === name);
  assert.strictEqual(info.dimensions, 4);
  assert.strictEqual(info.metric, 'cosine');
  assert.strictEqual(await vc.drop(), true);
});

test('wrong dimension is INVALID_ARGUMENT', async () => {
  const vc = await db.vectorCollection(uniqueName('dim'), { dimensions: 4 });
  await assert.rejects(vc.insert({}, [1, 2, 3]), (e) => e instanceof NexaDBError && e.codeName === 'INVALID_ARGUMENT');
  await assert.rejects(vc.search([1, 2, 3, 4, 5]), (e) => e instanceof NexaDBError && e.codeName === 'INVALID_ARGUMENT');
});

test('filter, minScore, includeVectors, get, upsert, delete, batch', async () => {
  const vc = await db.vectorCollection(uniqueName('ops'), { dimensions: 4 });
  await vc.insertMany([{ _id: 'x0', kind: 'x' }, { _id: 'y1', kind: 'y' }, { _id: 'x2', kind: 'x' }],
    [[1, 0, 0, 0], [1, 0.1, 0, 0], [0, 1, 0, 0]]);
  assert.deepStrictEqual((await vc.search([1, 0, 0, 0], 10, { filter: { kind: 'x' } })).map((h) => h.documentId), ['x0', 'x2']);
  const hits = await vc.search([1, 0, 0, 0], 10, { minScore: 0.5, includeVectors: true });
  assert.deepStrictEqual(hits.map((h) => h.documentId), ['x0', 'y1']);
  assert.ok(close(hits[0].vector[0], 1));
  const got = await vc.get('x0', { includeVector: true });
  assert.strictEqual(got.kind, 'x');
  assert.strictEqual(got._vector.length, 4);
  assert.strictEqual(await vc.upsert('x0', { kind: 'z' }, [1, 0, 0, 0]), false);
  assert.strictEqual(await vc.upsert('new', { kind: 'n' }, [0, 0, 0, 1]), true);
  assert.strictEqual((await vc.get('x0')).kind, 'z');
  const batch = await vc.searchBatch([[1, 0, 0, 0], [0, 0, 0, 1]], 1);
  assert.deepStrictEqual(batch.map((r) => r[0].documentId), ['x0', 'new']);
  assert.strictEqual(await vc.delete('x0'), true);
  assert.strictEqual(await vc.delete('x0'), false);
  assert.strictEqual(await vc.get('x0'), null);
});

test('vector documents carry BSON types and key order', async () => {
  const vc = await db.vectorCollection(uniqueName('types'), { dimensions: 2 });
  const doc = { _id: 'd', z: 1, at: new Date(1712345678901), big: -(2n ** 63n), raw: Buffer.from([9, 8]), a: { y: 1, b: 2 } };
  await vc.insert(doc, [1, 0]);
  const check = (got) => assert.deepStrictEqual(ordered(withoutSystemFields(got)), ordered(withoutSystemFields(doc)));
  check(await vc.get('d'));
  check((await vc.search([1, 0], 1, { filter: { big: { $lt: 0n } } }))[0].document);
  check((await vc.find({ at: new Date(1712345678901) }))[0].document);
});

test('find streams documents with their stored vectors, in _id order', async () => {
  const vc = await db.vectorCollection(uniqueName('find'), { dimensions: 3, metric: 'dot' });
  const docs = Array.from({ length: 12 }, (_, i) => ({ _id: `d${String(i).padStart(2, '0')}`, i, odd: i % 2 === 1 }));
  await vc.insertMany(docs, docs.map((d) => [d.i, 1, 0]));
  const all = await vc.find({}, 0, { pageSize: 5 });
  assert.deepStrictEqual(all.map((x) => x.document._id), docs.map((d) => d._id));
  for (const x of all) assert.deepStrictEqual(x.vector, [x.document.i, 1, 0]);
  const odd = [];
  for await (const x of vc.findIter({ odd: true }, 2)) odd.push(x.document.i);
  assert.deepStrictEqual(odd, [1, 3]);
  await assert.rejects(db.vectorCollection(uniqueName('none')).then((v) => v.find()),
    (e) => e instanceof NexaDBError && e.codeName === 'NOT_FOUND');
});

test('an HNSW index: created, explained, changed and dropped', async () => {
  const name = uniqueName('hnsw');
  const vc = await db.vectorCollection(name, { dimensions: 3, index: { kind: 'hnsw', m: 8 } });
  let info = await vc.info();
  assert.deepStrictEqual(info.index, { kind: 'hnsw', m: 8, efConstruction: 200, quantization: 'none', oversample: 0 });
  await assert.rejects(db.vectorCollection(name, { dimensions: 3, index: { kind: 'exact' } }),
    (e) => e instanceof NexaDBError && e.codeName === 'ALREADY_EXISTS');
  const a = await vc.insert({ n: 1 }, [1, 0, 0]);
  await vc.insert({ n: 2 }, [0, 1, 0]);
  const { plan, results } = await vc.explain([1, 0.1, 0], 1, { ef: 16 });
  assert.strictEqual(plan.path, 'exact', 'a collection this small is searched exactly');
  assert.deepStrictEqual(results.map((h) => h.documentId), [a]);
  assert.deepStrictEqual((await vc.search([1, 0, 0], 1, { ef: 16, exact: true })).map((h) => h.documentId), [a]);
  assert.deepStrictEqual((await vc.searchBatch([[1, 0, 0]], 1, { ef: 16 }))[0].map((h) => h.documentId), [a]);
  await assert.rejects(vc.setIndex({ kind: 'hnsw', m: 1 }),
    (e) => e instanceof NexaDBError && e.codeName === 'INVALID_ARGUMENT' && /m must be/.test(e.details));
  await assert.rejects(vc.setIndex({ kind: 'ivf' }), RangeError);
  await assert.rejects(vc.setIndex({ kind: 'hnsw', quantization: 'pq' }), RangeError);
  info = await vc.setIndex({ kind: 'hnsw', quantization: 'int8', oversample: 2 });
  assert.deepStrictEqual(info.index, { kind: 'hnsw', m: 16, efConstruction: 200, quantization: 'int8', oversample: 2 });
  info = await vc.setIndex({ kind: 'hnsw', quantization: 'float16' });
  assert.deepStrictEqual(info.index, { kind: 'hnsw', m: 16, efConstruction: 200, quantization: 'float16', oversample: 4 });
  info = await vc.setIndex({ kind: 'exact' });
  assert.strictEqual(info.index.kind, 'exact');
  await assert.rejects((await db.vectorCollection(uniqueName('none'))).info(),
    (e) => e instanceof NexaDBError && e.codeName === 'NOT_FOUND');
  // secondary indexes over the documents: a unique one refuses a duplicate, with its vector
  const ix = await vc.createIndex('n', { unique: true });
  assert.strictEqual(ix.unique, true);
  const count = (await vc.info()).count;
  await vc.insert({ n: 3 }, [0.5, 0.5, 0.5]);
  await assert.rejects(vc.insert({ n: 3 }, [0.5, 0.5, 0.5]),
    (e) => e instanceof NexaDBError && e.codeName === 'ALREADY_EXISTS');
  assert.strictEqual((await vc.info()).count, count + 1);
  const hits = await vc.search([0.5, 0.5, 0.5], 3, { filter: { n: 3 } });
  assert.strictEqual(hits.length, 1);
  assert.deepStrictEqual((await vc.listIndexes()).map((i) => i.name), [ix.name]);
  assert.strictEqual(await vc.dropIndex(ix.name), true);
});
