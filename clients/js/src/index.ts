// NexaDB client for Node.js: the brief's JS API over gRPC (@grpc/grpc-js).
//
//   const { NexaDB } = require('nexadb');
//   const db = new NexaDB({ host: 'localhost', port: 6970, apiKey: process.env.NEXADB_API_KEY });
//   const users = db.collection('users');
//   const id = await users.insert({ name: 'Alice', age: 28 });
//   const docs = await users.find({ age: { $gt: 25 } }, 100);
//
// The service definitions are loaded at run time from the package's proto/ folder (copied from
// the repository's proto/ when the package is built) with @grpc/proto-loader. One NexaDB holds
// one channel that every collection handle shares. Documents, filters, updates, projections, sorts
// and pipeline stages travel as BSON (src/convert.ts says how JS values map). Every method returns
// a Promise of plain objects; failures reject with a NexaDBError carrying the gRPC status code.
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

import { Document, fromDocument, PbDocument, toDocument } from './convert';
import { fromServiceError, NexaDBError } from './errors';

export { NexaDBError } from './errors';
export type { Document, DocumentValue } from './convert';

/** gRPC port; the server's HTTP/JSON (REST) API is on 6969, the brief's port. */
export const DEFAULT_PORT = 6970;

export interface NexaDBOptions {
  host?: string;
  port?: number;
  /** Defaults to process.env.NEXADB_API_KEY. */
  apiKey?: string;
  /** Connect with TLS (system roots unless rootCerts is given). */
  tls?: boolean;
  /** PEM CA certificates for TLS; implies tls. */
  rootCerts?: Buffer;
  /** PEM certificate chain of this client, for servers that require client certificates
   * (mTLS); needs clientKey; implies tls. */
  clientCert?: Buffer;
  /** PEM private key of clientCert. */
  clientKey?: Buffer;
  /** Deadline for each unary call in milliseconds (default 30000; 0 for none). */
  timeoutMs?: number;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
  /** Which cluster node may answer reads (default 'linearizable'; see ReadConcern). */
  readConcern?: ReadConcern;
}

/**
 * Which cluster node may answer a client's reads; its metadata goes with every call (writes and
 * admin calls ignore it). A single server answers every read from its own state.
 * - 'linearizable' (the default): the leader answers, after a Raft barrier; a follower passes the
 *   read on or redirects the client to the leader.
 * - 'local': the node the client talks to answers from what it has applied, possibly behind the
 *   leader (metadata nexadb-read-concern: local).
 * - 'session' (read-your-writes): the node the client talks to answers once it has applied the
 *   entry `lastLogIndex` names (metadata nexadb-read-after); before there is one, as 'local'.
 */
export type ReadConcern = 'linearizable' | 'local' | 'session';
const READ_CONCERNS: readonly ReadConcern[] = ['linearizable', 'local', 'session'];

/** 'age', '-age', { age: -1, name: 1 } or [['age', -1], ['name', 1]]. */
export type SortSpec = string | Record<string, 1 | -1> | Array<[string, 1 | -1]>;

export interface FindOptions {
  skip?: number;
  sort?: SortSpec;
  projection?: Document;
  /** Documents per streamed message; 0 lets the server choose. */
  pageSize?: number;
}

export interface CollectionInfo {
  name: string;
  count: number;
  sizeBytes: number;
  /** 'documents' or 'vectors'. */
  kind: string;
  dimensions?: number;
  /** 'cosine', 'dot' or 'l2'. */
  metric?: string;
  /** Vector collections: the index searches use. */
  index?: VectorIndex;
  /** HNSW: live rows the searched graph holds (the rest are scored exactly). */
  indexed?: number;
  /** HNSW: rows remain to add to the graph, or it is being rebuilt. */
  indexBuilding?: boolean;
  /** HNSW: bytes of memory the graph takes. */
  indexBytes?: number;
}

/**
 * How a vector collection finds nearest neighbours: 'exact' scores every vector; 'hnsw' keeps a
 * graph built in the background, searched approximately once the collection outgrows exact
 * search. m (2..64) and efConstruction (m..10000): 0 or absent for the server's 16 and 200.
 */
export interface VectorIndex {
  kind: 'exact' | 'hnsw';
  m?: number;
  efConstruction?: number;
  /**
   * 'int8': the graph keeps int8 codes (a quarter of the bytes); 'float16': half floats (half the bytes);
   * either way searches rescore oversample x limit hits exactly.
   */
  quantization?: 'none' | 'int8' | 'float16';
  /** int8, float16: hits rescored per hit wanted, 1..100; 0 or absent for the server's 4. */
  oversample?: number;
}

/** How a search ran (VectorCollection.explain). */
export interface SearchPlan {
  /** 'exact', 'exact_postfiltered', 'hnsw', 'hnsw_postfiltered', 'hnsw_filtered', 'hnsw_exact_filtered' or 'hnsw_filtered_fallback'. */
  path: string;
  graphNodes: number;
  exactRows: number;
  candidates: number;
  ef: number;
}

export interface IndexInfo {
  name: string;
  fields: Array<[string, 1 | -1]>;
  unique: boolean;
  multikey: boolean;
  /** A TTL index's limit; null for any other index. */
  expireAfterSeconds: number | null;
}

