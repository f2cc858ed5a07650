// Masked softmax cross-entropy over a large vocabulary, one logits chunk at a time: bindings for shaders/crossentropy.wgsl.
import own from '../../shaders/crossentropy.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type Recorder } from '../gpu';
import { kernelSpec } from './kernelSpec';
import { grid1d } from './grid';
import { sum } from './reduce';
import { reducingKernel, reductionVariants } from './subgroupReduce';

// chunk_stats reduces with subgroup operations in the GPU plan where the device has them.
const code = reductionVariants(own);

// Binding order of every entry point: uniform, targets, mask, then its own buffers.
const CHUNK_STATS = reducingKernel(code, 'crossentropy.chunk_stats', 'chunk_stats', ['uniform', 'read', 'read', 'read', 'write']);
const CHUNK_GRAD = kernelSpec(code.workgroup, 'crossentropy.chunk_grad', 'chunk_grad', ['uniform', 'read', 'read', 'read', 'write', 'read']);
const FINALIZE = kernelSpec(code.workgroup, 'crossentropy.finalize', 'finalize', ['uniform', 'read', 'read', 'read', 'write', 'write']);

/** Floats of running state per row: max, sum of exp, target logit, argmax (as an exact f32). */
export const CE_STATE_STRIDE = 4;

/**
 * Buffers and dims shared by the chunked cross-entropy kernels.
 * - targets: u32 [rows], the vocabulary id each row must predict. Rows with mask 0 may hold any
 *   value (e.g. a padding id >= V); a row with mask != 0 must have a target < V.
 * - mask: f32 [rows], 1 = trained token, 0 = ignored. f32 (not u32) so the trained-token count
 *   is a plain sum and a row could carry a weight; rows with 0 cost nothing in chunk_stats.
 * - state: f32 [rows, CE_STATE_STRIDE], kept between the chunks of one batch.
 */
export interface CrossEntropyRows {
  targets: BufferBinding;
  mask: BufferBinding;
  state: BufferBinding;
  rows: number;
}

export interface CrossEntropyChunk extends CrossEntropyRows {
  /** Logits of columns vStart .. vStart+vc for every row: [rows, ld] f32 (ld defaults to vc). */
  logits: BufferBinding;
  vStart: number;
  vc: number;
  ld?: number;
}

function checkChunk(what: string, a: CrossEntropyChunk): number {
  const ld = a.ld ?? a.vc;
  if (a.vc < 1) throw new Error(`${what}: empty chunk (vc = ${a.vc})`);
  if (ld < a.vc) throw new Error(`${what}: ld ${ld} < vc ${a.vc}`);
  if (a.vStart + a.vc >= 2 ** 24) throw new Error(`${what}: vocabulary index ${a.vStart + a.vc} does not fit an exact f32`);
  return ld;
}

/**
 * Folds one logits chunk into the per-row running state (online max, sum of exp, argmax, and
 * the target's logit when the target lies in this chunk). `first` (default: vStart === 0)
 * overwrites the state instead of merging; chunks may come in any order after it.
 */
export function crossEntropyChunkStats(gpu: Gpu, rec: Recorder, a: CrossEntropyChunk & { first?: boolean }): void {
  const ld = checkChunk('crossEntropyChunkStats', a);
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.min(Math.max(a.rows, 1), max);
  const gy = Math.ceil(a.rows / gx);
  const first = a.first ?? a.vStart === 0;
  rec.dispatch(CHUNK_STATS(gpu), {
    buffers: [a.targets, a.mask, a.logits, a.state],
    params: new Params()
      .u32(a.rows)
      .u32(a.vc)
      .u32(a.vStart)
      .u32(ld)
      .u32(first ? 1 : 0)
      .u32(gx)
      .f32(0)
      .u32(0)
      .bytes(),
    workgroups: [gx, gy],
  });
}

/**
 * Overwrites a recomputed logits chunk with d(mean loss)/d(logits) =
 * (softmax - onehot(target)) * mask * gradScale, using the state of a completed stats pass
 * over all chunks. gradScale = 1 / (trained tokens in the batch), known on the CPU from the mask:
 * a number, or the f32 at the start of a buffer written per step (so that recorded commands
 * replay unchanged with a new scale).
 */
