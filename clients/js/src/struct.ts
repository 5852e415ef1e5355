// Plain JSON values <-> google.protobuf.Struct as @grpc/proto-loader represents it
// (objects with `fields`, values with a `kind` oneof, `oneofs: true`).
//
// A Struct number is a double; JS numbers are doubles too, so integers within +-2^53 round-trip
// exactly. Values that JSON cannot hold (undefined inside arrays, functions, symbols, bigint,
// class instances other than Date) are refused with a TypeError naming the path; a Date is
// sent as its ISO-8601 string; an object key whose value is undefined is skipped, as
// JSON.stringify does.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type Document = { [key: string]: any };

/** protobufjs's object form of google.protobuf.Value / Struct. */
export interface PbValue {
  kind?: string;
  nullValue?: string | number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: PbStruct;
  listValue?: { values?: PbValue[] };
}
export interface PbStruct {
  fields?: { [key: string]: PbValue };
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== 'object') return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

function toValue(x: unknown, path: string): PbValue {
  if (x === null) return { nullValue: 'NULL_VALUE' };
  switch (typeof x) {
    case 'boolean':
      return { boolValue: x };
    case 'number':
      return { numberValue: x };
    case 'string':
      return { stringValue: x };
    case 'object':
      if (Array.isArray(x)) {
        return {
          listValue: {
            values: x.map((v, i) => {
              if (v === undefined) throw new TypeError(`${path}[${i}]: undefined is not a JSON value`);
              return toValue(v, `${path}[${i}]`);
            }),
          },
        };
      }
      if (x instanceof Date) return { stringValue: x.toISOString() };
      if (isPlainObject(x)) return { structValue: toStruct(x, path) };
      throw new TypeError(`${path || 'value'}: ${(x as object).constructor?.name ?? 'object'} is not a JSON value`);
    default:
      throw new TypeError(`${path || 'value'}: ${typeof x} is not a JSON value`);
  }
}

/** A Struct from a plain object. */
export function toStruct(obj: unknown, path = ''): PbStruct {
  if (!isPlainObject(obj)) {
    throw new TypeError(`${path || 'document'} must be a plain object`);
  }
  const fields: { [key: string]: PbValue } = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    fields[k] = toValue(v, path ? `${path}.${k}` : k);
  }
  return { fields };
}

/** The plain value of a Value; an unset Value reads as null. */
export function fromValue(v: PbValue | undefined | null): any {
  if (!v) return null;
  switch (v.kind) {
    case 'numberValue':
      return v.numberValue;
    case 'stringValue':
      return v.stringValue;
    case 'boolValue':
      return v.boolValue;
    case 'structValue':
      return fromStruct(v.structValue);
    case 'listValue':
      return (v.listValue?.values ?? []).map(fromValue);
    default:
      return null;
  }
}

/** A plain object from a Struct (an unset Struct reads as {}). */
export function fromStruct(s: PbStruct | undefined | null): Document {
  const out: Document = {};
  if (!s || !s.fields) return out;
  for (const [k, v] of Object.entries(s.fields)) out[k] = fromValue(v);
  return out;
}