export interface SearchResult {
  documentId: string;
  similarity: number;
  document: Document;
  /** Present when includeVectors was asked for. */
  vector?: number[];
}

/** A stored document with its stored vector (unit length under cosine), as VectorCollection.find gives them. */
export interface VectorDocument {
  document: Document;
  vector: number[];
}

export interface VectorFindOptions {
  /** Documents per streamed message; 0 lets the server choose. */
  pageSize?: number;
}

export interface SearchOptions {
  filter?: Document;
  minScore?: number;
  includeVectors?: boolean;
  /** HNSW: candidates kept while searching the graph (higher: better recall, slower); the server's 128 when absent. */
  ef?: number;
  /** Score every vector even where a graph exists. */
  exact?: boolean;
}

export type VectorMetric = 'cosine' | 'dot' | 'l2';

export interface WatchOptions {
  /** Stages applied to each event ($match, $project, $addFields, $set, $unset, $replaceRoot, $replaceWith). */
  pipeline?: Document[];
  /** A token (an event's _id._data, or ChangeStream.resumeToken) to start after; absent: from the next change. */
  resumeAfter?: string;
  /** 'updateLookup': update events carry the document as it is when read. */
  fullDocument?: 'default' | 'updateLookup';
  /** Events per message at most; 0 lets the server choose. */
  pageSize?: number;
}

const PROTO_FILES = ['nexadb/v1/document.proto', 'nexadb/v1/vector.proto', 'nexadb/v1/admin.proto'];
let loaded: any = null;

function services(): any {
  if (loaded === null) {
    const def = protoLoader.loadSync(PROTO_FILES, {
      includeDirs: [path.join(__dirname, '..', 'proto')],
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    loaded = (grpc.loadPackageDefinition(def) as any).nexadb.v1;
  }
  return loaded;
}

/** A SortSpec's [field, 1 | -1] pairs in order. */
function sortItems(sort: SortSpec): Array<[string, 1 | -1]> {
  let items: Array<[string, number]>;
  if (typeof sort === 'string') items = sort.startsWith('-') ? [[sort.slice(1), -1]] : [[sort, 1]];
  else if (Array.isArray(sort)) items = sort;
  else items = Object.entries(sort);
  for (const [field, dir] of items) {
    if (dir !== 1 && dir !== -1) throw new RangeError(`sort direction for '${field}' must be 1 or -1`);
  }
  return items as Array<[string, 1 | -1]>;
}

/** A sort as the API takes it: { age: -1, _id: 1 }, keys in the order given. */
function sortDocument(sort: SortSpec | undefined): PbDocument | null {
  return sort === undefined ? null : toDocument(Object.fromEntries(sortItems(sort)), 'sort');
}

function optDocument(x: Document | undefined | null, what: string): PbDocument | null {
  return x === undefined || x === null ? null : toDocument(x, what);
}

/** What p resolves to, or `absent` when it rejects with NOT_FOUND. */
async function unlessNotFound<T, A>(p: Promise<T>, absent: A): Promise<T | A> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof NexaDBError && e.code === grpc.status.NOT_FOUND) return absent;
    throw e;
  }
}

function enumName(value: string, prefix: string): string {
  return value.startsWith(prefix) ? value.slice(prefix.length).toLowerCase() : value.toLowerCase();
}

function collectionInfo(c: any): CollectionInfo {
  const info: CollectionInfo = {
    name: c.name,
    count: c.count,
    sizeBytes: c.size_bytes,
    kind: enumName(c.kind, 'KIND_'),
  };
  if (c.dimensions) {
    info.dimensions = c.dimensions;
    info.metric = enumName(c.metric, 'VECTOR_METRIC_');
    const ix = c.index ?? { kind: 'KIND_EXACT', m: 0, ef_construction: 0, quantization: 'QUANTIZATION_NONE', oversample: 0 };
    info.index = {
      kind: enumName(ix.kind, 'KIND_') as VectorIndex['kind'],
      m: ix.m,
      efConstruction: ix.ef_construction,
      quantization: enumName(ix.quantization, 'QUANTIZATION_') as VectorIndex['quantization'],
      oversample: ix.oversample,
    };
    info.indexed = Number(c.indexed);
    info.indexBuilding = c.index_building;
    info.indexBytes = Number(c.index_bytes);
  }
  return info;
}

function indexMessage(ix: VectorIndex): object {
  if (ix.kind !== 'exact' && ix.kind !== 'hnsw') throw new RangeError(`unknown index '${ix.kind}' (exact or hnsw)`);
  const q = ix.quantization ?? 'none';
  if (q !== 'none' && q !== 'int8' && q !== 'float16')
    throw new RangeError(`unknown quantization '${q}' (none, int8 or float16)`);
  return {
    kind: `KIND_${ix.kind.toUpperCase()}`,
    m: ix.m ?? 0,
    ef_construction: ix.efConstruction ?? 0,
    quantization: `QUANTIZATION_${q.toUpperCase()}`,
    oversample: ix.oversample ?? 0,
  };
}

