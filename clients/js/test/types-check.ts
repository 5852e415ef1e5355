// Compiled with `tsc --noEmit` (npm run typecheck): the published type definitions accept the
// brief's usage and reject misuse. Lines marked @ts-expect-error must fail to type-check.
import { NexaDB, NexaDBError, ChangeStream, WatchOptions, SearchResult, SearchPlan, VectorIndex, CollectionInfo, Document, DocumentValue, VectorDocument } from '..';

async function brief(): Promise<void> {
  const db = new NexaDB({ host: 'localhost', port: 6970, apiKey: process.env.NEXADB_API_KEY });
  const users = db.collection('users');
  const userId: string = await users.insert({ name: 'Alice Johnson', age: 28, tags: ['js'] });
  const ids: string[] = await users.insertMany([{ a: 1 }, { b: 2 }]);
  const results: Document[] = await users.find({ age: { $gt: 25 } }, 100);
  // BSON types: dates, int64 as bigint, binary
  await users.insert({ at: new Date(), big: 2n ** 63n - 1n, raw: new Uint8Array([1]), buf: Buffer.from('x'), gone: undefined });
  await users.find({ at: { $gt: new Date(0) }, big: { $lt: 10n } }, 0, { sort: { at: -1, _id: 1 } });
  const value: DocumentValue = { at: new Date(), list: [1n, 'a', null, { raw: new Uint8Array(0) }] };
  const big: bigint | number = (await users.findById(userId))?.big;
  results.forEach((u) => console.log(`${u.name} - ${u.age}`));
  const one: Document | null = await users.findOne({ email: 'alice@example.com' });
  const byId: Document | null = await users.findById(userId);
  const ok: boolean = await users.update(userId, { age: 29 });
  const deleted: boolean = await users.delete(userId);
  const total: number = await users.count();
  const agg: Document[] = await users.aggregate([{ $group: { _id: '$city', count: { $sum: 1 } } }]);
  for await (const d of users.findIter({}, 0, { sort: '-age', pageSize: 100 })) console.log(d._id);
  for await (const g of users.aggregateIter([{ $match: {} }], { pageSize: 10 })) console.log(g);
  const vc = await db.vectorCollection('articles', { dimensions: 384 });
  const hits: SearchResult[] = await vc.search(new Float32Array(384), 3, { ef: 64 });
  const plan: SearchPlan | null = (await vc.explain(new Float32Array(384), 3, { exact: true })).plan;
  const ix: VectorIndex | undefined = (await vc.setIndex({ kind: 'hnsw', m: 16, efConstruction: 200 })).index;
  console.log(plan?.path, ix?.kind);
  hits.forEach((h) => console.log(h.documentId, h.similarity.toFixed(4), h.document.text));
  const exported: VectorDocument[] = await vc.find({ lang: 'en' }, 0, { pageSize: 500 });
  for await (const { document, vector } of vc.findIter()) console.log(document._id, vector.length);
  const opts: WatchOptions = { pipeline: [{ $match: { operationType: 'insert' } }], fullDocument: 'updateLookup' };
  const stream: ChangeStream = users.watch(opts);
  for await (const ev of stream) console.log(ev.operationType, ev.fullDocument, stream.resumeToken);
  const token: string | null = stream.resumeToken;
  db.watch({ resumeAfter: token ?? undefined }).close();
  // @ts-expect-error: fullDocument is 'default' or 'updateLookup'
  users.watch({ fullDocument: 'whenAvailable' });
  const cols: CollectionInfo[] = await db.listCollections();
  try {
    await users.find({ a: { $bogus: 1 } });
  } catch (e) {
    if (e instanceof NexaDBError) console.log(e.code, e.codeName, e.details);
  }
  console.log(ids, one, byId, ok, deleted, total, agg, cols, exported, value, big);

  // @ts-expect-error: port must be a number
  new NexaDB({ port: '6970' });
  // @ts-expect-error: find's limit is a number
  await users.find({}, '10');
  // @ts-expect-error: a sort direction is 1 or -1
  await users.find({}, 0, { sort: { age: 2 } });
  // @ts-expect-error: a vector collection's find has no sort
  await vc.find({}, 0, { sort: 'age' });
  // @ts-expect-error: a Map is not a document value
  const map: DocumentValue = new Map();
  // @ts-expect-error: nor is a function
  const fn: DocumentValue = () => 1;
  console.log(map, fn);
  // @ts-expect-error: unknown metric
  await db.vectorCollection('v', { dimensions: 3, metric: 'hamming' });
  const target: string = db.target;
  // @ts-expect-error: where calls go is the client's to change (a cluster's redirect)
  db.target = target;
  db.close();
}

void brief;
