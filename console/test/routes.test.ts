import { describe, expect, it } from 'vitest';
import { match } from '../src/router';
import { findRequest, placeError } from '../src/pages/collection';
import { parseVector } from '../src/pages/vectors';
import { ApiError } from '../src/api';

describe('match', () => {
  it('reads path variables, decoded, and optional ones', () => {
    expect(match('/collections/:name/:tab?', '/collections/a%2Fb')).toEqual({ name: 'a/b' });
    expect(match('/collections/:name/:tab?', '/collections/users/indexes')).toEqual({ name: 'users', tab: 'indexes' });
    expect(match('/collections/:name/:tab?', '/collections/users/indexes/x')).toBeNull();
    expect(match('/server', '/vectors/x')).toBeNull();
    expect(match('/vectors/:name', '/vectors/%E0%A4%A')).toBeNull();
  });
});

describe('the query bar', () => {
  it('builds the Find request, with the filter as "query"', () => {
    expect(findRequest({ filter: '{age: {$gt: 25}}', projection: '', sort: '{age: -1}', limit: '5' })).toEqual({
      body: { query: { age: { $gt: 25 } }, sort: { age: -1 }, limit: 5 },
      errors: {},
    });
  });
  it('names the field a typing mistake is in', () => {
    const r = findRequest({ filter: '{age: }', projection: '{a: 1}', sort: '', limit: 'ten' });
    expect(Object.keys(r.errors).sort()).toEqual(['filter', 'limit']);
  });
  it("puts the server's error beside the field it names", () => {
    expect(placeError(new ApiError(400, 3, 'query: unknown operator $gtt'))).toEqual({ filter: 'query: unknown operator $gtt' });
    expect(placeError(new ApiError(400, 3, "limit: 'x' is not an integer"))).toEqual({ limit: "limit: 'x' is not an integer" });
    expect(placeError(new ApiError(404, 5, 'collection x not found'))).toEqual({ general: 'collection x not found' });
  });
});

describe('parseVector', () => {
  it('takes JSON arrays and plain lists', () => {
    expect(parseVector('[0.5, -1, 2e-3]')).toEqual([0.5, -1, 0.002]);
    expect(parseVector('1, 2 3')).toEqual([1, 2, 3]);
    expect(() => parseVector('[1, "a"]')).toThrow(/component 1/);
    expect(() => parseVector('')).toThrow(/list of numbers/);
  });
});
