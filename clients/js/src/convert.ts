// JS values <-> nexadb.v1.Document, the wire form of every document, filter, update, projection,
// sort and pipeline stage: one BSON document (bsonspec.org), written and read by the npm `bson`
// package (MongoDB's js-bson).
//
// Going out, a plain object keeps its key order and its values map as
//   string, boolean, null  -> string, boolean, null
//   number                 -> int32 when an integer within int32, else double (the server stores
//                             an integral double within +-2^53 as an integer, so that is exact)
//   bigint                 -> int64 (a RangeError outside int64)
//   Date                   -> UTC datetime (milliseconds)
//   Uint8Array, Buffer     -> binary, subtype 0
//   array, plain object    -> array, document
// An object key whose value is undefined is skipped, as JSON.stringify does. Anything else
// (undefined in an array, functions, symbols, Maps, class instances, js-bson's own classes such as
// ObjectId or Long) is refused with a TypeError naming its path before anything is sent: js-bson
// would silently drop some of them and write others as types the server refuses.
//
// Coming back: objects in the server's key order, strings, booleans, null, numbers, a bigint only
// for an int64 a number cannot hold exactly (outside +-(2^53-1)), Date, and Buffer (a Uint8Array)
// for binary of any subtype.
import { Binary, calculateObjectSize, DBRef, deserialize, serialize } from 'bson';

/** A value a document may hold: bigint for int64, Date for datetime, Uint8Array for binary. */
export type DocumentValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Date
  | Uint8Array
  | DocumentValue[]
  | { [key: string]: DocumentValue | undefined };

/** A document, filter, update, ... Its values are typed `any` so that reading fields stays easy. */
export type Document = { [key: string]: any };

/** proto-loader's object form of nexadb.v1.Document. */
export interface PbDocument {
  bson?: Uint8Array;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
// The server refuses a document over 16 MiB. js-bson's serialize() writes into a 17 MiB buffer and
// either throws a RangeError past its end or, for a string, silently truncates it; a truncated
// result still counts at least the buffer's length less a partial UTF-8 character, so refusing
// past 16 MiB refuses every truncated one too.
const MAX_BSON_BYTES = 16 * 1024 * 1024;

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== 'object') return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

function describe(x: unknown): string {
  return x !== null && typeof x === 'object' ? (x.constructor?.name ?? 'object') : typeof x;
}

/** Throws unless x is a value the header's table maps; `open` holds the containers x is inside. */
function check(x: unknown, path: string, open: object[]): void {
  switch (typeof x) {
    case 'string':
    case 'boolean':
    case 'number':
      return;
    case 'bigint':
      // js-bson would wrap it modulo 2^64
      if (x < INT64_MIN || x > INT64_MAX) throw new RangeError(`${path}: ${x} is outside int64`);
      return;
    case 'object':
      if (x === null || x instanceof Uint8Array) return;
      if (x instanceof Date) {
        // js-bson would send an invalid Date as 1970-01-01
        if (Number.isNaN(x.getTime())) throw new RangeError(`${path}: invalid Date`);
        return;
      }
      if (Array.isArray(x) || isPlainObject(x)) return checkContainer(x, path, open);
  }
  throw new TypeError(`${path}: ${describe(x)} cannot be stored in a document`);
}

function checkContainer(x: unknown[] | Record<string, unknown>, path: string, open: object[]): void {
  if (open.includes(x)) throw new TypeError(`${path}: circular reference`);
  open.push(x);
  if (Array.isArray(x)) {
    for (let i = 0; i < x.length; i++) { // not forEach: a hole is refused like undefined
      if (x[i] === undefined) throw new TypeError(`${path}[${i}]: undefined cannot be stored in an array`);
      check(x[i], `${path}[${i}]`, open);
    }
  } else {
    for (const [k, v] of Object.entries(x)) {
      const p = path ? `${path}.${k}` : k;
      // BSON ends keys with a NUL; js-bson takes an object with _bsontype for one of its classes
      if (k.includes('\0')) throw new TypeError(`${p}: a key cannot contain NUL`);
      if (k === '_bsontype') throw new TypeError(`${p}: the key _bsontype is reserved by js-bson`);
      if (v !== undefined) check(v, p, open);
    }
  }
  open.pop();
}

/**
 * obj as a Document message. `path` prefixes the paths in errors ('query' gives query.a.b[1]);
 * '' suits a document.
 */
export function toDocument(obj: unknown, path = ''): PbDocument {
  const what = path || 'document';
  if (!isPlainObject(obj)) throw new TypeError(`${what} must be a plain object`);
  checkContainer(obj, path, []);
  let bson: Uint8Array | null = null;
  try {
    bson = serialize(obj, { ignoreUndefined: true });
  } catch (e) {
    // past js-bson's buffer, or else (a stack overflow from deep nesting, say) e is the error
    if (!(e instanceof RangeError) || calculateObjectSize(obj) <= MAX_BSON_BYTES) throw e;
  }
  if (bson === null || bson.length > MAX_BSON_BYTES) {
    throw new RangeError(`${what}: more than 16 MiB of BSON (the server's limit for one document)`);
  }
  return { bson };
}

/** A plain object from a Document message (an unset or empty one reads as {}). */
export function fromDocument(d: PbDocument | null | undefined): Document {
  return d?.bson?.length ? read(d.bson) : {};
}

// useBigInt64 gives every int64 as a bigint, so settle() knows exactly which values were int64;
// raw gives each embedded document as its bytes, for read() to take one level at a time.
const READ_OPTIONS = { useBigInt64: true, raw: true };

/**
 * One BSON document as a plain object. js-bson reads an object whose $-keys are only $ref, $id
 * and $db as a DBRef, which loses their place in the key order and splits a dotted $ref into $db
 * and $ref; it judges by the last $-key, so such an object is read again with an unused $-key
 * appended, which is then deleted.
 */
function read(bytes: Uint8Array): Document {
  let doc = deserialize(bytes, READ_OPTIONS);
  if (doc instanceof DBRef) {
    let key = '$';
    while (key in doc.fields) key += '$';
    doc = deserialize(withNullField(bytes, key), READ_OPTIONS);
    delete doc[key];
  }
  for (const k of Object.keys(doc)) doc[k] = settle(doc[k]);
  return doc;
}

/** A BSON document's bytes with a null field appended (key must be ASCII). */
function withNullField(bytes: Uint8Array, key: string): Uint8Array {
  const out = Buffer.concat([bytes.subarray(0, -1), Buffer.from(`\x0a${key}\0\0`, 'latin1')]);
  out.writeInt32LE(out.length, 0);
  return out;
}

/** A value js-bson read, as the header says. */
function settle(x: unknown): unknown {
  if (typeof x === 'bigint') return x >= SAFE_MIN && x <= SAFE_MAX ? Number(x) : x;
  // a copy: js-bson's bytes are a view that would keep the whole received message alive
  if (x instanceof Binary) return Buffer.from(x.value());
  if (x instanceof Uint8Array) return read(x); // an embedded document, left raw
  if (Array.isArray(x)) return x.map(settle);
  return x;
}
