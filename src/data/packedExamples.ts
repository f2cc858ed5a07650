// Tokenized examples packed end to end into shared typed arrays, so a data set costs its tokens
// (4 bytes an id, or 2 for a vocabulary of up to 65,536 ids; 1 a trained flag) and 12 bytes an example, instead of a JS object and two typed
// arrays of its own per example: a 150,000-example file trains in flat memory.
//
// Tokens go into fixed-size chunks, never copied once written: an example goes whole into the
// current chunk, or starts the next one when it does not fit (wasting less than a quarter chunk);
// a long example gets a chunk of its own size. Examples are read back as TokenSequence views into
// the chunks (2-byte ids are copied into a Uint32Array on each read). A view cut to maxLen ids is exactly what tokenizeExample returns
// with that maxSeqLen (truncation 'end'): the first maxLen ids and flags, trained[0] being 0 for
// every tokenized example.

import { ChunkedUint32 } from './chunkedArray';
import type { ExampleList } from './exampleList';
import type { TokenizedExample, TokenSequence } from './examples';

/** Tokens of a shared chunk. */
const TOKEN_CHUNK = 1 << 16;
/** Examples at least this long get a chunk of their own. */
const OWN_CHUNK = TOKEN_CHUNK / 4;

export interface PackedExamplesOptions {
  /** Largest id pushed (the tokenizer's vocabSize - 1): up to 65,535, ids are stored in 2 bytes, not 4. */
  maxId?: number;
}

export class PackedExamples {
  /** Ids in 2 bytes each (read back as Uint32Array copies) instead of 4. */
  private readonly narrow: boolean;
  private readonly idChunks: (Uint32Array | Uint16Array)[] = [];
  private readonly trainedChunks: Uint8Array[] = [];
  /** Tokens used of the last shared chunk (shared: sharedChunk >= 0). */
  private used = 0;
  private sharedChunk = -1;
  /** Example i: its chunk, its first token in that chunk and its token count. */
  private readonly chunkOf = new ChunkedUint32();
  private readonly startOf = new ChunkedUint32();
  private readonly lengthOf = new ChunkedUint32();
  /** Tokens held, all examples together. */
  tokens = 0;
  /** Tokens of the longest example before truncation (0 for none). */
  longest = 0;
  /** Examples cut to the maxSeqLen they were tokenized with. */
  truncatedCount = 0;

  constructor(options: PackedExamplesOptions = {}) {
    this.narrow = options.maxId !== undefined && options.maxId <= 0xffff;
  }

  /** Examples held. */
  get count(): number {
    return this.lengthOf.length;
  }

  private newChunk(size: number): number {
    this.idChunks.push(this.narrow ? new Uint16Array(size) : new Uint32Array(size));
    this.trainedChunks.push(new Uint8Array(size));
    return this.idChunks.length - 1;
  }

  push(example: TokenizedExample): void {
    const n = example.ids.length;
    if (example.trained.length !== n) throw new RangeError(`trained has ${example.trained.length} entries for ${n} ids`);
    if (this.narrow) for (const id of example.ids) if (id > 0xffff) throw new RangeError(`token id ${id} is above the ${0xffff} this store was made for`);
    let chunk: number;
    let start = 0;
    if (n >= OWN_CHUNK) {
      chunk = this.newChunk(n);
    } else {
      if (this.sharedChunk < 0 || this.used + n > TOKEN_CHUNK) {
        this.sharedChunk = this.newChunk(TOKEN_CHUNK);
        this.used = 0;
      }
      chunk = this.sharedChunk;
      start = this.used;
      this.used += n;
    }
    this.idChunks[chunk]!.set(example.ids, start);
    this.trainedChunks[chunk]!.set(example.trained, start);
    this.chunkOf.push(chunk);
    this.startOf.push(start);
    this.lengthOf.push(n);
    this.tokens += n;
    if (example.fullLength > this.longest) this.longest = example.fullLength;
    if (example.truncated) this.truncatedCount++;
  }

  /** Example i as views into the packed arrays, cut to its first maxLen ids when given. */
  get(i: number, maxLen = Infinity): TokenSequence {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`example ${i} is not among the ${this.count} held`);
    const chunk = this.chunkOf.get(i);
    const start = this.startOf.get(i);
    const end = start + Math.min(this.lengthOf.get(i), maxLen);
    const ids = this.idChunks[chunk]!.subarray(start, end);
    return { ids: ids instanceof Uint32Array ? ids : Uint32Array.from(ids), trained: this.trainedChunks[chunk]!.subarray(start, end) };
  }

  /**
   * The examples (each cut to maxLen ids when given) as a read-only list for batching, keeping
   * only those `keep` accepts; an index of the kept examples is all it holds.
   */
  list(maxLen = Infinity, keep?: (example: TokenSequence) => boolean): ExampleList<TokenSequence> {
    const inRange = (j: number, n: number) => Number.isInteger(j) && j >= 0 && j < n;
    if (keep === undefined) {
      const n = this.count;
      return { length: n, at: (j) => (inRange(j, n) ? this.get(j, maxLen) : undefined) };
    }
    const kept = new Uint32Array(this.count);
    let n = 0;
    for (let i = 0; i < this.count; i++) if (keep(this.get(i, maxLen))) kept[n++] = i;
    const index = kept.slice(0, n);
    return { length: n, at: (j) => (inRange(j, n) ? this.get(index[j]!, maxLen) : undefined) };
  }
}
