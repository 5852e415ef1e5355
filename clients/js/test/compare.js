// Helpers for comparing documents in tests (no tests here).
'use strict';

/** x with every plain object as its [key, value] list: deepStrictEqual ignores key order. */
function ordered(x) {
  if (Array.isArray(x)) return x.map(ordered);
  if (x !== null && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    return Object.entries(x).map(([k, v]) => [k, ordered(v)]);
  }
  return x;
}

/** A stored document without the fields the server adds. */
function withoutSystemFields({ _id, _created_at, _updated_at, ...rest }) {
  return rest;
}

module.exports = { ordered, withoutSystemFields };