function searchFields(options: SearchOptions): object {
  return {
    filter: optDocument(options.filter, 'filter'),
    min_score: options.minScore === undefined ? null : { value: options.minScore },
    include_vectors: options.includeVectors ?? false,
    ef: options.ef ?? 0,
    exact: options.exact ?? false,
  };
}

function floats(v: ArrayLike<number>, what: string): number[] {
  const out = Array.from(v, Number);
  if (out.some((x) => Number.isNaN(x))) throw new TypeError(`${what} must be an array of numbers`);
  return out;
}

/** The trailer with which a cluster node refuses a call as not the leader, having run nothing of
 * it: the leader's address, or '' while no leader is known. */
const LEADER_TRAILER = 'nexadb-leader';
/** The trailer with which a cluster node answers a write: the log entry it went into. */
const LOG_INDEX_TRAILER = 'nexadb-log-index';
/** Redirects one call follows at most. */
const MAX_REDIRECTS = 3;

/** One node's service clients, sharing one channel. */
interface Stubs {
  docs: any;
  vecs: any;
  admin: any;
}
type Service = keyof Stubs;

/** @internal A server stream whose first message has come. */
interface OpenStream {
  call: grpc.ClientReadableStream<any>;
  messages: AsyncIterator<any>;
  first: IteratorResult<any>;
}

/** The leader a node named in refusing a call (UNAVAILABLE with LEADER_TRAILER): its address,
 * '' while none is known; null for any other error. */
function leaderNamed(e: any): string | null {
  if (e?.code !== grpc.status.UNAVAILABLE || !(e.metadata instanceof grpc.Metadata)) return null;
  const v = e.metadata.get(LEADER_TRAILER);
  return v.length > 0 ? String(v[0]) : null;
}

/**
 * A connection to a NexaDB server. In a cluster it follows a follower's redirect: a call a node
 * refuses as not the leader (UNAVAILABLE with the trailer nexadb-leader, which says the node ran
 * nothing of it) is sent again to the leader it names, and later calls go there too (`target`).
 * Its read concern (`readConcern`) says which node may answer its reads.
 */
export class NexaDB {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  readonly readConcern: ReadConcern;
  private readonly metadata: grpc.Metadata;
  private logIndex = 0;
  private readonly creds: grpc.ChannelCredentials;
  private readonly channelOptions: grpc.ChannelOptions;
  /** One channel per address calls went to, kept until close(). */
  private readonly nodes = new Map<string, Stubs>();
  private current: string;
  private closed = false;

  constructor(options: NexaDBOptions = {}) {
    this.host = options.host ?? 'localhost';
    this.port = options.port ?? DEFAULT_PORT;
    this.timeoutMs = options.timeoutMs ?? 30000;
    this.readConcern = options.readConcern ?? 'linearizable';
    if (!READ_CONCERNS.includes(this.readConcern)) {
      throw new TypeError(`readConcern must be one of ${READ_CONCERNS.join(', ')}; got ${String(this.readConcern)}`);
    }
    const apiKey = options.apiKey ?? process.env.NEXADB_API_KEY;
    this.metadata = new grpc.Metadata();
    if (apiKey) this.metadata.set('x-api-key', apiKey);
    if (!options.clientCert !== !options.clientKey) {
      throw new TypeError('clientCert and clientKey go together');
    }
    this.creds =
      options.tls || options.rootCerts || options.clientCert
        ? grpc.credentials.createSsl(options.rootCerts ?? null, options.clientKey ?? null, options.clientCert ?? null)
        : grpc.credentials.createInsecure();
    this.channelOptions = {
      'grpc.max_receive_message_length': 64 << 20,
      'grpc.max_send_message_length': 64 << 20,
      ...options.channelOptions,
    };
    this.current = `${this.host}:${this.port}`;
    this.stubs(this.current);
  }

  /** host:port calls go to: host and port until a cluster node names another node as the leader, then that one. */
  get target(): string {
    return this.current;
  }

  /**
   * The largest log entry a call of this client returned (trailing metadata nexadb-log-index: a
   * write's entry in a cluster's log) or advanceLogIndex gave, 0 before any. A 'session' client
   * reads after it.
   */
  get lastLogIndex(): number {
    return this.logIndex;
  }

