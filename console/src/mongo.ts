// The query language as people type it in MongoDB's shell and Compass, turned into the relaxed
// Extended JSON the REST API takes: unquoted keys ({age: {$gt: 25}}), 'single quotes', trailing
// commas, // comments, and the shell's ISODate("…"), NumberLong("…"), NumberInt(…) and
// NumberDecimal is refused (the server has no decimal type). Plain JSON is a subset.

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export class ParseError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const IDENT_START = /[A-Za-z_$]/;
const IDENT = /[A-Za-z0-9_$.]/;

export function parseMongo(text: string): Json {
  let i = 0;
  const fail = (what: string): never => {
    const line = text.slice(0, i).split('\n').length;
    throw new ParseError(`${what} at line ${line}, column ${i - text.lastIndexOf('\n', i - 1)}`, i);
  };
  const ws = () => {
    for (;;) {
      while (i < text.length && /\s/.test(text[i])) i++;
      if (text.startsWith('//', i)) {
        while (i < text.length && text[i] !== '\n') i++;
      } else if (text.startsWith('/*', i)) {
        const end = text.indexOf('*/', i + 2);
        if (end < 0) fail('unterminated comment');
        i = end + 2;
      } else return;
    }
  };
  const str = (): string => {
    const q = text[i++];
    let out = '';
    while (i < text.length && text[i] !== q) {
      const c = text[i++];
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = text[i++];
      const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '/': '/', '\\': '\\', '"': '"', "'": "'" };
      if (e in simple) out += simple[e];
      else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i, i + 4))) {
        out += String.fromCharCode(parseInt(text.slice(i, i + 4), 16));
        i += 4;
      } else fail(`bad escape \\${e ?? ''}`);
    }
    if (text[i] !== q) fail('unterminated string');
    i++;
    return out;
  };
  const ident = (): string => {
    const start = i;
    while (i < text.length && IDENT.test(text[i])) i++;
    return text.slice(start, i);
  };
  const num = (): number => {
    const m = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) fail('expected a value');
    i += m![0].length;
    return Number(m![0]);
  };
  const call = (name: string): Json => {
    ws();
    if (text[i] !== '(') fail(`expected ( after ${name}`);
    i++;
    ws();
    const arg = text[i] === ')' ? undefined : value();
    ws();
    if (text[i] !== ')') fail(`expected ) to close ${name}(`);
    i++;
    switch (name) {
      case 'ISODate':
      case 'Date': {
        const d = arg === undefined ? new Date() : new Date(arg as string | number);
        if (isNaN(d.getTime())) fail(`${name}(${JSON.stringify(arg)}) is not a date`);
        return { $date: d.toISOString() };
      }
      case 'NumberLong':
        if (!/^-?\d+$/.test(String(arg))) fail(`NumberLong(${JSON.stringify(arg)}) is not an integer`);
        return { $numberLong: String(arg) };
      case 'NumberInt':
        if (!Number.isInteger(Number(arg))) fail(`NumberInt(${JSON.stringify(arg)}) is not an integer`);
        return Number(arg);
    }
    return fail(`${name}() is not supported here`);
  };
  const value = (): Json => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: JsonObject = {};
      for (;;) {
        ws();
        if (text[i] === '}') {
          i++;
          return obj;
        }
        let key: string;
        if (text[i] === '"' || text[i] === "'") key = str();
        else if (i < text.length && IDENT_START.test(text[i])) key = ident();
        else return fail('expected a key');
        if (Object.prototype.hasOwnProperty.call(obj, key)) fail(`duplicate key "${key}"`);
        ws();
        if (text[i] !== ':') fail(`expected : after "${key}"`);
        i++;
        obj[key] = value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const arr: Json[] = [];
      for (;;) {
        ws();
        if (text[i] === ']') {
          i++;
          return arr;
        }
        arr.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== ']') fail('expected , or ]');
      }
    }
    if (c === '"' || c === "'") return str();
    if (c !== undefined && IDENT_START.test(c)) {
      const start = i;
      const word = ident();
      if (word === 'true') return true;
      if (word === 'false') return false;
      if (word === 'null') return null;
      if (word === 'new') {
        ws();
        return call(ident());
      }
      if (/^[A-Za-z]+$/.test(word) && text[i] === '(') return call(word);
      i = start;
      return fail(`unexpected "${word}"`);
    }
    return num();
  };
  const v = value();
  ws();
  if (i < text.length) fail('unexpected text after the value');
  return v;
}

// An object typed in a field ("" is the empty object); ParseError when it is not one.
export function parseObject(text: string): JsonObject {
  if (text.trim() === '') return {};
  const v = parseMongo(text);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ParseError('expected an object { … }', 0);
  return v;
}

export function isObject(v: Json | undefined): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// Fields the database sets on every write: an edit never sends them.
export const MANAGED = ['_id', '_created_at', '_updated_at'];

// The update that turns original into edited, touching only the top-level fields whose value
// changed, so a field the user did not touch keeps its stored type (a double that prints as 2,
// a date, an int64) exactly: {$set: {...changed}, $unset: {...removed}}; null when nothing did.
export function editUpdate(original: JsonObject, edited: JsonObject): JsonObject | null {
  const set: JsonObject = {};
  const unset: JsonObject = {};
  for (const [k, v] of Object.entries(edited)) {
    if (MANAGED.includes(k)) continue;
    if (!(k in original) || JSON.stringify(original[k]) !== JSON.stringify(v)) set[k] = v;
  }
  for (const k of Object.keys(original)) if (!MANAGED.includes(k) && !(k in edited)) unset[k] = '';
  const update: JsonObject = {};
  if (Object.keys(set).length) update.$set = set;
  if (Object.keys(unset).length) update.$unset = unset;
  return Object.keys(update).length ? update : null;
}

// Which input a server error message is about. The REST API names it first ("limit: 'x' is
// not an integer", "sort.age must be 1 or -1", "projection cannot mix …") or last, as a path
// ("unknown operator $gtt at filter.age", "unknown pipeline stage $foo at pipeline.1").
// null when it names none.
const FIELDS = 'query|filter|projection|sort|limit|skip|pipeline|vector|ef|document|update|fields|name';
const AT_START = new RegExp(`^(${FIELDS})(?:\\[(\\d+)\\]|\\.(\\d+))?(?=[.:\\s\\[]|$)`);
const AT_END = new RegExp(`\\bat (${FIELDS})(?:\\[(\\d+)\\]|\\.(\\d+))?(?=[.:\\s\\[]|$)`);

export function errorField(message: string): { field: string; index?: number } | null {
  const m = AT_START.exec(message) ?? AT_END.exec(message);
  if (!m) return null;
  const field = m[1] === 'query' ? 'filter' : m[1];
  const index = m[2] ?? m[3];
  return index !== undefined ? { field, index: Number(index) } : { field };
}

// A document's value as a short line for a table cell.
export function cell(v: Json | undefined): string {
  if (v === undefined) return '';
  if (v === null) return 'null';
  if (isObject(v)) {
    if (typeof v.$date === 'string') return v.$date;
    const ms = isObject(v.$date) ? v.$date.$numberLong : undefined; // dates before 1970 or after 9999
    if (typeof ms === 'string' && !isNaN(new Date(Number(ms)).getTime())) return new Date(Number(ms)).toISOString();
    if (typeof v.$numberLong === 'string') return v.$numberLong;
  }
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 79) + '…' : s;
}
