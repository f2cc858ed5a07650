// RMSNorm and LayerNorm over rows, forward and backward: bindings for shaders/norm.wgsl.
import own from '../../shaders/norm.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type KernelSpec, type Recorder } from '../gpu';
import { reducingKernel, reductionVariants } from './subgroupReduce';

/**
 * RMSNorm (Llama family) and LayerNorm (GPT-2) over rows of f32 activations, forward and backward.
 * Weights and biases are f32 ([cols]): they are tiny, so they stay f32 even when the big
 * matrices are f16.
 */

type Storage = readonly ('read' | 'write')[];

/** The row kernels reduce with subgroup operations in the GPU plan where the device has them. */
const code = reductionVariants(own);

type RowSpec = (gpu: Gpu, cols: number) => KernelSpec;

/** A per-row kernel with its workgroup size picked for `cols` and its reductions for the device. */
function rowSpec(entryPoint: string, storage: Storage): RowSpec {
  const spec = reducingKernel(code, `norm.${entryPoint}`, entryPoint, ['uniform', ...storage]);
  return (gpu, cols) => spec(gpu, { WG: rowWorkgroupSize(cols) });
}

/**
 * 64 threads for short rows (per-head norms of 64-256 columns), 256 for hidden sizes. Two sizes
 * only: every size is one more pipeline to compile per kernel.
 */
export function rowWorkgroupSize(cols: number): number {
  return cols <= 256 ? 64 : 256;
}

const RMS_FWD = rowSpec('rmsnorm_fwd', ['read', 'read', 'write', 'write']);
const RMS_RES_FWD = rowSpec('rmsnorm_res_fwd', ['read', 'read', 'read', 'write', 'write', 'write']);
const LN_FWD = rowSpec('layernorm_fwd', ['read', 'read', 'read', 'write', 'write']);
const LN_RES_FWD = rowSpec('layernorm_res_fwd', ['read', 'read', 'read', 'read', 'write', 'write', 'write']);
const RMS_BWD = rowSpec('rmsnorm_bwd', ['read', 'read', 'read', 'read', 'write']);
const LN_BWD = rowSpec('layernorm_bwd', ['read', 'read', 'read', 'read', 'write']);

// The column kernels reduce within an invocation: they need no subgroups.
const columnSpec = (entryPoint: string, storage: Storage): KernelSpec => ({
  name: `norm.${entryPoint}`,
  code: code.workgroup,
  entryPoint,
  bindings: ['uniform', ...storage],
});
const RMS_BWD_W = columnSpec('rmsnorm_bwd_weight', ['read', 'read', 'read', 'write']);
const LN_BWD_WB = columnSpec('layernorm_bwd_params', ['read', 'read', 'read', 'write', 'write']);

/** Columns handled by one workgroup of the dweight/dbias kernels (matches the WGSL). */
const COLS_PER_GROUP = 64;

function rowGrid(gpu: Gpu, rows: number): { workgroups: [number, number]; groupsX: number } {
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  const groupsX = Math.min(rows, max);
  const groupsY = groupsX === 0 ? 0 : Math.ceil(rows / groupsX);
  if (groupsY > max) throw new Error(`norm: ${rows} rows exceed a ${max}^2 grid`);
  return { workgroups: [groupsX, groupsY], groupsX };
}

function rowParams(rows: number, cols: number, eps: number, groupsX: number, accumulate: boolean): Uint8Array {
  return new Params().u32(rows).u32(cols).f32(eps).u32(groupsX).u32(accumulate ? 1 : 0).bytes();
}

function checkShape(name: string, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`${name}: bad rows ${rows}`);
  if (!Number.isInteger(cols) || cols < 1) throw new Error(`${name}: bad cols ${cols}`);
}

/** Fields both forward passes take. */
interface NormForwardCommon {
  /** [rows, cols] input. */
  x: BufferBinding;
  /** [cols] scale. */
  weight: BufferBinding;
  /** [rows, cols] output. */
  out: BufferBinding;
  rows: number;
  cols: number;
  eps: number;
  /**
   * Fused residual add: with `residual` and `sum` given, sum = x + residual is written to `sum`
   * and normalised (pass `sum` as `x` to the backward pass).
   */
  residual?: BufferBinding;
  sum?: BufferBinding;
}

export interface RmsNormArgs extends NormForwardCommon {
  /** [rows] saved 1/sqrt(mean(x²)+eps) for the backward pass. */
  rstd: BufferBinding;
}

