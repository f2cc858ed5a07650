// Tokenized examples packed end to end into shared typed arrays, so a data set costs its tokens
// (4 bytes an id, 1 a trained flag) and a few numbers an example, instead of a JS object and two
// typed arrays of its own per example: a 150,000-example file trains in flat memory.
//
// Examples are read back as TokenSequence views into the packed arrays (nothing copied). A view
// cut to maxLen ids is exactly what tokenizeExample returns with that maxSeqLen (truncation
// 'end'): the first maxLen ids and flags, trained[0] being 0 for every tokenized example.

import type { TokenizedExample, TokenSequence } from './examples';

const INITIAL_TOKENS = 1 << 12;
const INITIAL_EXAMPLES = 1 << 8;

function grown<T extends Uint32Array | Uint8Array | Float64Array>(array: T, needed: number): T {
  if (needed <= array.length) return array;
  let size = array.length;
  while (size < needed) size *= 2;
  const next = new (array.constructor as new (n: number) => T)(size);
  next.set(array);
  return next;
}

/** A read-only array whose element i is at(i), made on each read (a Proxy: nothing per element is held). */
export function lazyList<T>(length: number, at: (i: number) => T): readonly T[] {
  const index = (key: string | symbol): number | null => {
    if (typeof key !== 'string') return null;
    const i = Number(key);
    return Number.isInteger(i) && i >= 0 && String(i) === key ? i : null;
  };
  const refuse = () => {
    throw new TypeError('the example list is read-only');
  };
  return new Proxy([] as T[], {
    get(target, key, receiver) {
      if (key === 'length') return length;
      const i = index(key);
      if (i !== null) return i < length ? at(i) : undefined;
      return Reflect.get(target, key, receiver) as unknown;
    },
    has(target, key) {
      const i = index(key);
      return i !== null ? i < length : key === 'length' || Reflect.has(target, key);
    },
    set: refuse,
    defineProperty: refuse,
    deleteProperty: refuse,
  });
}

export class PackedExamples {
  private ids = new Uint32Array(INITIAL_TOKENS);
  private trained = new Uint8Array(INITIAL_TOKENS);
  /** starts[i]..starts[i + 1]: example i's tokens. */
  private starts = new Float64Array(INITIAL_EXAMPLES + 1);
  /** Examples held. */
  count = 0;
  /** Tokens of the longest example before truncation (0 for none). */
  longest = 0;
  /** Examples cut to the maxSeqLen they were tokenized with. */
  truncatedCount = 0;

  /** Tokens held, all examples together. */
  get tokens(): number {
    return this.starts[this.count]!;
  }

  push(example: TokenizedExample): void {
    const n = example.ids.length;
    if (example.trained.length !== n) throw new RangeError(`trained has ${example.trained.length} entries for ${n} ids`);
    const at = this.tokens;
    this.ids = grown(this.ids, at + n);
    this.trained = grown(this.trained, at + n);
    this.ids.set(example.ids, at);
    this.trained.set(example.trained, at);
    const i = this.count;
    this.starts = grown(this.starts, i + 2);
    this.starts[i + 1] = at + n;
    this.count = i + 1;
    if (example.fullLength > this.longest) this.longest = example.fullLength;
    if (example.truncated) this.truncatedCount++;
  }

  /** Example i as views into the packed arrays, cut to its first maxLen ids when given. */
  get(i: number, maxLen = Infinity): TokenSequence {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`example ${i} is not among the ${this.count} held`);
    const start = this.starts[i]!;
    const end = Math.min(this.starts[i + 1]!, start + maxLen);
    return { ids: this.ids.subarray(start, end), trained: this.trained.subarray(start, end) };
  }

  /**
   * The examples (each cut to maxLen ids when given) as a read-only list for batching, keeping
   * only those `keep` accepts; an index of the kept examples is all it holds.
   */
  list(maxLen = Infinity, keep?: (example: TokenSequence) => boolean): readonly TokenSequence[] {
    if (keep === undefined) return lazyList(this.count, (i) => this.get(i, maxLen));
    const kept = new Uint32Array(this.count);
    let n = 0;
    for (let i = 0; i < this.count; i++) if (keep(this.get(i, maxLen))) kept[n++] = i;
    const index = kept.slice(0, n);
    return lazyList(n, (j) => this.get(index[j]!, maxLen));
  }
}
