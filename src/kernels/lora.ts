// LoRA linear layer (frozen W plus scaled A/B path) forward and backward, and its dropout mask: bindings for shaders/lora.wgsl.
import common from '../../shaders/loraCommon.wgsl?raw';
import own from '../../shaders/lora.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type KernelSpec, type Recorder } from '../gpu';
import { grid1d } from './grid';
import { dropoutTerms, LORA_TILES, passValues, type LoraDropout } from './loraCommon';
import { dropoutKey } from './reference/lora';

export { loraScale, type DropoutSpec } from './reference/lora';
export type { LoraDropout, PassSeed } from './loraCommon';

// Layouts (Hugging Face / PEFT): x [T, K], W [N, K], A [r, K], B [N, r], u [T, r], y [T, N].
// Every tensor is row-major f32, except W, which may be packed f16 (`wF16`).

const code = common + own;
const { RC, DOWN_ROWS, GW_COLS, DX_COLS, DX_ROWS_PER_GROUP, LIN_BN } = LORA_TILES;

const DROPOUT_MASK: KernelSpec = { name: 'lora_dropout_mask', code, entryPoint: 'dropout_mask', bindings: ['uniform', 'read', 'write'] };
// The kernels that may mask x also bind the pass's values (the pass part of the mask seed).
const DX: KernelSpec = { name: 'lora_dx', code, entryPoint: 'lora_dx', bindings: ['uniform', 'read', 'read', 'write', 'values'] };
const DOWN: KernelSpec = { name: 'lora_down', code, entryPoint: 'lora_down', bindings: ['uniform', 'read', 'read', 'write', 'values'] };
const GRAD_W: KernelSpec = { name: 'lora_grad_w', code, entryPoint: 'lora_grad_w', bindings: ['uniform', 'read', 'read', 'write', 'values'] };

/** One spec object per variant, so the pipeline cache finds it by identity. */
const linearSpecs = new Map<string, KernelSpec>();

function linearSpec(tm: number, wF16: boolean): KernelSpec {
  const key = `${tm}:${wF16}`;
  let spec = linearSpecs.get(key);
  if (!spec) linearSpecs.set(key, (spec = makeLinearSpec(tm, wF16)));
  return spec;
}

function makeLinearSpec(tm: number, wF16: boolean): KernelSpec {
  return {
    name: 'lora_linear',
    code,
    entryPoint: 'lora_linear',
    bindings: ['uniform', 'read', 'read', 'read', 'read', 'read', 'write'],
    constants: { LIN_TM: tm, W_F16: wF16 ? 1 : 0 },
  };
}

