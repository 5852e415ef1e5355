'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { toStruct, fromStruct } = require('../dist/struct');

// the same encoding grpc-js uses, so the round trip covers the wire form
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const root = protobuf.Root.fromJSON(protobuf.common.get('google/protobuf/struct.proto')); // protobufjs: a dependency of proto-loader
const Struct = root.lookupType('google.protobuf.Struct');
const wire = (obj) => {
  const msg = Struct.fromObject(toStruct(obj));
  const back = Struct.decode(Struct.encode(msg).finish());
  return fromStruct(Struct.toObject(back, { oneofs: true, defaults: true }));
};

test('plain values round-trip through Struct', () => {
  const d = { s: 'x', i: 28, f: 2.5, t: true, n: null, arr: [1, 'a', [2], { k: 1.5 }],
    empty: [], obj: {}, nested: { deep: { v: [null, false] } }, big: 2 ** 53 };
  assert.deepStrictEqual(wire(d), d);
  assert.ok(protoLoader); // loaded beside grpc-js
});

test('undefined keys are skipped, dates become ISO strings', () => {
  assert.deepStrictEqual(wire({ a: undefined, b: 1, d: new Date(0) }), { b: 1, d: '1970-01-01T00:00:00.000Z' });
});

test('values JSON cannot hold are refused with their path', () => {
  assert.throws(() => toStruct({ a: { b: [1, () => 0] } }), /a\.b\[1\]: function/);
  assert.throws(() => toStruct({ a: 10n }), /a: bigint/);
  assert.throws(() => toStruct({ a: [undefined] }), /a\[0\]: undefined/);
  assert.throws(() => toStruct({ m: new Map() }), /m: Map/);
  assert.throws(() => toStruct([1, 2]), /must be a plain object/);
});