  /**
   * Raises lastLogIndex to index (another client's lastLogIndex), so that a 'session' client
   * reads that client's writes too; a lower index changes nothing.
   */
  advanceLogIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0) throw new TypeError('index must be a whole number');
    this.logIndex = Math.max(this.logIndex, index);
  }

  /** The metadata of a call: the API key and the read concern's. */
  private callMetadata(): grpc.Metadata {
    if (this.readConcern === 'linearizable') return this.metadata;
    const md = this.metadata.clone();
    if (this.readConcern === 'session' && this.logIndex > 0) md.set('nexadb-read-after', String(this.logIndex));
    else md.set('nexadb-read-concern', 'local');
    return md;
  }

  /** The service clients of addr, made with this client's credentials and options on first use. */
  private stubs(addr: string): Stubs {
    let s = this.nodes.get(addr);
    if (s === undefined) {
      if (this.closed) throw new NexaDBError(grpc.status.CANCELLED, 'the client is closed', '');
      const pb = services();
      const docs = new pb.DocumentService(addr, this.creds, this.channelOptions);
      // one channel for all three services
      const shared = { ...this.channelOptions, channelOverride: docs.getChannel() };
      s = { docs, vecs: new pb.VectorService(addr, this.creds, shared), admin: new pb.AdminService(addr, this.creds, shared) };
      this.nodes.set(addr, s);
    }
    return s;
  }

  /**
   * Runs attempt (a call of method on a node's stubs) against the target; when the node
   * refuses it naming another node as the leader, makes that the target and runs attempt there, up
   * to MAX_REDIRECTS times. A refusal while no leader is known rejects with UNAVAILABLE saying so;
   * any other failure (UNAVAILABLE without the trailer: the transport, which may have delivered a
   * write) rejects as it is, as a NexaDBError. The first attempt starts before this returns.
   */
  private async follow<T>(method: string, attempt: (stubs: Stubs) => Promise<T>): Promise<T> {
    let addr = this.current;
    for (let hop = 0; ; hop++) {
      try {
        return await attempt(this.stubs(addr));
      } catch (e) {
        const leader = leaderNamed(e);
        const err = fromServiceError(e, method);
        if (leader === '') throw new NexaDBError(err.code, `no leader is known: ${err.details}`, method);
        if (leader === null || leader === addr || hop === MAX_REDIRECTS) throw err;
        this.current = addr = leader;
      }
    }
  }

  /** @internal A unary call with the client's metadata and deadline, following redirects to the leader. */
  unary<T = any>(service: Service, method: string, request: object): Promise<T> {
    const callOpts: grpc.CallOptions = {};
    if (this.timeoutMs > 0) callOpts.deadline = Date.now() + this.timeoutMs;
    const metadata = this.callMetadata();
    return this.follow(method, (s) => new Promise<T>((resolve, reject) => {
      const call: grpc.ClientUnaryCall = s[service][method](request, metadata, callOpts,
        (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
      // emitted right after the callback, before anything awaiting the call runs
      call.on('status', (st: grpc.StatusObject) => {
        const n = st.code === grpc.status.OK ? Number(st.metadata.get(LOG_INDEX_TRAILER)[0]) : NaN;
        if (Number.isSafeInteger(n) && n > 0) this.logIndex = Math.max(this.logIndex, n);
      });
    }));
  }

  /**
   * @internal Starts a server-streaming call with the client's metadata and reads its first
   * message, following redirects to the leader until one comes; onCall sees each attempt's call
   * (to cancel it).
   */
  openStream(service: Service, method: string, request: object,
    onCall: (call: grpc.ClientReadableStream<any>) => void = () => {}): Promise<OpenStream> {
    const metadata = this.callMetadata();
    return this.follow(method, async (s) => {
      const call: grpc.ClientReadableStream<any> = s[service][method](request, metadata);
      onCall(call);
      const messages = call[Symbol.asyncIterator]();
      return { call, messages, first: await messages.next() };
    });
  }

  /** @internal Waits until the target's channel is ready, up to deadline (ms since the epoch). */
  waitForReady(deadline: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.stubs(this.current).docs.waitForReady(deadline, (err?: Error) => (err ? reject(err) : resolve())));
  }

  /**
   * A change stream of every document collection (each event's `ns` says which); dropping a
   * collection comes as a 'drop' event and the stream goes on. See Collection.watch.
   */
  watch(options: WatchOptions = {}): ChangeStream {
    return new ChangeStream(this, watchRequest('', options), options.resumeAfter);
  }

  /**
   * @internal Streams the entries of a server-streaming call's `documents`, a page per
   * message, each turned into what the caller yields (a document by default).
   */
  async *stream<T = Document>(service: Service, method: string, request: object,
    item: (entry: any) => T = fromDocument as (entry: any) => T): AsyncGenerator<T> {
    let opened: OpenStream | undefined;
    try {
      opened = await this.openStream(service, method, request);
      for (let r = opened.first; !r.done; r = await opened.messages.next()) {
        for (const s of r.value.documents ?? []) yield item(s);
      }
    } catch (e) {
      throw fromServiceError(e, method);
    } finally {
      opened?.call.cancel(); // a no-op once the stream has ended
    }
  }

  /** A handle on a document collection (the server creates it on first insert). */
  collection(name: string): Collection {
    return new Collection(this, name);
  }

  /**
   * A handle on a vector collection. With dimensions, creates it unless one of the same
   * dimensions and metric (and, when given, kind of index) exists.
   */
  async vectorCollection(
    name: string,
    options: { dimensions?: number; metric?: VectorMetric; index?: VectorIndex } = {},
  ): Promise<VectorCollection> {
    const metric = options.metric ?? 'cosine';
    if (!['cosine', 'dot', 'l2'].includes(metric)) throw new RangeError(`unknown metric '${metric}'`);
    const index = options.index === undefined ? null : indexMessage(options.index);
    if (options.dimensions !== undefined) {
      await this.unary('vecs', 'CreateVectorCollection', {
        collection: name,
        dimensions: options.dimensions,
        metric: `VECTOR_METRIC_${metric.toUpperCase()}`,
        if_not_exists: true,
        index,
      });
    }
    return new VectorCollection(this, name, options.dimensions);
  }

  async createCollection(name: string): Promise<CollectionInfo> {
    const r = await this.unary('docs', 'CreateCollection', { collection: name });
    return collectionInfo(r.collection);
  }

  /** False when there was no such collection. */
  async dropCollection(name: string): Promise<boolean> {
    return (await this.unary('docs', 'DropCollection', { collection: name })).dropped;
  }

  async listCollections(): Promise<CollectionInfo[]> {
    return (await this.unary('docs', 'ListCollections', {})).collections.map(collectionInfo);
  }

  async dropVectorCollection(name: string): Promise<boolean> {
    return (await this.unary('vecs', 'DropVectorCollection', { collection: name })).dropped;
  }

  async listVectorCollections(): Promise<CollectionInfo[]> {
    return (await this.unary('vecs', 'ListVectorCollections', {})).collections.map(collectionInfo);
  }

  /** { status: 'ok', version, uptimeSeconds }; needs no API key. */
  async status(): Promise<{ status: string; version: string; uptimeSeconds: number }> {
    const r = await this.unary('admin', 'Status', {});
    return { status: r.status, version: r.version, uptimeSeconds: r.uptime_seconds };
  }

  /** Database statistics, as the server sends them (snake_case field names). */
  async stats(): Promise<Record<string, any>> {
    const r = await this.unary('admin', 'Stats', {});
    return { ...r, collections: r.collections.map(collectionInfo) };
  }

  /** Closes the channels (one per address calls went to); handles made from this NexaDB stop working. */
  close(): void {
    this.closed = true;
    for (const s of this.nodes.values()) s.docs.close();
  }
}