export function crossEntropyChunkGrad(gpu: Gpu, rec: Recorder, a: CrossEntropyChunk & { gradScale: number | { buffer: GPUBuffer } }): void {
  const ld = checkChunk('crossEntropyChunkGrad', a);
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.ceil(a.vc / 256);
  if (gx > max) throw new Error(`crossEntropyChunkGrad: chunk of ${a.vc} columns is too wide`);
  const gy = Math.min(Math.max(a.rows, 1), max);
  const gz = Math.ceil(a.rows / gy);
  const scale = a.gradScale;
  rec.dispatch(CHUNK_GRAD, {
    // Without a scale buffer the mask (already bound read-only) fills its slot, unread.
    buffers: [a.targets, a.mask, a.state, a.logits, typeof scale === 'number' ? a.mask : scale.buffer],
    params: new Params()
      .u32(a.rows)
      .u32(a.vc)
      .u32(a.vStart)
      .u32(ld)
      .u32(0)
      .u32(gy)
      .f32(typeof scale === 'number' ? scale : 0)
      .u32(typeof scale === 'number' ? 0 : 1)
      .bytes(),
    workgroups: [gx, gy, gz],
  });
}

export interface CrossEntropyFinalizeArgs extends CrossEntropyRows {
  /** f32 [rows]: (logsumexp - target logit) * mask. */
  rowLoss: BufferBinding;
  /** f32 [rows]: mask where the row's argmax (lowest index on ties) is its target, else 0. */
  rowCorrect: BufferBinding;
  /** Optional f32 [3]: [sum of rowLoss, sum of mask (trained tokens), sum of rowCorrect]. */
  totals?: BufferBinding;
  /** Add to totals instead of overwriting them (several micro-batches per step). */
  accumulate?: boolean;
}

/** Per-row loss and correctness from a completed stats pass, plus the three totals on the GPU. */
export function crossEntropyFinalize(gpu: Gpu, rec: Recorder, a: CrossEntropyFinalizeArgs): void {
  const g = grid1d(a.rows, 256, gpu.limits.maxComputeWorkgroupsPerDimension);
  rec.dispatch(FINALIZE, {
    buffers: [a.targets, a.mask, a.state, a.rowLoss, a.rowCorrect],
    params: new Params()
      .u32(a.rows)
      .u32(0)
      .u32(0)
      .u32(0)
      .u32(0)
      .u32(g.rowStride)
      .f32(0)
      .u32(0)
      .bytes(),
    workgroups: g.workgroups,
  });
  if (!a.totals) return;
  const accumulate = a.accumulate ?? false;
  sum(gpu, rec, { x: a.rowLoss, n: a.rows, out: a.totals, outOffset: 0, accumulate });
  sum(gpu, rec, { x: a.mask, n: a.rows, out: a.totals, outOffset: 1, accumulate });
  sum(gpu, rec, { x: a.rowCorrect, n: a.rows, out: a.totals, outOffset: 2, accumulate });
}

export interface CrossEntropyArgs extends Omit<CrossEntropyFinalizeArgs, 'accumulate'> {
  /** Full logits [rows, V] (row stride V). With gradScale they are overwritten by dlogits. */
  logits: BufferBinding;
  V: number;
  /** When given, the logits are replaced by the gradient of the mean loss (see chunk grad). */
  gradScale?: number;
}

/** Non-chunked convenience: the whole vocabulary as one chunk (stats, finalize, optional grad). */
export function crossEntropy(gpu: Gpu, rec: Recorder, a: CrossEntropyArgs): void {
  const chunk = { logits: a.logits, targets: a.targets, mask: a.mask, state: a.state, rows: a.rows, vStart: 0, vc: a.V };
  crossEntropyChunkStats(gpu, rec, { ...chunk, first: true });
  crossEntropyFinalize(gpu, rec, a);
  if (a.gradScale !== undefined) crossEntropyChunkGrad(gpu, rec, { ...chunk, gradScale: a.gradScale });
}
