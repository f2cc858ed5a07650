import { describe, expect, it } from 'vitest';

import { KeyIndex, textKey } from '../../src/data/keyIndex';

describe('textKey', () => {
  it('is the same for the same text and differs with any change, the length included', () => {
    expect(textKey('abc')).toEqual(textKey('abc'));
    expect(textKey('abc')).not.toEqual(textKey('abd'));
    expect(textKey('abc')[4]).toBe(3);
    expect(textKey('')[4]).toBe(0);
  });
});

describe('KeyIndex', () => {
  it('gives back the value a key was first added with, across table growth, as a Map would', () => {
    const index = new KeyIndex();
    const reference = new Map<string, number>();
    // 5,000 distinct texts, each seen up to three times: the table grows several times.
    const got: (number | undefined)[] = [];
    const want: (number | undefined)[] = [];
    for (let line = 1; line <= 12_000; line++) {
      const text = `example ${(line * 7919) % 5_000}`;
      got.push(index.firstOrAdd(textKey(text), line));
      want.push(reference.get(text));
      if (!reference.has(text)) reference.set(text, line);
    }
    expect(got).toEqual(want);
    expect(want.filter((v) => v !== undefined).length).toBe(7_000);
    expect(index.size).toBe(5_000);
  });

  it('tells keys apart that share a slot (same first word)', () => {
    const index = new KeyIndex();
    const ids = Array.from({ length: 1000 }, (_, i) => i);
    expect(ids.map((i) => index.firstOrAdd(Uint32Array.of(5, 0, 0, i, 1), i))).toEqual(ids.map(() => undefined));
    expect(ids.map((i) => index.firstOrAdd(Uint32Array.of(5, 0, 0, i, 1), 0))).toEqual(ids);
    expect(index.firstOrAdd(Uint32Array.of(5, 0, 0, 0, 2), 9)).toBeUndefined();
  });

  it('refuses a key of the wrong size', () => {
    expect(() => new KeyIndex().firstOrAdd(new Uint32Array(4), 1)).toThrow(RangeError);
  });
});
