// Matrix multiply for real GPUs (8x8 outputs per thread, split-K, GEMV, a folded LoRA term): bindings for shaders/matmulGpu.wgsl.
import common from '../../shaders/matmulCommon.wgsl?raw';
import own from '../../shaders/matmulGpu.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type KernelSpec, type Recorder } from '../gpu';
import type { MatmulTuning, Problem } from './matmul';

// The family's shared parameters, option flags and element reads, then this file's kernels.
const code = common + own;

/** The folded LoRA term of a linear layer: y += scale · u · bᵀ, as r extra K columns of the product. */
export interface MatmulLoraTerm {
  /** u = x_d Aᵀ, f32 [M, r], from the binding's start. */
  u: BufferBinding;
  /** The adapter's B, f32 [N, r], from the binding's start (a range at an aligned offset). */
  b: BufferBinding;
  r: number;
  scale: number;
}

/** A concrete launch of this family, picked by `chooseGpuMatmul` or given as a tuning. */
export interface GpuMatmulPlan {
  kernel: 'blocked' | 'gemv';
  /** 'blocked': threads per side of the workgroup (4, 8 or 16: tiles of 32, 64 or 128). */
  wg: number;
  /** 'blocked': K depth of a tile, a multiple of 8. */
  bk: number;
  /** 'blocked': K ranges summed by a second kernel (1: none). */
  splitK: number;
  /** 'gemv': threads sharing K, a power of 2. */
  gemvThreads: number;
}

/** Products with at most this many rows use the GEMV kernel (decode: one row per sequence). */
export const GEMV_MAX_ROWS = 16;
/** Tiles shrink until the grid has this many workgroups (a GPU has some 30-150 compute units). */
const MIN_WORKGROUPS = 64;
/** Split-K only for K at least this long: the LM head's input gradient (K = vocabulary). */
export const SPLIT_K_MIN = 4096;
/** Split-K: at least this much K per split, and at most this many splits. */
export const SPLIT_K_SPAN = 2048;
export const SPLIT_K_MAX = 16;
/** 'blocked' workgroup sides (threads; tiles of 128, 64 and 32) and K depths, largest first. */
export const BLOCKED_WGS: readonly number[] = [16, 8, 4];
export const BLOCKED_BKS: readonly number[] = [32, 16, 8];

type PlanLimits = Pick<
  GPUSupportedLimits,
  'maxComputeInvocationsPerWorkgroup' | 'maxComputeWorkgroupSizeX' | 'maxComputeWorkgroupSizeY' | 'maxComputeWorkgroupStorageSize' | 'maxStorageBufferBindingSize'
>;

/** Workgroup-memory bytes of a 'blocked' launch: both tiles, (8·wg) x bk f32 each. */
export function blockedTileBytes(wg: number, bk: number): number {
  return 2 * 8 * wg * bk * 4;
}

/**
 * The launch for an M x N x K product (`batch` items, with or without a folded LoRA term) on a
 * device with these limits: GEMV for M <= 16; otherwise the largest tile (128, 64, then 32 per
 * side) whose grid still has MIN_WORKGROUPS workgroups and whose workgroup fits the device, the
 * deepest K step (32, 16, 8) whose tiles fit its workgroup memory, and for K >= 4096 on a small
 * grid, enough K splits to fill the device.
 */
export function chooseGpuMatmul(limits: PlanLimits, s: { M: number; N: number; K: number; batch: number; lora: boolean }): GpuMatmulPlan {
  const gemvThreads = Math.min(64, 2 ** Math.floor(Math.log2(limits.maxComputeInvocationsPerWorkgroup)));
  if (s.M <= GEMV_MAX_ROWS && !s.lora) return { kernel: 'gemv', wg: 0, bk: 0, splitK: 1, gemvThreads };
  const fits = (wg: number) =>
    wg * wg <= limits.maxComputeInvocationsPerWorkgroup &&
    wg <= limits.maxComputeWorkgroupSizeX &&
    wg <= limits.maxComputeWorkgroupSizeY &&
    blockedTileBytes(wg, 8) <= limits.maxComputeWorkgroupStorageSize;
  const grid = (wg: number) => Math.ceil(s.M / (8 * wg)) * Math.ceil(s.N / (8 * wg)) * s.batch;
  const sizes = BLOCKED_WGS.filter(fits);
  if (sizes.length === 0) throw new Error('matmul: this device cannot run a 4x4-thread workgroup with 32x8 f32 tiles');
  const wg = sizes.find((w) => grid(w) >= MIN_WORKGROUPS) ?? sizes[sizes.length - 1]!;
  const bk = BLOCKED_BKS.find((d) => blockedTileBytes(wg, d) <= limits.maxComputeWorkgroupStorageSize)!;
  let splitK = 1;
  if (s.K >= SPLIT_K_MIN && s.batch === 1 && !s.lora && grid(wg) < 4 * MIN_WORKGROUPS) {
    splitK = Math.min(SPLIT_K_MAX, Math.floor(s.K / SPLIT_K_SPAN), Math.max(2, Math.ceil((4 * MIN_WORKGROUPS) / grid(wg))));
    // The partial sums must fit one binding.
    while (splitK > 1 && splitK * s.M * s.N * 4 > limits.maxStorageBufferBindingSize) splitK--;
  }
  return { kernel: 'blocked', wg, bk, splitK, gemvThreads };
}

