import { describe, expect, it } from 'vitest';
import { cell, editUpdate, errorField, parseMongo, parseObject, ParseError } from '../src/mongo';

describe('parseMongo', () => {
  it('reads plain JSON', () => {
    expect(parseMongo('{"a": [1, 2.5, "x", true, null], "b": {"c": -1e3}}')).toEqual({
      a: [1, 2.5, 'x', true, null],
      b: { c: -1000 },
    });
  });
  it('reads the shell syntax: unquoted keys, single quotes, trailing commas, comments', () => {
    expect(parseMongo("{ age: { $gt: 25, }, 'name': 'Ada', // who\n tags: ['a',], a.b: 1 }")).toEqual({
      age: { $gt: 25 },
      name: 'Ada',
      tags: ['a'],
      'a.b': 1,
    });
  });
  it('keeps key order', () => {
    expect(Object.keys(parseMongo('{ z: 1, a: 2, m: 3 }') as object)).toEqual(['z', 'a', 'm']);
  });
  it("turns the shell's constructors into Extended JSON", () => {
    expect(parseMongo('{ at: ISODate("2026-01-02T03:04:05Z"), n: NumberLong("9007199254740993"), i: NumberInt(3) }')).toEqual({
      at: { $date: '2026-01-02T03:04:05.000Z' },
      n: { $numberLong: '9007199254740993' },
      i: 3,
    });
    expect(parseMongo('new Date("2026-01-02")')).toEqual({ $date: '2026-01-02T00:00:00.000Z' });
  });
  it('refuses what it cannot read, saying where', () => {
    expect(() => parseMongo('{ a: }')).toThrow(ParseError);
    expect(() => parseMongo('{ a: 1 } x')).toThrow(/after the value/);
    expect(() => parseMongo('{ a: 1, a: 2 }')).toThrow(/duplicate key "a"/);
    expect(() => parseMongo('{ a: NumberDecimal("1.5") }')).toThrow(/not supported/);
    expect(() => parseMongo('{ a: "x')).toThrow(/unterminated string/);
    expect(() => parseMongo('{\n  a: ?\n}')).toThrow(/line 2/);
  });
  it('parseObject: empty text is {}, other values are refused', () => {
    expect(parseObject('  ')).toEqual({});
    expect(() => parseObject('[1]')).toThrow(/expected an object/);
  });
});

describe('editUpdate', () => {
  const original = {
    _id: 'x1',
    name: 'Ada',
    score: 2, // a double that prints as 2: must not be sent back
    at: { $date: '2026-01-02T03:04:05Z' },
    big: { $numberLong: '9007199254740993' },
    gone: true,
    _created_at: { $date: '2026-01-01T00:00:00Z' },
  };
  it('sends only what changed, so untouched fields keep their types', () => {
    const edited = { ...original, name: 'Grace', added: [1] } as Record<string, unknown>;
    delete edited.gone;
    expect(editUpdate(original, edited as never)).toEqual({ $set: { name: 'Grace', added: [1] }, $unset: { gone: '' } });
  });
  it('never sends the fields the database manages', () => {
    expect(editUpdate(original, { ...original, _id: 'other', _updated_at: 1 })).toBeNull();
  });
  it('keeps an edited date or int64 in Extended JSON', () => {
    const u = editUpdate(original, { ...original, at: { $date: '2027-01-01T00:00:00Z' }, big: { $numberLong: '9007199254740995' } });
    expect(u).toEqual({ $set: { at: { $date: '2027-01-01T00:00:00Z' }, big: { $numberLong: '9007199254740995' } } });
  });
});

describe('errorField', () => {
  it('finds the field a server message starts with', () => {
    expect(errorField("limit: 'x' is not an integer")).toEqual({ field: 'limit' });
    expect(errorField('query: unknown operator $foo')).toEqual({ field: 'filter' });
    expect(errorField('sort.age: must be 1 or -1')).toEqual({ field: 'sort' });
    expect(errorField('pipeline[2]: unknown stage $nope')).toEqual({ field: 'pipeline', index: 2 });
    // as the server words them
    expect(errorField('unknown operator $gtt at filter.age')).toEqual({ field: 'filter' });
    expect(errorField('sort.age must be 1 or -1')).toEqual({ field: 'sort' });
    expect(errorField('unknown pipeline stage $foo at pipeline.1')).toEqual({ field: 'pipeline', index: 1 });
    expect(errorField('projection cannot mix inclusion and exclusion (except _id)')).toEqual({ field: 'projection' });
    expect(errorField('collection not found')).toBeNull();
    expect(errorField('sorted badly')).toBeNull();
  });
});

describe('cell', () => {
  it('shows dates and int64 as their text, and cuts long values', () => {
    expect(cell({ $date: '2026-01-02T03:04:05Z' })).toBe('2026-01-02T03:04:05Z');
    expect(cell({ $numberLong: '123' })).toBe('123');
    expect(cell({ $date: { $numberLong: '-3695155200000' } })).toBe('1852-11-27T00:00:00.000Z');
    expect(cell('x'.repeat(100)).length).toBe(80);
    expect(cell(undefined)).toBe('');
    expect(cell(null)).toBe('null');
  });
});
