'use strict';
// src/convert.ts without a server: JS values -> BSON bytes -> JS values, and the BSON types on the
// wire, read back with js-bson's wrapper classes (promoteValues: false).
const test = require('node:test');
const assert = require('node:assert');
const { Binary, Long, ObjectId, deserialize, serialize } = require('bson');
const { toDocument, fromDocument } = require('../dist/convert');
const { ordered } = require('./compare');

const roundTrip = (x) => fromDocument(toDocument(x));
const wireTypes = (x) => deserialize(toDocument(x).bson, { promoteValues: false });
const assertSame = (got, want) => assert.deepStrictEqual(ordered(got), ordered(want));

test('key order round-trips at every level', () => {
  const d = { zeta: 1, alpha: { z: 1, a: [{ y: 1, b: 2 }, { m: 1, c: { q: 1, d: 1 } }] }, mid: 'x', beta: true };
  assertSame(roundTrip(d), d);
});

test('plain values and nested arrays and objects round-trip', () => {
  const d = { s: 'x', e: '', i: 28, f: 2.5, t: true, fl: false, n: null, neg: -7, nz: -0,
    arr: [1, 'a', [2, [3, []]], { k: [{ deep: null }] }], empty: [], obj: {} };
  const got = roundTrip(d);
  assertSame(got, d);
  assert.ok(Object.is(got.nz, -0));
  assertSame(roundTrip(Object.assign(Object.create(null), { b: 1, a: 2 })), { b: 1, a: 2 });
});

test('numbers go out as int32 within int32, else double; bigint as int64', () => {
  const w = wireTypes({ a: 42, b: 2 ** 31 - 1, c: -(2 ** 31), d: 2 ** 31, e: 2.5, f: -0, g: 2 ** 53, h: 5n });
  for (const k of ['a', 'b', 'c']) assert.strictEqual(w[k]._bsontype, 'Int32', k);
  for (const k of ['d', 'e', 'f', 'g']) assert.strictEqual(w[k]._bsontype, 'Double', k);
  assert.strictEqual(w.h._bsontype, 'Long');
  assert.strictEqual(w.h.toString(), '5');
});

test('int64 comes back as a number only where a number holds it exactly', () => {
  const d = { max: 2n ** 63n - 1n, min: -(2n ** 63n), over: 2n ** 53n + 1n, edge: 2n ** 53n,
    safe: 2n ** 53n - 1n, negSafe: -(2n ** 53n - 1n), small: 42n };
  assertSame(roundTrip(d), { max: 2n ** 63n - 1n, min: -(2n ** 63n), over: 2n ** 53n + 1n, edge: 2n ** 53n,
    safe: 2 ** 53 - 1, negSafe: -(2 ** 53 - 1), small: 42 });
  // an int64 that another writer used for a small value reads as a number too
  assert.deepStrictEqual(fromDocument({ bson: serialize({ n: Long.fromNumber(42) }) }), { n: 42 });
  assert.deepStrictEqual(roundTrip({ big: 2 ** 60, frac: 1e300 }), { big: 2 ** 60, frac: 1e300 });
});

test('dates keep their milliseconds', () => {
  const d = { at: new Date('2024-02-29T12:34:56.789Z'), before: new Date(-1), epoch: new Date(0) };
  assert.strictEqual(wireTypes(d).at.getTime(), d.at.getTime()); // a UTC datetime, not a string
  const got = roundTrip(d);
  for (const k of Object.keys(d)) {
    assert.ok(got[k] instanceof Date, k);
    assert.strictEqual(got[k].getTime(), d[k].getTime(), k);
  }
});

test('binary: Uint8Array and Buffer out as subtype 0, back as a Buffer of its own', () => {
  const w = wireTypes({ u: new Uint8Array([1, 2, 3]), b: Buffer.from([0, 255]) });
  assert.ok(w.u instanceof Binary && w.u.sub_type === 0 && w.b.sub_type === 0);
  const doc = toDocument({ u: new Uint8Array([1, 2, 3]), b: Buffer.from([0, 255]), e: new Uint8Array(0) });
  const got = fromDocument(doc);
  assert.deepStrictEqual(got, { u: Buffer.from([1, 2, 3]), b: Buffer.from([0, 255]), e: Buffer.alloc(0) });
  doc.bson.fill(0); // the result must not be a view into the received bytes
  assert.deepStrictEqual(got.u, Buffer.from([1, 2, 3]));
  const other = { bson: serialize({ uuid: new Binary(Buffer.alloc(16, 7), 4), user: new Binary(Buffer.from('hi'), 0x80) }) };
  assert.deepStrictEqual(fromDocument(other), { uuid: Buffer.alloc(16, 7), user: Buffer.from('hi') });
});

