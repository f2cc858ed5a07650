// AdamW optimizer step with torch.optim.AdamW semantics, one tensor or all at once: bindings for shaders/adamw.wgsl.
import code from '../../shaders/adamw.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type Recorder } from '../gpu';
import { kernelSpec } from './kernelSpec';
import { grid1d } from './grid';

const ADAMW_STEP = kernelSpec(code, 'adamw.step', 'adamw_step', ['uniform', 'read', 'read', 'write', 'write', 'write']);

const ADAMW_FLAT = kernelSpec(code, 'adamw.flat', 'adamw_flat', ['uniform', 'read', 'read', 'read', 'write', 'write', 'write']);

/** Step counts the flat kernel's hyper buffer covers past its base (TABLE in the shader). */
export const ADAMW_TABLE = 4;
/** Floats of the flat kernel's hyper buffer. */
export const ADAMW_HYPER_FLOATS = 8 + 2 * ADAMW_TABLE;

/** torch.optim.AdamW hyperparameters for one step. */
export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step number (the value of PyTorch's state['step'] after its increment). */
  step: number;
}

/** torch.optim.AdamW's defaults. */
export const ADAMW_DEFAULTS: Omit<AdamWHyper, 'step'> = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2 };

export interface AdamWTensor {
  param: BufferBinding;
  grad: BufferBinding;
  /** First moment (PyTorch exp_avg), zero before step 1. */
  expAvg: BufferBinding;
  /** Second moment (PyTorch exp_avg_sq), zero before step 1. */
  expAvgSq: BufferBinding;
  n: number;
}

/** A gradient factor that lives on the GPU, e.g. reduce's clip coefficient at index 1. */
export interface GradScaleRef {
  buffer: BufferBinding;
  index: number;
}

/**
 * One AdamW step on one tensor, in place on param, expAvg and expAvgSq. The grad is multiplied
 * by gradScale.buffer[gradScale.index] first when given (clip_grad_norm_'s coefficient).
 */
export function adamwStep(gpu: Gpu, rec: Recorder, t: AdamWTensor, hp: AdamWHyper, gradScale?: GradScaleRef): void {
  if (!(hp.step >= 1) || !Number.isInteger(hp.step)) throw new Error(`adamwStep: step must be an integer >= 1, got ${hp.step}`);
  // Same scalars as _single_tensor_adamw, computed in f64 like Python floats.
  const bc1 = 1 - hp.beta1 ** hp.step;
  const bc2 = 1 - hp.beta2 ** hp.step;
  const g = grid1d(t.n, 256, gpu.limits.maxComputeWorkgroupsPerDimension);
  rec.dispatch(ADAMW_STEP, {
    // Without a scale buffer the grad is bound in its place; the kernel does not read it then.
    buffers: [t.grad, gradScale?.buffer ?? t.grad, t.param, t.expAvg, t.expAvgSq],
    params: new Params()
      .u32(t.n)
      .u32(g.rowStride)
      .f32(1 - hp.lr * hp.weightDecay)
      .f32(hp.beta1)
      .f32(hp.beta2)
      .f32(1 - hp.beta1)
      .f32(1 - hp.beta2)
      .f32(-hp.lr / bc1)
      .f32(Math.sqrt(bc2))
      .f32(hp.eps)
      .u32(gradScale?.index ?? 0)
      .u32(gradScale ? 1 : 0)
      .bytes(),
    workgroups: g.workgroups,
  });
}

/** adamwStep over several tensors sharing hyperparameters (one dispatch each). */
export function adamwStepAll(
  gpu: Gpu,
  rec: Recorder,
  tensors: readonly AdamWTensor[],
  hp: AdamWHyper,
  gradScale?: GradScaleRef,
): void {
  for (const t of tensors) adamwStep(gpu, rec, t, hp, gradScale);
}

/**
 * The flat kernel's per-step scalars: for the step counts base+1 .. base+ADAMW_TABLE (the ones
 * the GPU's count can reach while steps are in flight) -lr/(1-beta1^t) and sqrt(1-beta2^t), in
 * f64 like Python floats, as adamwStep computes them.
 */
export function adamwHyperTable(hp: Omit<AdamWHyper, 'step'>, base: number): Float32Array {
  if (!(base >= 0) || !Number.isInteger(base)) throw new Error(`adamwHyperTable: base must be an integer >= 0, got ${base}`);
  const out = new Float32Array(ADAMW_HYPER_FLOATS);
  out.set([1 - hp.lr * hp.weightDecay, hp.beta1, hp.beta2, 1 - hp.beta1, 1 - hp.beta2, hp.eps, base, 0]);
  for (let j = 0; j < ADAMW_TABLE; j++) {
    const t = base + 1 + j;
    out[8 + j] = -hp.lr / (1 - hp.beta1 ** t);
    out[8 + ADAMW_TABLE + j] = Math.sqrt(1 - hp.beta2 ** t);
  }
  return out;
}

export interface AdamWFlatArgs {
  /** adamwHyperTable's floats. */
  hyper: BufferBinding;
  /** [norm, clip coefficient, skip flag, step count] (reduce's gradNormClipStep). */
  state: BufferBinding;
  grad: BufferBinding;
  param: BufferBinding;
  expAvg: BufferBinding;
  expAvgSq: BufferBinding;
  n: number;
}

/**
 * One AdamW step over a flat buffer of n elements (many tensors back to back), in one dispatch:
 * the same arithmetic as adamwStep with the gradient scaled by state[1], nothing written when
 * state[2] flags the step as skipped.
 */
export function adamwFlat(gpu: Gpu, rec: Recorder, a: AdamWFlatArgs): void {
  const g = grid1d(a.n, 256, gpu.limits.maxComputeWorkgroupsPerDimension);
  rec.dispatch(ADAMW_FLAT, {
    buffers: [a.hyper, a.state, a.grad, a.param, a.expAvg, a.expAvgSq],
    params: new Params().u32(a.n).u32(g.rowStride).u32(0).u32(0).bytes(),
    workgroups: g.workgroups,
  });
}
