// Deterministic sums, gradient norm and on-GPU gradient clipping: bindings for shaders/reduce.wgsl.
import own from '../../shaders/reduce.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type KernelSpec, type Recorder } from '../gpu';
import { kernelSpec } from './kernelSpec';
import { grid1d } from './grid';
import { reducingKernel, reductionVariants } from './subgroupReduce';

// The sums reduce with subgroup operations in the GPU plan where the device has them.
const code = reductionVariants(own);

const SUM_BLOCKS = reducingKernel(code, 'reduce.sum_blocks', 'sum_blocks', ['uniform', 'read', 'write']);
const NORM_COEF = reducingKernel(code, 'reduce.norm_and_clip_coef', 'norm_and_clip_coef', ['uniform', 'read', 'write']);
const NORM_CLIP_STEP = reducingKernel(code, 'reduce.norm_clip_step', 'norm_clip_step', ['uniform', 'read', 'write']);
const SCALE_BY_BUFFER = kernelSpec(code.workgroup, 'reduce.scale_by_buffer', 'scale_by_buffer', ['uniform', 'read', 'write']);

/** Elements one workgroup of the first stage sums (16 per thread: short f32 chains, many groups). */
export const REDUCE_BLOCK = 4096;

/** Partial sums the first stage leaves for a vector of n elements (at least 1, even for n = 0). */
export function partialSlots(n: number): number {
  return Math.max(1, Math.ceil(n / REDUCE_BLOCK));
}

function dispatchBlocks(
  gpu: Gpu,
  rec: Recorder,
  a: { x: BufferBinding; n: number; block: number; out: BufferBinding; outOffset: number; squared: boolean; accumulate: boolean },
): number {
  const groups = a.n <= a.block ? 1 : Math.ceil(a.n / a.block);
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.min(groups, max);
  const gy = Math.ceil(groups / gx);
  rec.dispatch(SUM_BLOCKS(gpu), {
    buffers: [a.x, a.out],
    params: new Params()
      .u32(a.n)
      .u32(a.block)
      .u32(a.outOffset)
      .u32(a.squared ? 1 : 0)
      .u32(a.accumulate ? 1 : 0)
      .u32(gx)
      .u32(groups)
      .u32(0)
      .bytes(),
    workgroups: [gx, gy],
  });
  return groups;
}

export interface SumArgs {
  x: BufferBinding;
  n: number;
  /** out[outOffset] receives the sum. */
  out: BufferBinding;
  outOffset?: number;
  /** Sum x^2 instead of x. */
  squared?: boolean;
  /** Add to out[outOffset] instead of overwriting it (e.g. loss over micro-batches). */
  accumulate?: boolean;
  /**
   * partialSlots(n) floats of scratch. With it, vectors longer than REDUCE_BLOCK are summed in
   * two stages (many workgroups, then one); without it one workgroup loops over everything,
   * which is fine for the few thousand elements of per-token losses.
   */
  scratch?: BufferBinding;
}

/** out[outOffset] (+)= sum of x[0..n) (or of x^2). Deterministic: the same bits every run. */
export function sum(gpu: Gpu, rec: Recorder, a: SumArgs): void {
  const outOffset = a.outOffset ?? 0;
  const squared = a.squared ?? false;
  const accumulate = a.accumulate ?? false;
  if (!a.scratch || a.n <= REDUCE_BLOCK) {
    dispatchBlocks(gpu, rec, { x: a.x, n: a.n, block: Math.max(a.n, 1), out: a.out, outOffset, squared, accumulate });
    return;
  }
  const slots = dispatchBlocks(gpu, rec, {
    x: a.x,
    n: a.n,
    block: REDUCE_BLOCK,
    out: a.scratch,
    outOffset: 0,
    squared,
    accumulate: false,
  });
  dispatchBlocks(gpu, rec, { x: a.scratch, n: slots, block: slots, out: a.out, outOffset, squared: false, accumulate });
}

/**
 * First stage of a global gradient norm: writes the sums of squares of x's blocks to
 * partials[slot .. slot + partialSlots(n)) and returns how many slots it used. Call it once per
 * gradient tensor with consecutive slots, then `gradNormClipStep` over all the slots (or let
 * `clipGradNorm` do both).
 */