test('objects js-bson would read as a DBRef come back as they were sent', () => {
  const d = { r: { $id: 1, $ref: 'db.coll', x: 2 }, s: { $: 0, $ref: 'a', $id: { k: 1 }, $db: 'd' },
    list: [{ $ref: 'a', $id: 2 }] };
  assertSame(roundTrip(d), d);
  const top = { $id: 7, $ref: 'top.level' };
  assertSame(roundTrip(top), top);
});

test('an unset or empty Document reads as {}; __proto__ stays a key', () => {
  assert.deepStrictEqual(fromDocument(null), {});
  assert.deepStrictEqual(fromDocument(undefined), {});
  assert.deepStrictEqual(fromDocument({ bson: Buffer.alloc(0) }), {});
  const got = roundTrip(JSON.parse('{"__proto__": {"x": 1}, "a": 1}'));
  assert.strictEqual(Object.getPrototypeOf(got), Object.prototype);
  assert.deepStrictEqual(Object.keys(got), ['__proto__', 'a']);
});

test('undefined object keys are skipped, as JSON.stringify does', () => {
  assertSame(roundTrip({ a: undefined, b: 1, c: { d: undefined, e: 2 } }), { b: 1, c: { e: 2 } });
});

test('values a document cannot hold are refused with their path', () => {
  assert.throws(() => toDocument({ a: { b: [1, () => 0] } }), { name: 'TypeError', message: /^a\.b\[1\]: function/ });
  assert.throws(() => toDocument({ a: [undefined] }), { name: 'TypeError', message: /^a\[0\]: undefined/ });
  assert.throws(() => toDocument({ a: [1, , 3] }), /^TypeError: a\[1\]: undefined/); // a hole
  assert.throws(() => toDocument({ s: Symbol('x') }), /s: symbol/);
  assert.throws(() => toDocument({ m: new Map() }), /m: Map/);
  assert.throws(() => toDocument({ m: new Set() }), /m: Set/);
  assert.throws(() => toDocument({ r: /x/ }), /r: RegExp/);
  assert.throws(() => toDocument({ o: new ObjectId() }), /o: ObjectId/);
  assert.throws(() => toDocument({ l: Long.fromNumber(1) }), /l: Long/);
  assert.throws(() => toDocument({ f: new Float32Array(2) }), /f: Float32Array/);
  assert.throws(() => toDocument({ c: new (class Point {})() }), /c: Point/);
  assert.throws(() => toDocument({ x: { _bsontype: 'Long' } }), /x\._bsontype: the key _bsontype is reserved/);
  assert.throws(() => toDocument({ 'a\0b': 1 }), /cannot contain NUL/);
  const loop = { a: {} };
  loop.a.self = loop;
  assert.throws(() => toDocument(loop), /a\.self: circular reference/);
  assert.throws(() => toDocument({ up: 2n ** 63n }), { name: 'RangeError', message: /^up: 9223372036854775808 is outside int64/ });
  assert.throws(() => toDocument({ down: -(2n ** 63n) - 1n }), { name: 'RangeError', message: /^down: -9223372036854775809/ });
  assert.throws(() => toDocument({ when: new Date(NaN) }), { name: 'RangeError', message: /^when: invalid Date/ });
  assert.throws(() => toDocument({ a: { b: 1n << 64n } }, 'query'), /^RangeError: query\.a\.b: /);
});

test('what is not a plain object is refused as a whole', () => {
  for (const x of [[1, 2], null, 'x', new Date(0), new Map(), new Uint8Array(1)]) {
    assert.throws(() => toDocument(x), /^TypeError: document must be a plain object/);
  }
  assert.throws(() => toDocument([], 'pipeline[0]'), /^TypeError: pipeline\[0\] must be a plain object/);
});

test('a document over 16 MiB of BSON is refused, not truncated', () => {
  const mib = 1024 * 1024;
  assert.throws(() => toDocument({ s: 'x'.repeat(17 * mib) }), { name: 'RangeError', message: /16 MiB/ });
  assert.throws(() => toDocument({ b: Buffer.alloc(18 * mib) }), { name: 'RangeError', message: /16 MiB/ });
  assert.throws(() => toDocument({ s: 'é'.repeat(8.6 * mib) }, 'update'), /^RangeError: update: more than 16 MiB/);
  assert.strictEqual(roundTrip({ s: 'x'.repeat(15 * mib) }).s.length, 15 * mib);
});