/** A document collection. */
export class Collection {
  constructor(readonly db: NexaDB, readonly name: string) {}

  private call(method: string, request: object): Promise<any> {
    return this.db.unary('docs', method, { collection: this.name, ...request });
  }

  /** Inserts one document; resolves to its id (its _id string if it has one). */
  async insert(document: Document): Promise<string> {
    return (await this.call('InsertOne', { document: toDocument(document) })).document_id;
  }

  /** Inserts documents in one atomic batch; resolves to their ids in order. */
  async insertMany(documents: Document[]): Promise<string[]> {
    const docs = documents.map((d, i) => toDocument(d, `documents[${i}]`));
    return (await this.call('InsertMany', { documents: docs })).document_ids;
  }

  /** Documents matching query (all when omitted), at most limit (0: no limit). */
  async find(query: Document = {}, limit = 0, options: FindOptions = {}): Promise<Document[]> {
    const out: Document[] = [];
    for await (const d of this.findIter(query, limit, options)) out.push(d);
    return out;
  }

  /** Like find, as an async iterator that reads the stream lazily, page by page. */
  findIter(query: Document = {}, limit = 0, options: FindOptions = {}): AsyncGenerator<Document> {
    const req = {
      collection: this.name,
      filter: optDocument(query, 'query'),
      projection: optDocument(options.projection, 'projection'),
      sort: sortDocument(options.sort),
      skip: options.skip ?? 0,
      limit,
      page_size: options.pageSize ?? 0,
    };
    return this.db.stream('docs', 'Find', req);
  }

  /** The first match (after sort), or null. */
  async findOne(query: Document = {}, options: { sort?: SortSpec; projection?: Document } = {}): Promise<Document | null> {
    const r = await this.call('FindOne', {
      filter: optDocument(query, 'query'),
      projection: optDocument(options.projection, 'projection'),
      sort: sortDocument(options.sort),
    });
    return r.document ? fromDocument(r.document) : null;
  }

  /** The document with this id, or null. */
  async findById(id: string): Promise<Document | null> {
    return unlessNotFound(this.call('Get', { id }).then((r) => fromDocument(r.document)), null);
  }

  async count(query: Document = {}): Promise<number> {
    return (await this.call('Count', { filter: optDocument(query, 'query') })).count;
  }

  /** Merges fields (or update operators) into one document; false when there is none. */
  async update(id: string, fields: Document): Promise<boolean> {
    const call = this.call('Update', { id, update: toDocument(fields, 'fields') });
    return unlessNotFound(call.then((r) => r.success as boolean), false);
  }

  /** Applies update to every match; resolves to the number of documents modified. */
  async updateMany(query: Document, update: Document, options: { upsert?: boolean } = {}): Promise<number> {
    const r = await this.call('UpdateMany', {
      filter: optDocument(query, 'query'),
      update: toDocument(update, 'update'),
      upsert: options.upsert ?? false,
    });
    return r.modified_count;
  }

  /** Deletes one document; false when there was none. */
  async delete(id: string): Promise<boolean> {
    return unlessNotFound(this.call('Delete', { id }).then((r) => r.success as boolean), false);
  }

  /** Deletes every match; resolves to the count. */
  async deleteMany(query: Document = {}): Promise<number> {
    return (await this.call('DeleteMany', { filter: optDocument(query, 'query') })).deleted_count;
  }

  /** Runs an aggregation pipeline; resolves to its output documents. */
  async aggregate(pipeline: Document[], options: { pageSize?: number } = {}): Promise<Document[]> {
    const out: Document[] = [];
    for await (const d of this.aggregateIter(pipeline, options)) out.push(d);
    return out;
  }

