// Token (and position) embedding gather and its deterministic gradient scatter-add: bindings for shaders/embedding.wgsl.
import code from '../../shaders/embedding.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type KernelSpec, type Recorder } from '../gpu';
import { kernelSpec } from './kernelSpec';
import { grid1d } from './grid';

export type TableDType = 'f32' | 'f16';

/** Rows [rowStart, rowStart + rowCount) of a [vocab, cols] table, held in their own binding. */
export interface EmbeddingShard {
  /** The shard's rows, row-major from element 0 (f32 or f16 bits packed two per word). */
  buffer: BufferBinding;
  rowStart: number;
  rowCount: number;
}

const BYTES: Record<TableDType, number> = { f32: 4, f16: 2 };

const EMBED = (tableF16: boolean): KernelSpec => ({
  name: 'embedding.embed',
  code,
  entryPoint: 'embed',
  bindings: ['uniform', 'read', 'read', 'write'],
  constants: { TABLE_F16: tableF16 ? 1 : 0 },
});

const EMBED_POS = (tableF16: boolean, posF16: boolean): KernelSpec => ({
  name: 'embedding.embed_pos',
  code,
  entryPoint: 'embed_pos',
  bindings: ['uniform', 'read', 'read', 'read', 'read', 'write'],
  constants: { TABLE_F16: tableF16 ? 1 : 0, POS_F16: posF16 ? 1 : 0 },
});

const GRAD = kernelSpec(code, 'embedding.grad', 'embed_grad', ['uniform', 'read', 'read', 'write']);

const GRAD_COLS_PER_GROUP = 64;

/**
 * Splits a [vocab, cols] table into row shards that each fit one storage binding. Shard byte
 * sizes are multiples of 256 so the shards can also be ranges of one buffer (binding offsets must
 * be aligned to minStorageBufferOffsetAlignment, at most 256).
 */
export function planEmbeddingShards(
  vocab: number,
  cols: number,
  dtype: TableDType,
  maxBindingBytes: number,
): { rowStart: number; rowCount: number }[] {
  const rowBytes = cols * BYTES[dtype];
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const rowAlign = 256 / gcd(256, rowBytes);
  let rowsPerShard = Math.floor(maxBindingBytes / rowBytes / rowAlign) * rowAlign;
  if (rowsPerShard < 1) throw new Error(`planEmbeddingShards: a row of ${rowBytes} bytes does not fit ${maxBindingBytes}`);
  rowsPerShard = Math.min(rowsPerShard, vocab);
  const shards: { rowStart: number; rowCount: number }[] = [];
  for (let r = 0; r < vocab; r += rowsPerShard) shards.push({ rowStart: r, rowCount: Math.min(rowsPerShard, vocab - r) });
  return shards;
}

/** Binds exactly the shard's bytes, so a pooled buffer rounded up past the binding limit still binds. */
function shardBinding(gpu: Gpu, shard: EmbeddingShard, cols: number, bytesPerElement: number, what: string): BufferBinding {
  const bytes = Math.ceil((shard.rowCount * cols * bytesPerElement) / 4) * 4;
  const max = gpu.limits.maxStorageBufferBindingSize;
  if (bytes > max) {
    throw new Error(`${what}: shard of ${shard.rowCount} rows is ${bytes} bytes, over maxStorageBufferBindingSize ${max}`);
  }
  if ('buffer' in shard.buffer) {
    if (shard.buffer.size !== undefined && shard.buffer.size < bytes) throw new Error(`${what}: shard range too small`);
    return shard.buffer;
  }
  if (shard.buffer.size < bytes) throw new Error(`${what}: shard buffer of ${shard.buffer.size} bytes < ${bytes}`);
  return { buffer: shard.buffer, offset: 0, size: bytes };
}

export interface EmbeddingArgs {
  /** u32 [tokens] token ids (each < vocab; a row whose id no shard holds is left unwritten). */
  ids: BufferBinding;
  tokens: number;
  cols: number;
  /** The token table [vocab, cols] as one or more row shards. */
  shards: readonly EmbeddingShard[];
  dtype: TableDType;
  /** f32 [tokens, cols] output. */
  out: BufferBinding;
  /** Learned position table [maxPositions, cols] (GPT-2 wpe): out = wte[id] + wpe[pos]. */
  positionTable?: BufferBinding;
  positionDtype?: TableDType;
  /** u32 [tokens] positions; without it pos = positionStart + token % seqLen. */
  positions?: BufferBinding;
  positionStart?: number;
  /** Tokens per sequence for positionStart; the default is tokens. */
  seqLen?: number;
}

