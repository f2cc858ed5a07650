// RMSNorm and LayerNorm over rows, forward and backward: bindings for shaders/norm.wgsl.
import code from '../../shaders/norm.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type KernelSpec, type Recorder } from '../gpu';

/**
 * RMSNorm (Llama family) and LayerNorm (GPT-2) over rows of f32 activations, forward and backward.
 * Weights and biases are f32 ([cols]): they are tiny, so they stay f32 even when the big
 * matrices are f16.
 */

type Storage = readonly ('read' | 'write')[];

/** A per-row kernel with its workgroup size picked for `cols`. */
const rowSpec =
  (entryPoint: string, storage: Storage) =>
  (cols: number): KernelSpec => ({
    name: `norm.${entryPoint}`,
    code,
    entryPoint,
    bindings: ['uniform', ...storage],
    constants: { WG: rowWorkgroupSize(cols) },
  });

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

const columnSpec = (entryPoint: string, storage: Storage): KernelSpec => ({
  name: `norm.${entryPoint}`,
  code,
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

export interface RmsNormArgs {
  /** [rows, cols] input. */
  x: BufferBinding;
  /** [cols] scale. */
  weight: BufferBinding;
  /** [rows, cols] output. */
  out: BufferBinding;
  /** [rows] saved 1/sqrt(mean(x²)+eps) for the backward pass. */
  rstd: BufferBinding;
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

/** out = x / sqrt(mean(x²) + eps) * weight, row by row. */
export function rmsNorm(gpu: Gpu, rec: Recorder, a: RmsNormArgs): void {
  checkShape('rmsNorm', a.rows, a.cols);
  const g = rowGrid(gpu, a.rows);
  const params = rowParams(a.rows, a.cols, a.eps, g.groupsX, false);
  if (a.residual || a.sum) {
    if (!a.residual || !a.sum) throw new Error('rmsNorm: residual and sum go together');
    rec.dispatch(RMS_RES_FWD(a.cols), {
      buffers: [a.x, a.residual, a.weight, a.out, a.sum, a.rstd],
      params,
      workgroups: g.workgroups,
    });
    return;
  }
  rec.dispatch(RMS_FWD(a.cols), { buffers: [a.x, a.weight, a.out, a.rstd], params, workgroups: g.workgroups });
}

export interface LayerNormArgs {
  x: BufferBinding;
  weight: BufferBinding;
  bias: BufferBinding;
  out: BufferBinding;
  /** [rows, 2]: mean and 1/sqrt(var+eps) of each row, for the backward pass. */
  stats: BufferBinding;
  rows: number;
  cols: number;
  eps: number;
  /** Fused residual add, as in RmsNormArgs. */
  residual?: BufferBinding;
  sum?: BufferBinding;
}

/** out = (x - mean) / sqrt(var + eps) * weight + bias, row by row (biased variance, as PyTorch). */
export function layerNorm(gpu: Gpu, rec: Recorder, a: LayerNormArgs): void {
  checkShape('layerNorm', a.rows, a.cols);
  const g = rowGrid(gpu, a.rows);
  const params = rowParams(a.rows, a.cols, a.eps, g.groupsX, false);
  if (a.residual || a.sum) {
    if (!a.residual || !a.sum) throw new Error('layerNorm: residual and sum go together');
    rec.dispatch(LN_RES_FWD(a.cols), {
      buffers: [a.x, a.residual, a.weight, a.bias, a.out, a.sum, a.stats],
      params,
      workgroups: g.workgroups,
    });
    return;
  }
  rec.dispatch(LN_FWD(a.cols), { buffers: [a.x, a.weight, a.bias, a.out, a.stats], params, workgroups: g.workgroups });
}

export interface RmsNormBackwardArgs {
  /** The forward input (the `sum` buffer when the residual add was fused). */
  x: BufferBinding;
  weight: BufferBinding;
  /** Saved by rmsNorm. */
  rstd: BufferBinding;
  /** Gradient of the output, [rows, cols]. */
  dOut: BufferBinding;
  /** Gradient of x, [rows, cols]. */
  dx: BufferBinding;
  rows: number;
  cols: number;
  /** Add into dx instead of overwriting it (merging into the residual-stream gradient). */
  accumulate?: boolean;
  /** [cols] weight gradient, summed over rows in a fixed order; skipped when absent. */
  dWeight?: BufferBinding;
  accumulateWeight?: boolean;
}

export function rmsNormBackward(gpu: Gpu, rec: Recorder, a: RmsNormBackwardArgs): void {
  checkShape('rmsNormBackward', a.rows, a.cols);
  const g = rowGrid(gpu, a.rows);
  rec.dispatch(RMS_BWD(a.cols), {
    buffers: [a.x, a.weight, a.dOut, a.rstd, a.dx],
    params: rowParams(a.rows, a.cols, 0, g.groupsX, !!a.accumulate),
    workgroups: g.workgroups,
  });
  if (a.dWeight) {
    rec.dispatch(RMS_BWD_W, {
      buffers: [a.x, a.dOut, a.rstd, a.dWeight],
      params: rowParams(a.rows, a.cols, 0, 0, !!a.accumulateWeight),
      workgroups: [Math.ceil(a.cols / COLS_PER_GROUP)],
    });
  }
}

export interface LayerNormBackwardArgs {
  x: BufferBinding;
  weight: BufferBinding;
  /** Saved by layerNorm. */
  stats: BufferBinding;
  dOut: BufferBinding;
  dx: BufferBinding;
  rows: number;
  cols: number;
  accumulate?: boolean;
  /** [cols] gradients of weight and bias, given together or not at all. */
  dWeight?: BufferBinding;
  dBias?: BufferBinding;
  accumulateParams?: boolean;
}

export function layerNormBackward(gpu: Gpu, rec: Recorder, a: LayerNormBackwardArgs): void {
  checkShape('layerNormBackward', a.rows, a.cols);
  const g = rowGrid(gpu, a.rows);
  rec.dispatch(LN_BWD(a.cols), {
    buffers: [a.x, a.weight, a.dOut, a.stats, a.dx],
    params: rowParams(a.rows, a.cols, 0, g.groupsX, !!a.accumulate),
    workgroups: g.workgroups,
  });
  if (a.dWeight || a.dBias) {
    if (!a.dWeight || !a.dBias) throw new Error('layerNormBackward: dWeight and dBias go together');
    rec.dispatch(LN_BWD_WB, {
      buffers: [a.x, a.dOut, a.stats, a.dWeight, a.dBias],
      params: rowParams(a.rows, a.cols, 0, 0, !!a.accumulateParams),
      workgroups: [Math.ceil(a.cols / COLS_PER_GROUP)],
    });
  }
}