  /** Like aggregate, as an async iterator that reads the stream lazily, page by page. */
  aggregateIter(pipeline: Document[], options: { pageSize?: number } = {}): AsyncGenerator<Document> {
    if (!Array.isArray(pipeline)) throw new TypeError('pipeline must be an array of stages');
    const req = {
      collection: this.name,
      pipeline: pipeline.map((s, i) => toDocument(s, `pipeline[${i}]`)),
      page_size: options.pageSize ?? 0,
    };
    return this.db.stream('docs', 'Aggregate', req);
  }

  /**
   * The collection's changes as they are committed, as MongoDB's watch():
   *
   *   const stream = users.watch({ pipeline: [{ $match: { operationType: 'insert' } }] });
   *   for await (const event of stream) console.log(event.fullDocument, stream.resumeToken);
   *
   * The stream ends after the collection's 'invalidate' event (its drop). See ChangeStream.
   */
  watch(options: WatchOptions = {}): ChangeStream {
    return new ChangeStream(this.db, watchRequest(this.name, options), options.resumeAfter);
  }

  drop(): Promise<boolean> {
    return this.db.dropCollection(this.name);
  }

  /**
   * Builds a secondary index. `expireAfterSeconds` makes a TTL index (one field), as
   * MongoDB's: the server deletes a document once the `Date` in that field is more than
   * this many seconds old (its pass runs every --ttl-interval-seconds); a document whose
   * field is missing or holds no date never expires.
   */
  async createIndex(
    fields: SortSpec,
    options: { unique?: boolean; name?: string; expireAfterSeconds?: number } = {},
  ): Promise<IndexInfo> {
    return indexInfo((await this.call('CreateIndex', indexRequest(fields, options))).index);
  }

  async dropIndex(name: string): Promise<boolean> {
    return (await this.call('DropIndex', { name })).dropped;
  }

  async listIndexes(): Promise<IndexInfo[]> {
    return (await this.call('ListIndexes', {})).indexes.map(indexInfo);
  }
}

function watchRequest(collection: string, options: WatchOptions): object {
  const pipeline = options.pipeline ?? [];
  if (!Array.isArray(pipeline)) throw new TypeError('pipeline must be an array of stages');
  const full = options.fullDocument ?? '';
  if (full !== '' && full !== 'default' && full !== 'updateLookup') {
    throw new RangeError(`fullDocument must be 'default' or 'updateLookup', not '${full}'`);
  }
  return {
    collection,
    pipeline: pipeline.map((st, i) => toDocument(st, `pipeline[${i}]`)),
    full_document: full,
    page_size: options.pageSize ?? 0,
  };
}

const DONE: IteratorResult<Document> = { done: true, value: undefined };

/**
 * A change stream (Collection.watch, NexaDB.watch): an async iterable of change events, documents
 * in MongoDB's shape ({ _id: { _data: token }, operationType, wallTime, ns, documentKey,
 * fullDocument, updateDescription }), in commit order.
 *
 * The call starts when watch() returns; `await stream.ready()` resolves once it is in place (the
 * server's first message read, which carries its position): every change committed after that
 * comes (resumeAfter reads on from a saved token with nothing missed; next() waits for the first
 * message too, so ready() matters only before writes that must be seen). `resumeToken` is the
 * last event's token, moved on by the server's heartbeats (every 5 s
 * without events) past events the pipeline dropped. When the connection drops (UNAVAILABLE) the
 * stream reconnects once by itself, waiting for the server up to the client's timeoutMs, and
 * resumes after resumeToken; a second failure before the server answers rejects. Iteration ends
 * after a collection's 'invalidate' event or close(); leaving a `for await` loop early (break,
 * return, throw) closes the stream too, as for MongoDB's driver.
 */
export class ChangeStream implements AsyncIterableIterator<Document> {
  /** Where the stream stands: resumeAfter takes it. null until there is one. */
  resumeToken: string | null;
  private call: grpc.ClientReadableStream<any> | null = null;
  private messages: AsyncIterator<any> | null = null;
  private opening: Promise<OpenStream> | null = null; // the call being opened: its first message not read yet
  private pending: Array<{ token: string; event: PbDocument }> = [];
  private pageToken = '';
  private closed = false;
  private resumed = false; // reconnected, and the new stream has not answered yet
  private first: Promise<boolean> | null = null; // reading the server's first message

  /** @internal */
  constructor(private readonly db: NexaDB, private readonly request: object, resumeAfter?: string) {
    this.resumeToken = resumeAfter || null;
    this.open();
  }

  private open(): void {
    this.opening = this.db.openStream('docs', 'Watch', { ...this.request, resume_after: this.resumeToken ?? '' },
      (call) => { this.call = call; });
    this.opening.catch(() => {}); // read through nextMessage(); this keeps an unread failure from being thrown
  }

  /** The stream's next message: the first once the call is open (redirects followed), then the rest. */
  private async nextMessage(): Promise<IteratorResult<any>> {
    const opening = this.opening;
    if (opening === null) return this.messages!.next();
    this.opening = null;
    const opened = await opening;
    this.messages = opened.messages;
    return opened.first;
  }

  [Symbol.asyncIterator](): ChangeStream {
    return this;
  }

