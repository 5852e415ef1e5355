// Calls to the server's public REST API on this page's origin, with the user's API key in the
// X-API-Key header. The key lives in this tab's sessionStorage only: never in a URL, a cookie
// or localStorage, and it is gone when the tab closes.
import type { Json, JsonObject } from './mongo';

const STORAGE = 'nexadb.console.key';

let key: string | null = null;

export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(STORAGE);
  } catch {
    return null;
  }
}

export function setKey(k: string | null) {
  key = k;
  try {
    if (k === null) sessionStorage.removeItem(STORAGE);
    else sessionStorage.setItem(STORAGE, k);
  } catch {
    /* storage refused (private mode): the key lasts as long as the page */
  }
}

// A failed call: the HTTP status and the server's gRPC-style body {code, message, details}.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

// Called when the server answers 401 (the key was revoked or the server restarted with others).
let onUnauthenticated: () => void = () => {};
export function whenUnauthenticated(f: () => void) {
  onUnauthenticated = f;
}

async function request(method: string, path: string, body?: unknown, accept = 'application/json'): Promise<Response> {
  const headers: Record<string, string> = { Accept: accept };
  if (key !== null) headers['X-API-Key'] = key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp: Response;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
    });
  } catch (e) {
    throw new ApiError(0, 14, `the server did not answer (${(e as Error).message})`);
  }
  if (!resp.ok) {
    let code = 2;
    let message = `${resp.status} ${resp.statusText}`;
    try {
      const j = await resp.json();
      if (typeof j.message === 'string') message = j.message;
      if (typeof j.code === 'number') code = j.code;
    } catch {
      /* not JSON */
    }
    if (resp.status === 401 && key !== null) onUnauthenticated();
    throw new ApiError(resp.status, code, message);
  }
  return resp;
}

export async function call<T = JsonObject>(method: string, path: string, body?: unknown): Promise<T> {
  const resp = await request(method, path, body);
  return (await resp.json()) as T;
}

export async function text(path: string): Promise<string> {
  return (await request('GET', path, undefined, 'text/plain')).text();
}

export const enc = encodeURIComponent;

// ---- the shapes the console reads (proto field names, as the REST API writes them) ----

export interface CollectionInfo {
  name: string;
  count: number;
  size_bytes: number;
  kind: 'documents' | 'vectors';
  dimensions?: number;
  metric?: string;
  index?: { kind?: string; m?: number; ef_construction?: number; quantization?: string; oversample?: number };
  indexed?: number;
  index_building?: boolean;
  index_bytes?: number;
}

export interface IndexInfo {
  name: string;
  fields: { field: string; direction?: string }[];
  unique?: boolean;
  multikey?: boolean;
  ttl?: { expire_after_seconds?: number };
}

export interface FindResult {
  documents: JsonObject[];
  count: number;
  next_page_token?: string;
  explain?: Json;
}

export interface SearchHit {
  document_id: string;
  similarity: number;
  document?: JsonObject;
}

export interface Stats {
  collections: CollectionInfo[];
  total_documents: number;
  engine?: {
    memtable_bytes: number;
    levels: { level: number; files: number; bytes: number }[];
    compactions: number;
    wal_syncs: number;
    write_amplification: number;
    write_stalls: number;
    block_cache_hits: number;
    block_cache_misses: number;
  };
  uptime_seconds: number;
  rss_bytes: number;
  vector_kernel: string;
}

export interface Status {
  status: string;
  version: string;
  uptime_seconds: number;
  health: string;
  reason: string;
}

export function bytes(n: number | undefined): string {
  const v = n ?? 0;
  if (v < 1024) return `${v} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let x = v / 1024;
  let u = 0;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return `${x < 10 ? x.toFixed(1) : Math.round(x)} ${units[u]}`;
}