export function sumSquaresPartials(
  gpu: Gpu,
  rec: Recorder,
  a: { x: BufferBinding; n: number; partials: BufferBinding; slot: number },
): number {
  return dispatchBlocks(gpu, rec, {
    x: a.x,
    n: a.n,
    block: REDUCE_BLOCK,
    out: a.partials,
    outOffset: a.slot,
    squared: true,
    accumulate: false,
  });
}

/** Slots `sumSquaresPartials` needs for tensors of these sizes, and where each one starts. */
export function gradNormLayout(sizes: readonly number[]): { offsets: number[]; slots: number } {
  const offsets: number[] = [];
  let slots = 0;
  for (const n of sizes) {
    offsets.push(slots);
    slots += partialSlots(n);
  }
  return { offsets, slots };
}

/**
 * One workgroup over partials[0..slots): NORM_COEF writes out[0] = the total 2-norm (sqrt of the
 * sum) and out[1] = min(1, maxNorm / (norm + 1e-6)), the factor torch.nn.utils.clip_grad_norm_
 * multiplies every gradient by; NORM_CLIP_STEP writes gradNormClipStep's state. Both stay on the GPU.
 */
function dispatchNorm(rec: Recorder, spec: KernelSpec, partials: BufferBinding, slots: number, maxNorm: number, out: BufferBinding): void {
  rec.dispatch(spec, { buffers: [partials, out], params: new Params().u32(slots).f32(maxNorm).u32(0).u32(0).bytes(), workgroups: [1] });
}

/**
 * An optimizer step's verdict, on the GPU: state[0] = norm of partials[0..slots), state[1] = its
 * clip coefficient (as NORM_COEF's out[1]), state[2] = 1 if the norm is NaN or infinite (skip the
 * update) else 0, state[3] += 1 unless skipped (AdamW's step count). `state` holds 4 floats.
 */
export function gradNormClipStep(
  gpu: Gpu,
  rec: Recorder,
  a: { partials: BufferBinding; slots: number; maxNorm: number; state: BufferBinding },
): void {
  dispatchNorm(rec, NORM_CLIP_STEP(gpu), a.partials, a.slots, a.maxNorm, a.state);
}

/** y[0..n) *= coef[coefIndex], the factor read on the GPU. */
export function scaleByBuffer(
  gpu: Gpu,
  rec: Recorder,
  a: { y: BufferBinding; n: number; coef: BufferBinding; coefIndex?: number },
): void {
  const g = grid1d(a.n, 256, gpu.limits.maxComputeWorkgroupsPerDimension);
  rec.dispatch(SCALE_BY_BUFFER, {
    buffers: [a.coef, a.y],
    params: new Params()
      .u32(a.n)
      .u32(g.rowStride)
      .u32(a.coefIndex ?? 1)
      .u32(0)
      .bytes(),
    workgroups: g.workgroups,
  });
}

export interface ClipGradNormArgs {
  grads: readonly { buffer: BufferBinding; n: number }[];
  /** gradNormLayout(sizes).slots floats of scratch. */
  partials: BufferBinding;
  maxNorm: number;
  /** Receives [total norm, clip coefficient]: 2 floats. */
  normOut: BufferBinding;
  /**
   * Multiply the gradients by the coefficient here (default true). Pass false when the optimizer
   * folds the coefficient in itself (adamw's `gradScale`), which saves a pass over every gradient.
   */
  applyScale?: boolean;
}

/** torch.nn.utils.clip_grad_norm_(grads, maxNorm) recorded on the GPU, with no readback. */
export function clipGradNorm(gpu: Gpu, rec: Recorder, a: ClipGradNormArgs): void {
  let slot = 0;
  for (const g of a.grads) slot += sumSquaresPartials(gpu, rec, { x: g.buffer, n: g.n, partials: a.partials, slot });
  dispatchNorm(rec, NORM_COEF(gpu), a.partials, slot, a.maxNorm, a.normOut);
  if (a.applyScale ?? true) {
    for (const g of a.grads) scaleByBuffer(gpu, rec, { y: g.buffer, n: g.n, coef: a.normOut, coefIndex: 1 });
  }
}