  /** Resolves once the stream is in place (rejects with the server's error, e.g. a bad pipeline). */
  async ready(): Promise<void> {
    this.first ??= this.read();
    await this.first;
  }

  /** Reads one message in; false when the stream ended. */
  private async read(): Promise<boolean> {
    for (;;) {
      if (this.closed) return false;
      let r: IteratorResult<any>;
      try {
        r = await this.nextMessage();
      } catch (e: any) {
        if (this.closed) return false;
        if (e?.code === grpc.status.UNAVAILABLE && !this.resumed) {
          this.resumed = true;
          await this.reconnect(e);
          continue;
        }
        this.closed = true;
        throw fromServiceError(e, 'Watch');
      }
      if (r.done) {
        this.closed = true;
        return false;
      }
      this.resumed = false;
      const msg = r.value;
      if (msg.events && msg.events.length > 0) {
        this.pending.push(...msg.events);
        this.pageToken = msg.resume_token;
      } else if (msg.resume_token) {
        this.resumeToken = msg.resume_token; // the first message, or a heartbeat
      }
      return true;
    }
  }

  /** The next event; blocks until one comes. */
  async next(): Promise<IteratorResult<Document>> {
    await this.ready();
    while (this.pending.length === 0) {
      if (this.closed || !(await this.read())) return DONE;
    }
    const e = this.pending.shift()!;
    this.resumeToken = this.pending.length > 0 ? e.token : this.pageToken || e.token;
    return { done: false, value: fromDocument(e.event) };
  }

  /**
   * Calls again after resumeToken once the channel is ready and reads the new stream's first
   * message; an attempt that meets UNAVAILABLE (a connection that still looked ready right after
   * the server died) is made again until timeoutMs.
   */
  private async reconnect(cause: unknown): Promise<void> {
    const deadline = this.db.timeoutMs > 0 ? Date.now() + this.db.timeoutMs : Infinity;
    while (!this.closed) {
      try {
        await this.db.waitForReady(deadline);
      } catch {
        this.closed = true;
        throw fromServiceError(cause, 'Watch');
      }
      this.open();
      let r: IteratorResult<any>;
      try {
        r = await this.nextMessage();
      } catch (e: any) {
        if (this.closed) return;
        if (e?.code !== grpc.status.UNAVAILABLE || Date.now() >= deadline) {
          this.closed = true;
          throw fromServiceError(e, 'Watch');
        }
        cause = e;
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      this.resumed = false; // the server answered
      if (r.done) this.closed = true;
      else if (r.value.resume_token) this.resumeToken = r.value.resume_token; // the first message
      return;
    }
  }

  /** Closing on leaving a `for await` loop early. */
  async return(): Promise<IteratorResult<Document>> {
    this.close();
    return DONE;
  }

  /** Stops the stream: the call is cancelled and iteration ends (a pending next() resolves done). */
  close(): void {
    this.closed = true;
    this.pending = [];
    this.call?.cancel();
  }
}

/** A CreateIndexRequest's fields (and CreateDocumentIndexRequest's, for a vector collection). */
function indexRequest(
  fields: SortSpec,
  options: { unique?: boolean; name?: string; expireAfterSeconds?: number },
): object {
  return {
    fields: sortItems(fields).map(([field, dir]) => ({
      field,
      direction: dir === 1 ? 'SORT_DIRECTION_ASCENDING' : 'SORT_DIRECTION_DESCENDING',
    })),
    unique: options.unique ?? false,
    name: options.name ?? '',
    ttl: options.expireAfterSeconds === undefined ? null : { expire_after_seconds: options.expireAfterSeconds },
  };
}

function indexInfo(i: any): IndexInfo {
  return {
    name: i.name,
    unique: i.unique,
    multikey: Boolean(i.multikey),
    fields: i.fields.map((f: any) => [f.field, f.direction === 'SORT_DIRECTION_DESCENDING' ? -1 : 1]),
    expireAfterSeconds: i.ttl ? Number(i.ttl.expire_after_seconds) : null,
  };
}

function hits(results: any[]): SearchResult[] {
  return results.map((h) => {
    const r: SearchResult = { documentId: h.document_id, similarity: h.similarity, document: fromDocument(h.document) };
    if (h.vector && h.vector.length) r.vector = h.vector;
    return r;
  });
}

/** A vector collection: documents with an embedding, searched by similarity. */
export class VectorCollection {
  constructor(readonly db: NexaDB, readonly name: string, readonly dimensions?: number) {}

  private call(method: string, request: object): Promise<any> {
    return this.db.unary('vecs', method, { collection: this.name, ...request });
  }

  /** Inserts a document with its vector; ALREADY_EXISTS if its _id is taken. */
  async insert(document: Document, vector: ArrayLike<number>): Promise<string> {
    const r = await this.call('InsertVector', { document: toDocument(document), vector: floats(vector, 'vector') });
    return r.document_id;
  }

  /** Inserts documents[i] with vectors[i] in one atomic batch. */
  async insertMany(documents: Document[], vectors: Array<ArrayLike<number>>): Promise<string[]> {
    if (documents.length !== vectors.length) {
      throw new RangeError(`${documents.length} documents but ${vectors.length} vectors`);
    }
    const docs = documents.map((d, i) => ({
      document: toDocument(d, `documents[${i}]`),
      vector: floats(vectors[i], `vectors[${i}]`),
    }));
    return (await this.call('InsertVectors', { documents: docs })).document_ids;
  }