/** The plan a tuning names explicitly (tests and benchmarks pin one variant this way). */
export function planFromTuning(t: MatmulTuning): GpuMatmulPlan {
  return { kernel: t.kernel === 'gemv' ? 'gemv' : 'blocked', wg: t.wgX, bk: t.bk, splitK: t.splitK ?? 1, gemvThreads: t.wgX };
}

/** Throws when a plan does not fit the device or the problem. */
export function checkGpuPlan(gpu: Gpu, plan: GpuMatmulPlan, p: Problem, lora: MatmulLoraTerm | undefined): void {
  const l = gpu.limits;
  if (plan.kernel === 'gemv') {
    if (lora) throw new Error('matmul: the GEMV kernel has no folded LoRA term');
    const t = plan.gemvThreads;
    if (t < 1 || (t & (t - 1)) !== 0 || t > l.maxComputeInvocationsPerWorkgroup || t > l.maxComputeWorkgroupSizeX) {
      throw new Error(`matmul: ${t} GEMV threads is not a power of 2 within this device's limits`);
    }
    return;
  }
  const { wg, bk, splitK } = plan;
  if (![4, 8, 16].includes(wg)) throw new Error(`matmul: blocked workgroups are 4x4, 8x8 or 16x16 threads, not ${wg}x${wg}`);
  if (wg * wg > l.maxComputeInvocationsPerWorkgroup) throw new Error(`matmul: a ${wg}x${wg} workgroup exceeds this device's limits`);
  if (bk < 8 || bk % 8 !== 0) throw new Error(`matmul: bk ${bk} is not a positive multiple of 8`);
  const bytes = blockedTileBytes(wg, bk);
  if (bytes > l.maxComputeWorkgroupStorageSize) {
    throw new Error(`matmul: tiles of ${bytes} bytes exceed maxComputeWorkgroupStorageSize ${l.maxComputeWorkgroupStorageSize}`);
  }
  if (!Number.isInteger(splitK) || splitK < 1) throw new Error(`matmul: splitK ${splitK} is not a positive integer`);
  if (splitK > 1 && (p.batch !== 1 || lora)) throw new Error('matmul: split-K needs an unbatched product without a LoRA term');
  if (lora) {
    if (p.transA || !p.transB || p.batch !== 1) throw new Error('matmul: a folded LoRA term needs x·Wᵀ, unbatched');
    if (!Number.isInteger(lora.r) || lora.r < 1) throw new Error(`matmul: LoRA rank ${lora.r} is not a positive integer`);
    for (const [what, binding, rows] of [['u', lora.u, p.M], ['B', lora.b, p.N]] as const) {
      const size = 'buffer' in binding ? (binding.size ?? binding.buffer.size - (binding.offset ?? 0)) : binding.size;
      if (size < rows * lora.r * 4) throw new Error(`matmul: LoRA ${what} needs ${rows * lora.r * 4} bytes, its binding has ${size}`);
    }
  }
}

const BINDINGS = ['uniform', 'read', 'read', 'read', 'write', 'read', 'read'] as const;
const specs = new Map<string, KernelSpec>();

function spec(entryPoint: string, constants: Record<string, number>): KernelSpec {
  const key = `${entryPoint}:${Object.entries(constants).join(',')}`;
  let s = specs.get(key);
  if (!s) specs.set(key, (s = { name: `matmulGpu.${entryPoint}`, code, entryPoint, bindings: BINDINGS, constants }));
  return s;
}

