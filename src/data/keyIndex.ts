// Duplicate detection in flat memory: each distinct key (a 128-bit hash and a length) and the
// line it was first seen on live in typed arrays, found through an open-addressing table of
// entry numbers, instead of a string key and a Map entry per example.

import { ChunkedUint32 } from './chunkedArray';

/** Words of a key: four of hash, one of length. */
export const KEY_WORDS = 5;

/**
 * 128-bit string hash: two independent cyrb53-style lanes in one pass, followed by the text's
 * length. Duplicates are found by this key rather than by the text itself so memory does not
 * grow with the dataset's size; an accidental collision is out of reach.
 */
export function textKey(text: string): Uint32Array {
  let a1 = 0xdeadbeef;
  let a2 = 0x41c6ce57;
  let b1 = 0x9e3779b9;
  let b2 = 0x85ebca6b;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a1 = Math.imul(a1 ^ c, 2654435761);
    a2 = Math.imul(a2 ^ c, 1597334677);
    b1 = Math.imul(b1 ^ c, 2246822519);
    b2 = Math.imul(b2 ^ c, 3266489917);
  }
  const ax = Math.imul(a1 ^ (a1 >>> 16), 2246822507) ^ Math.imul(a2 ^ (a2 >>> 13), 3266489909);
  const ay = Math.imul(a2 ^ (a2 >>> 16), 2246822507) ^ Math.imul(ax ^ (ax >>> 13), 3266489909);
  const bx = Math.imul(b1 ^ (b1 >>> 16), 2246822507) ^ Math.imul(b2 ^ (b2 >>> 13), 3266489909);
  const by = Math.imul(b2 ^ (b2 >>> 16), 2246822507) ^ Math.imul(bx ^ (bx >>> 13), 3266489909);
  return Uint32Array.of(ax, ay, bx, by, text.length);
}

/** Keys with the number each was first added with (a line number). */
export class KeyIndex {
  private readonly keys = new ChunkedUint32();
  private readonly values = new ChunkedUint32();
  /** Entry number + 1 per slot, 0 for an empty slot; at most half full. */
  private table = new Uint32Array(1 << 10);

  get size(): number {
    return this.values.length;
  }

  /** The value the key was first added with; or, for a new key, undefined after adding it with `value`. */
  firstOrAdd(key: Uint32Array, value: number): number | undefined {
    if (key.length !== KEY_WORDS) throw new RangeError(`a key has ${KEY_WORDS} words, got ${key.length}`);
    const mask = this.table.length - 1;
    let slot = key[0]! & mask;
    for (;;) {
      const entry = this.table[slot]!;
      if (entry === 0) break;
      if (this.matches(entry - 1, key)) return this.values.get(entry - 1);
      slot = (slot + 1) & mask;
    }
    const entry = this.values.length;
    for (const word of key) this.keys.push(word);
    this.values.push(value);
    this.table[slot] = entry + 1;
    if (2 * this.values.length > this.table.length) this.rehash(this.table.length * 2);
    return undefined;
  }

  private matches(entry: number, key: Uint32Array): boolean {
    for (let w = 0; w < KEY_WORDS; w++) if (this.keys.get(entry * KEY_WORDS + w) !== key[w]) return false;
    return true;
  }

  private rehash(size: number): void {
    const table = new Uint32Array(size);
    const mask = size - 1;
    for (let entry = 0; entry < this.values.length; entry++) {
      let slot = this.keys.get(entry * KEY_WORDS) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = entry + 1;
    }
    this.table = table;
  }
}