  /** Inserts or replaces; resolves true when a new document was inserted. */
  async upsert(id: string, document: Document, vector: ArrayLike<number>): Promise<boolean> {
    const r = await this.call('UpsertVector', { id, document: toDocument(document), vector: floats(vector, 'vector') });
    return r.inserted;
  }

  /** The document with this id or null; with includeVector its stored vector is in `_vector`. */
  async get(id: string, options: { includeVector?: boolean } = {}): Promise<Document | null> {
    const call = this.call('GetVector', { id, include_vector: options.includeVector ?? false });
    return unlessNotFound(call.then((r) => {
      const doc = fromDocument(r.document);
      if (options.includeVector) doc._vector = r.vector;
      return doc;
    }), null);
  }

  async delete(id: string): Promise<boolean> {
    return (await this.call('DeleteVector', { id })).success;
  }

  /** The limit most similar documents, best first. */
  async search(queryVector: ArrayLike<number>, limit = 10, options: SearchOptions = {}): Promise<SearchResult[]> {
    return (await this.explain(queryVector, limit, options, false)).results;
  }

  /** search() that also says how it ran (the plan; with explain false, the plan is null). */
  async explain(queryVector: ArrayLike<number>, limit = 10, options: SearchOptions = {},
    explain = true): Promise<{ plan: SearchPlan | null; results: SearchResult[] }> {
    const r = await this.call('Search', {
      vector: floats(queryVector, 'queryVector'),
      limit,
      dimensions: this.dimensions ?? 0,
      explain,
      ...searchFields(options),
    });
    const p = r.plan;
    const plan = p ? { path: p.path, graphNodes: Number(p.graph_nodes), exactRows: Number(p.exact_rows),
      candidates: Number(p.candidates), ef: p.ef } : null;
    return { plan, results: hits(r.results) };
  }

  /** search() for several query vectors in one pass; one result list per query. */
  async searchBatch(queryVectors: Array<ArrayLike<number>>, limit = 10, options: SearchOptions = {}): Promise<SearchResult[][]> {
    const r = await this.call('SearchBatch', {
      queries: queryVectors.map((q, i) => ({ vector: floats(q, `queryVectors[${i}]`) })),
      limit,
      ...searchFields(options),
    });
    return r.results.map((x: any) => hits(x.results));
  }

  /**
   * Changes the index: to 'hnsw' (or new m / efConstruction) a graph is built in the background
   * while searches go on; to 'exact' it is dropped. Resolves to the collection's info.
   */
  async setIndex(index: VectorIndex): Promise<CollectionInfo> {
    return collectionInfo((await this.call('SetVectorIndex', { index: indexMessage(index) })).collection);
  }

  /**
   * Builds a secondary index over the documents' fields, maintained by every write: filtered
   * searches and find reach their matches through it instead of reading every document; a
   * unique one refuses a duplicate; with `expireAfterSeconds` a TTL index, as a collection's, whose
   * expired documents are deleted with their vectors.
   */
  async createIndex(
    fields: SortSpec,
    options: { unique?: boolean; name?: string; expireAfterSeconds?: number } = {},
  ): Promise<IndexInfo> {
    return indexInfo((await this.call('CreateDocumentIndex', indexRequest(fields, options))).index);
  }

  async dropIndex(name: string): Promise<boolean> {
    return (await this.call('DropDocumentIndex', { name })).dropped;
  }

  async listIndexes(): Promise<IndexInfo[]> {
    return (await this.call('ListDocumentIndexes', {})).indexes.map(indexInfo);
  }

  /** The collection: count, dimensions, metric, index and the graph's progress. */
  async info(): Promise<CollectionInfo> {
    const r = await this.db.unary('vecs', 'ListVectorCollections', {});
    const c = r.collections.find((x: any) => x.name === this.name);
    if (!c) throw new NexaDBError(grpc.status.NOT_FOUND, `no vector collection '${this.name}'`, 'ListVectorCollections');
    return collectionInfo(c);
  }

  /**
   * The documents matching query (all when empty) with their stored vectors, in _id order from
   * one snapshot (export); limit 0 means no limit.
   */
  async find(query: Document = {}, limit = 0, options: VectorFindOptions = {}): Promise<VectorDocument[]> {
    const out: VectorDocument[] = [];
    for await (const d of this.findIter(query, limit, options)) out.push(d);
    return out;
  }

  /** Like find, as an async iterator that reads the stream lazily, page by page. */
  findIter(query: Document = {}, limit = 0, options: VectorFindOptions = {}): AsyncGenerator<VectorDocument> {
    const req = {
      collection: this.name,
      filter: optDocument(query, 'query'),
      limit,
      page_size: options.pageSize ?? 0,
    };
    return this.db.stream('vecs', 'FindVectors', req,
      (vd: any): VectorDocument => ({ document: fromDocument(vd.document), vector: vd.vector }));
  }

  drop(): Promise<boolean> {
    return this.db.dropVectorCollection(this.name);
  }
}