function checkDims(what: string, dims: Record<string, number>): void {
  for (const [k, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${what}: ${k} must be a non-negative integer, got ${v}`);
  }
  if (dims.r !== undefined && dims.r < 1) throw new Error(`${what}: r must be >= 1`);
}

/**
 * Fails loudly when a buffer (or a sized range) is too small for its tensor, or when the tensor
 * is over the binding-size limit (the caller must split it: these kernels bind whole tensors).
 */
function checkSize(gpu: Gpu, what: string, name: string, b: BufferBinding, bytes: number): void {
  const have = 'buffer' in b ? (b.size ?? b.buffer.size - (b.offset ?? 0)) : b.size;
  if (have < bytes) throw new Error(`${what}: ${name} holds ${have} bytes, needs ${bytes}`);
  const max = gpu.limits.maxStorageBufferBindingSize;
  if (bytes > max) throw new Error(`${what}: ${name} needs ${bytes} bytes, over maxStorageBufferBindingSize ${max}`);
}

/** Dropout fields of a params struct: on, mul, add (the seed is add + mul * the pass's seed), threshold, 1/(1-p). */
function pushDropout(p: Params, d: LoraDropout | null | undefined): Params {
  const t = dropoutTerms(d);
  return p.u32(t.on).u32(t.mul).u32(t.add).u32(t.threshold).f32(t.invKeep);
}

export interface DropoutMaskArgs {
  x: BufferBinding;
  /** Output: x * mask / (1 - p); may not alias x. */
  xd: BufferBinding;
  /** Number of elements. The mask of element i depends only on (i, seed, p). */
  n: number;
  seed: number;
  p: number;
}

/**
 * xd = x * mask / (1 - p), the mask drawn from a counter-based hash of (element index, seed):
 * deterministic per seed, identical to the inline dropout of `loraDown` / `loraBackward`.
 */
export function dropoutMask(gpu: Gpu, rec: Recorder, args: DropoutMaskArgs): void {
  const { x, xd, n } = args;
  checkDims('dropoutMask', { n });
  checkSize(gpu, 'dropoutMask', 'x', x, n * 4);
  checkSize(gpu, 'dropoutMask', 'xd', xd, n * 4);
  const k = dropoutKey({ seed: args.seed, p: args.p });
  const g = grid1d(n, 256, gpu.limits.maxComputeWorkgroupsPerDimension);
  rec.dispatch(DROPOUT_MASK, {
    buffers: [x, xd],
    params: new Params().u32(n).u32(g.rowStride).u32(k.key).u32(k.threshold).f32(k.invKeep).bytes(),
    workgroups: g.workgroups,
  });
}

export interface LoraDownArgs {
  /** [T, K]: the layer input, or a precomputed x_d (then leave `dropout` out). */
  x: BufferBinding;
  /** A [r, K]. */
  a: BufferBinding;
  /** Output u [T, r]. */
  u: BufferBinding;
  T: number;
  K: number;
  r: number;
  /**
   * Applies dropout to x inline (same mask as `dropoutMask` with this seed; with `pass`, the seed
   * it completes in each pass), so x_d is never stored.
   */
  dropout?: LoraDropout | null;
}

/** u = x_d A^T: [T, r]. One workgroup per 4 rows x (up to 16) columns of u, reducing over K. */
export function loraDown(gpu: Gpu, rec: Recorder, args: LoraDownArgs): void {
  const { x, a, u, T, K, r } = args;
  checkDims('loraDown', { T, K, r });
  checkSize(gpu, 'loraDown', 'x', x, T * K * 4);
  checkSize(gpu, 'loraDown', 'a', a, r * K * 4);
  checkSize(gpu, 'loraDown', 'u', u, T * r * 4);
  const params = new Params().u32(T).u32(K).u32(r).f32(1).u32(0);
  pushDropout(params, args.dropout);
  rec.dispatch(DOWN, {
    buffers: [x, a, u, passValues(gpu, args.dropout?.pass)],
    params: params.bytes(),
    workgroups: [Math.ceil(T / DOWN_ROWS), Math.ceil(r / RC)],
    label: 'lora_down',
  });
}

export interface LoraLinearArgs {
  /** [T, K]: the layer input (the base path never sees dropout). */
  x: BufferBinding;
  /** Frozen base weight W [N, K]: f32, or packed f16 (2 per u32, element i in half i) when wF16. */
  w: BufferBinding;
  wF16?: boolean;
  /** [N], f32. */
  bias?: BufferBinding | null;
  /** u = x_d A^T [T, r] from `loraDown`. */
  u: BufferBinding;
  /** B [N, r]. */
  b: BufferBinding;
  /** Output y [T, N]; may not alias any input. */
  y: BufferBinding;
  T: number;
  K: number;
  N: number;
  r: number;
  /** alpha / r (or alpha / sqrt(r) with rsLoRA): see `loraScale`. */
  scale: number;
}

/**
 * y = x W^T + bias + scale * u B^T in one tiled kernel: the low-rank product adds into the base
 * product's accumulators, so y is written once.
 *
 * f16 weights are read as u32 words and widened with unpack2x16float rather than as native f16:
 * that needs no shader-f16 (absent in some browsers), so one kernel serves every device, and the
 * arithmetic is f32 either way; the halved weight traffic, which is the point of f16, is kept.
 */
export function loraLinear(gpu: Gpu, rec: Recorder, args: LoraLinearArgs): void {
  const { x, w, u, b, y, T, K, N, r, scale } = args;
  const wF16 = args.wF16 ?? false;
  checkDims('loraLinear', { T, K, N, r });
  checkSize(gpu, 'loraLinear', 'x', x, T * K * 4);
  checkSize(gpu, 'loraLinear', 'w', w, wF16 ? Math.ceil((N * K) / 2) * 4 : N * K * 4);
  checkSize(gpu, 'loraLinear', 'u', u, T * r * 4);
  checkSize(gpu, 'loraLinear', 'b', b, N * r * 4);
  checkSize(gpu, 'loraLinear', 'y', y, T * N * 4);
  if (args.bias) checkSize(gpu, 'loraLinear', 'bias', args.bias, N * 4);
  // Short row tiles for few tokens (generation): a 64-row tile would be mostly padding.
  const tm = T <= 16 ? 1 : 4;
  rec.dispatch(linearSpec(tm, wF16), {
    // Without a bias, B stands in for the bias binding; the shader never reads it then.
    buffers: [x, w, args.bias ?? b, u, b, y],
    params: new Params().u32(T).u32(K).u32(N).u32(r).f32(scale).u32(args.bias ? 1 : 0).bytes(),
    workgroups: [Math.ceil(N / LIN_BN), Math.ceil(T / (16 * tm))],
    label: 'lora_linear',
  });
}

export interface LoraBackwardArgs {
  /** The layer input [T, K], raw: with `dropout`, the kernels regenerate x_d from it. */
  x: BufferBinding;
  /** dL/dy [T, N]. */
  dy: BufferBinding;
  /** u [T, r] saved (or recomputed) from the forward pass. */
  u: BufferBinding;
  a: BufferBinding;
  b: BufferBinding;
  /** Scratch [T, r] f32, overwritten with du = scale * dy B (the caller owns it: see below). */
  du: BufferBinding;
  /** Output dL/dA [r, K]. */
  gradA: BufferBinding;
  /** Output dL/dB [N, r]. */
  gradB: BufferBinding;
  /** dL/dx [T, K]: gets the low-rank path's part, mask/(1-p) * du A. Left alone when omitted. */
  dx?: BufferBinding | null;
  T: number;
  K: number;
  N: number;
  r: number;
  scale: number;
  /** Add into gradA / gradB (gradient accumulation) instead of overwriting them. Default false. */
  accumulate?: boolean;
  /**
   * Add into dx (it already holds the base path's dy W) instead of overwriting it. Default true,
   * because the base path's part is normally there already.
   */
  accumulateDx?: boolean;
  /** The dropout the forward pass used (same seed, pass seed and p); omit if none. */
  dropout?: LoraDropout | null;
}

/**
 * Backward of the low-rank path, four kernels in order:
 *   du = scale * dy B;  gradB (+)= scale * dy^T u;  gradA (+)= du^T x_d;  dx (+)= mask/(1-p) * du A.
 * The base path's dx = dy W belongs to the matmul family. `du` is a caller-owned scratch buffer
 * because the recorder has not run yet when this returns, so a buffer released here could be
 * handed out again before these kernels read it.
 */
export function loraBackward(gpu: Gpu, rec: Recorder, args: LoraBackwardArgs): void {
  const { x, dy, u, a, b, du, gradA, gradB, T, K, N, r, scale } = args;
  checkDims('loraBackward', { T, K, N, r });
  const what = 'loraBackward';
  checkSize(gpu, what, 'x', x, T * K * 4);
  checkSize(gpu, what, 'dy', dy, T * N * 4);
  checkSize(gpu, what, 'u', u, T * r * 4);
  checkSize(gpu, what, 'a', a, r * K * 4);
  checkSize(gpu, what, 'b', b, N * r * 4);
  checkSize(gpu, what, 'du', du, T * r * 4);
  checkSize(gpu, what, 'gradA', gradA, r * K * 4);
  checkSize(gpu, what, 'gradB', gradB, N * r * 4);
  if (args.dx) checkSize(gpu, what, 'dx', args.dx, T * K * 4);
  const acc = args.accumulate ? 1 : 0;
  const d = args.dropout;
  const values = passValues(gpu, d?.pass);
  const rChunks = Math.ceil(r / RC);

  // du[t, j] = scale * sum_n dy[t, n] B[n, j]: the same skinny reduction as u, with B k-major.
  rec.dispatch(DOWN, {
    buffers: [dy, b, du, values],
    params: pushDropout(new Params().u32(T).u32(N).u32(r).f32(scale).u32(1), null).bytes(),
    workgroups: [Math.ceil(T / DOWN_ROWS), rChunks],
    label: 'lora_du',
  });
  rec.dispatch(GRAD_W, {
    buffers: [dy, u, gradB, values],
    params: pushDropout(new Params().u32(T).u32(N).u32(r).f32(scale).u32(acc).u32(0), null).bytes(),
    workgroups: [Math.ceil(N / GW_COLS), rChunks],
    label: 'lora_grad_b',
  });
  rec.dispatch(GRAD_W, {
    buffers: [x, du, gradA, values],
    params: pushDropout(new Params().u32(T).u32(K).u32(r).f32(1).u32(acc).u32(1), d).bytes(),
    workgroups: [Math.ceil(K / GW_COLS), rChunks],
    label: 'lora_grad_a',
  });
  if (args.dx) {
    const accDx = (args.accumulateDx ?? true) ? 1 : 0;
    rec.dispatch(DX, {
      buffers: [du, a, args.dx, values],
      params: pushDropout(new Params().u32(T).u32(K).u32(r).u32(accDx), d).bytes(),
      workgroups: [Math.ceil(K / DX_COLS), Math.ceil(T / DX_ROWS_PER_GROUP)],
      label: 'lora_dx',
    });
  }
}