/** Split-K partial sums: one scratch buffer per device, grown as needed and never handed back
 * while the device lives (a recorded dispatch may still write the old one). */
const scratch = new WeakMap<Gpu, GPUBuffer[]>();

function partialBuffer(gpu: Gpu, bytes: number): GPUBuffer {
  const held = scratch.get(gpu) ?? [];
  const fit = held.find((b) => b.size >= bytes);
  if (fit) return fit;
  const buf = gpu.createBuffer(bytes, 'matmul split-K partials');
  held.push(buf);
  scratch.set(gpu, held);
  return buf;
}

/** The uniform fields both matmul families share (their Params structs start alike). */
export function matmulParams(p: Problem, flags: number): Params {
  return new Params()
    .u32(p.M)
    .u32(p.N)
    .u32(p.K)
    .u32(p.lda)
    .u32(p.ldb)
    .u32(p.ldc)
    .u32(p.offA)
    .u32(p.offB)
    .u32(p.offC)
    .u32(p.offBias)
    .u32(p.batch === 1 ? 0 : p.strideA)
    .u32(p.batch === 1 ? 0 : p.strideB)
    .u32(p.batch === 1 ? 0 : p.strideC)
    .f32(p.alpha)
    .f32(p.beta)
    .u32(flags);
}

function params(p: Problem, flags: number, kChunk: number, splits: number, lora: MatmulLoraTerm | undefined): Uint8Array {
  return matmulParams(p, flags)
    .u32(kChunk)
    .u32(splits)
    .u32(lora?.r ?? 0)
    .f32(lora?.scale ?? 0)
    .bytes();
}

/** Records one product of this family. `flags` are matmul.wgsl's option bits, with VEC_B for f16 meaning 8-aligned runs. */
export function dispatchGpuMatmul(
  gpu: Gpu,
  rec: Recorder,
  p: Problem,
  flags: number,
  plan: GpuMatmulPlan,
  specialize: boolean,
  lora: MatmulLoraTerm | undefined,
  label: string | undefined,
): void {
  const fixed: Record<string, number> = specialize ? { FLAGS: flags } : {};
  const bias = p.bias ?? p.a;
  const loraU = lora?.u ?? p.a;
  const loraB = lora?.b ?? p.a;
  if (plan.kernel === 'gemv') {
    rec.dispatch(spec('matmul_gemv', { ...fixed, GEMV_WG: plan.gemvThreads }), {
      buffers: [p.a, p.b, bias, p.c, loraU, loraB],
      params: params(p, flags, p.K, 1, undefined),
      workgroups: [Math.ceil(p.N / 4), Math.ceil(p.M / 4), p.batch],
      label,
    });
    return;
  }
  const { wg, bk } = plan;
  const tile = 8 * wg;
  const blocked = spec('matmul_blocked', { ...fixed, WG_X: wg, WG_Y: wg, BK: bk });
  const grid: [number, number] = [Math.ceil(p.N / tile), Math.ceil(p.M / tile)];
  // Whole K steps per split; fewer splits if the last ones would be empty.
  const kChunk = Math.ceil(Math.ceil(p.K / plan.splitK) / bk) * bk;
  const splits = plan.splitK > 1 ? Math.max(1, Math.ceil(p.K / kChunk)) : 1;
  if (splits === 1) {
    rec.dispatch(blocked, { buffers: [p.a, p.b, bias, p.c, loraU, loraB], params: params(p, flags, p.K, 1, lora), workgroups: [...grid, p.batch], label });
    return;
  }
  const mn = p.M * p.N;
  const part = partialBuffer(gpu, Math.ceil((splits * mn * 4) / 16) * 16);
  rec.dispatch(blocked, { buffers: [p.a, p.b, bias, part, loraU, loraB], params: params(p, flags, kChunk, splits, undefined), workgroups: [...grid, splits], label });
  const groups = Math.ceil(mn / 64);
  rec.dispatch(spec('matmul_splitk_reduce', fixed), {
    buffers: [part, p.b, bias, p.c, part, part],
    params: params(p, flags, kChunk, splits, undefined),
    workgroups: [Math.min(groups, 65535), Math.ceil(groups / 65535)],
    label: label ? `${label}.splitk` : 'matmul.splitk',
  });
}
