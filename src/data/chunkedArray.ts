// Growable typed arrays kept in fixed-size chunks: appending never copies what is already held
// (a doubling array briefly holds twice its contents while it copies), and a chunk is only ever
// as large as CHUNK entries.

const CHUNK_BITS = 14;
const CHUNK = 1 << CHUNK_BITS;

/** Unsigned 32-bit integers appended one at a time, read back by index. */
export class ChunkedUint32 {
  private readonly chunks: Uint32Array[] = [];
  length = 0;

  push(value: number): void {
    const slot = this.length & (CHUNK - 1);
    if (slot === 0) this.chunks.push(new Uint32Array(CHUNK));
    this.chunks[this.chunks.length - 1]![slot] = value;
    this.length++;
  }

  get(index: number): number {
    if (!(index >= 0 && index < this.length)) throw new RangeError(`index ${index} is outside the ${this.length} held`);
    return this.chunks[index >>> CHUNK_BITS]![index & (CHUNK - 1)]!;
  }

  set(index: number, value: number): void {
    if (!(index >= 0 && index < this.length)) throw new RangeError(`index ${index} is outside the ${this.length} held`);
    this.chunks[index >>> CHUNK_BITS]![index & (CHUNK - 1)] = value;
  }

  /** The values in one contiguous array (for a sort or a histogram at the end). */
  toUint32Array(): Uint32Array {
    const out = new Uint32Array(this.length);
    this.chunks.forEach((chunk, c) => out.set(chunk.subarray(0, Math.min(CHUNK, this.length - c * CHUNK)), c * CHUNK));
    return out;
  }
}