/** Gathers embedding rows for token ids: out[t] = table[ids[t]] (+ positionTable[pos[t]]). */
export function embedding(gpu: Gpu, rec: Recorder, a: EmbeddingArgs): void {
  if (a.tokens * a.cols >= 2 ** 32) throw new Error('embedding: tokens * cols overflows u32 indices');
  const g = grid1d(a.tokens * a.cols, 256, gpu.limits.maxComputeWorkgroupsPerDimension);
  const tableF16 = a.dtype === 'f16';
  const posF16 = (a.positionDtype ?? 'f32') === 'f16';
  const withPos = !!a.positionTable;
  const spec = withPos ? EMBED_POS(tableF16, posF16) : EMBED(tableF16);
  const seqLen = Math.max(1, a.seqLen ?? a.tokens);
  for (const shard of a.shards) {
    const table = shardBinding(gpu, shard, a.cols, BYTES[a.dtype], 'embedding');
    const params = new Params()
      .u32(a.tokens)
      .u32(a.cols)
      .u32(shard.rowStart)
      .u32(shard.rowCount)
      .u32(g.rowStride)
      .u32(a.positionStart ?? 0)
      .u32(seqLen)
      .u32(a.positions ? 1 : 0)
      .bytes();
    // Without per-token positions the binding still needs a buffer; ids stand in, never read.
    const buffers = withPos
      ? [a.ids, table, a.positionTable!, a.positions ?? a.ids, a.out]
      : [a.ids, table, a.out];
    rec.dispatch(spec, { buffers, params, workgroups: g.workgroups });
  }
}

/**
 * Tokens grouped by id for the deterministic gradient: `order` lists token indices sorted by id
 * (stable, so each id's tokens stay in sequence order), `segStart[u]..segStart[u+1]` is the run of
 * `uniqueIds[u]` (ascending) inside `order`.
 */
export interface EmbeddingGradIndex {
  order: Uint32Array;
  segStart: Uint32Array;
  uniqueIds: Uint32Array;
}

export function embeddingGradIndex(ids: ArrayLike<number>): EmbeddingGradIndex {
  const n = ids.length;
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  // Array.prototype.sort is stable; ties keep token order.
  const sorted = Array.from(order).sort((x, y) => ids[x]! - ids[y]!);
  order.set(sorted);
  const starts: number[] = [];
  const uniq: number[] = [];
  for (let j = 0; j < n; j++) {
    const id = ids[order[j]!]!;
    if (j === 0 || id !== uniq[uniq.length - 1]) {
      starts.push(j);
      uniq.push(id);
    }
  }
  starts.push(n);
  return { order, segStart: Uint32Array.from(starts), uniqueIds: Uint32Array.from(uniq) };
}

/** The u32 words embeddingBackward's `indexBuffer` must hold: order | segStart | uniqueIds. */
export function packEmbeddingGradIndex(index: EmbeddingGradIndex): Uint32Array {
  const { order, segStart, uniqueIds } = index;
  const out = new Uint32Array(order.length + segStart.length + uniqueIds.length);
  out.set(order, 0);
  out.set(segStart, order.length);
  out.set(uniqueIds, order.length + segStart.length);
  return out;
}

export interface EmbeddingBackwardArgs {
  /** The CPU index (it decides which unique ids each shard dispatch covers). */
  index: EmbeddingGradIndex;
  /** The same index on the GPU, as packEmbeddingGradIndex lays it out. */
  indexBuffer: BufferBinding;
  /** f32 [tokens, cols] gradient of the embedding output. */
  dOut: BufferBinding;
  cols: number;
  /** f32 gradient table [vocab, cols] as row shards; the token rows are ADDED into it. */
  shards: readonly EmbeddingShard[];
}

/**
 * dTable[id] += sum of dOut rows of the tokens with that id, in token order (no atomics, so the
 * result is bit-for-bit reproducible). Rows of ids absent from the batch are not touched: clear
 * the gradient first when it should not accumulate.
 */
export function embeddingBackward(gpu: Gpu, rec: Recorder, a: EmbeddingBackwardArgs): void {
  const { order, segStart, uniqueIds } = a.index;
  if (segStart.length !== uniqueIds.length + 1) throw new Error('embeddingBackward: malformed index');
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  const colGroups = Math.ceil(a.cols / GRAD_COLS_PER_GROUP);
  for (const shard of a.shards) {
    const uBegin = lowerBound(uniqueIds, shard.rowStart);
    const uEnd = lowerBound(uniqueIds, shard.rowStart + shard.rowCount);
    const count = uEnd - uBegin;
    if (count === 0) continue;
    const groupsY = Math.min(count, max);
    const groupsZ = Math.ceil(count / groupsY);
    const params = new Params()
      .u32(a.cols)
      .u32(uBegin)
      .u32(count)
      .u32(shard.rowStart)
      .u32(groupsY)
      .u32(order.length)
      .u32(order.length + segStart.length)
      .bytes();
    rec.dispatch(GRAD, {
      buffers: [a.indexBuffer, a.dOut, shardBinding(gpu, shard, a.cols, 4, 'embeddingBackward')],
      params,
      workgroups: [colGroups, groupsY, groupsZ],
    });
  }
}

/** First index i with sorted[i] >= value. */
function lowerBound(sorted: Uint32Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