/** Records the plain kernel, or the fused-residual one when `residual` and `sum` are given. */
function dispatchForward(
  gpu: Gpu,
  rec: Recorder,
  name: string,
  a: NormForwardCommon,
  plain: RowSpec,
  plainBuffers: BufferBinding[],
  fused: RowSpec,
  fusedBuffers: (residual: BufferBinding, sum: BufferBinding) => BufferBinding[],
): void {
  checkShape(name, a.rows, a.cols);
  const g = rowGrid(gpu, a.rows);
  const params = rowParams(a.rows, a.cols, a.eps, g.groupsX, false);
  if (a.residual || a.sum) {
    if (!a.residual || !a.sum) throw new Error(`${name}: residual and sum go together`);
    rec.dispatch(fused(gpu, a.cols), { buffers: fusedBuffers(a.residual, a.sum), params, workgroups: g.workgroups });
    return;
  }
  rec.dispatch(plain(gpu, a.cols), { buffers: plainBuffers, params, workgroups: g.workgroups });
}

/** out = x / sqrt(mean(x²) + eps) * weight, row by row. */
export function rmsNorm(gpu: Gpu, rec: Recorder, a: RmsNormArgs): void {
  dispatchForward(gpu, rec, 'rmsNorm', a, RMS_FWD, [a.x, a.weight, a.out, a.rstd], RMS_RES_FWD, (residual, sum) =>
    [a.x, residual, a.weight, a.out, sum, a.rstd]);
}

export interface LayerNormArgs extends NormForwardCommon {
  bias: BufferBinding;
  /** [rows, 2]: mean and 1/sqrt(var+eps) of each row, for the backward pass. */
  stats: BufferBinding;
}

/** out = (x - mean) / sqrt(var + eps) * weight + bias, row by row (biased variance, as PyTorch). */
export function layerNorm(gpu: Gpu, rec: Recorder, a: LayerNormArgs): void {
  dispatchForward(gpu, rec, 'layerNorm', a, LN_FWD, [a.x, a.weight, a.bias, a.out, a.stats], LN_RES_FWD, (residual, sum) =>
    [a.x, residual, a.weight, a.bias, a.out, sum, a.stats]);
}

/** Fields both backward passes take. */
interface NormBackwardCommon {
  /** The forward input (the `sum` buffer when the residual add was fused). */
  x: BufferBinding;
  weight: BufferBinding;
  /** Gradient of the output, [rows, cols]. */
  dOut: BufferBinding;
  /** Gradient of x, [rows, cols]. */
  dx: BufferBinding;
  rows: number;
  cols: number;
  /** Add into dx instead of overwriting it (merging into the residual-stream gradient). */
  accumulate?: boolean;
}

/** Records dx for every row, from the row statistics the forward pass saved. */
function dispatchRowGrad(gpu: Gpu, rec: Recorder, name: string, spec: RowSpec, a: NormBackwardCommon, saved: BufferBinding): void {
  checkShape(name, a.rows, a.cols);
  const g = rowGrid(gpu, a.rows);
  rec.dispatch(spec(gpu, a.cols), {
    buffers: [a.x, a.weight, a.dOut, saved, a.dx],
    params: rowParams(a.rows, a.cols, 0, g.groupsX, !!a.accumulate),
    workgroups: g.workgroups,
  });
}

/** Records the [cols] parameter gradients, each summed over rows in a fixed order. */
function dispatchParamGrad(rec: Recorder, spec: KernelSpec, a: NormBackwardCommon, buffers: BufferBinding[], accumulate: boolean): void {
  rec.dispatch(spec, {
    buffers,
    params: rowParams(a.rows, a.cols, 0, 0, accumulate),
    workgroups: [Math.ceil(a.cols / COLS_PER_GROUP)],
  });
}

export interface RmsNormBackwardArgs extends NormBackwardCommon {
  /** Saved by rmsNorm. */
  rstd: BufferBinding;
  /** [cols] weight gradient, summed over rows in a fixed order; skipped when absent. */
  dWeight?: BufferBinding;
  accumulateWeight?: boolean;
}

export function rmsNormBackward(gpu: Gpu, rec: Recorder, a: RmsNormBackwardArgs): void {
  dispatchRowGrad(gpu, rec, 'rmsNormBackward', RMS_BWD, a, a.rstd);
  if (a.dWeight) dispatchParamGrad(rec, RMS_BWD_W, a, [a.x, a.dOut, a.rstd, a.dWeight], !!a.accumulateWeight);
}

export interface LayerNormBackwardArgs extends NormBackwardCommon {
  /** Saved by layerNorm. */
  stats: BufferBinding;
  /** [cols] gradients of weight and bias, given together or not at all. */
  dWeight?: BufferBinding;
  dBias?: BufferBinding;
  accumulateParams?: boolean;
}

export function layerNormBackward(gpu: Gpu, rec: Recorder, a: LayerNormBackwardArgs): void {
  dispatchRowGrad(gpu, rec, 'layerNormBackward', LN_BWD, a, a.stats);
  if (a.dWeight || a.dBias) {
    if (!a.dWeight || !a.dBias) throw new Error('layerNormBackward: dWeight and dBias go together');
    dispatchParamGrad(rec, LN_BWD_WB, a, [a.x, a.dOut, a.stats, a.dWeight, a.dBias], !!a.accumulateParams);
  }
}
