// Batched matrix multiply with alpha, beta, bias and transposes, f32 or f16 weights: bindings for shaders/matmul.wgsl.
import common from '../../shaders/matmulCommon.wgsl?raw';
import own from '../../shaders/matmul.wgsl?raw';
import shared from '../../shaders/matmulSubgroup.wgsl?raw';
import { isCpuAdapter, type BufferBinding, type Gpu, type KernelSpec, type Recorder } from '../gpu';
import { checkGpuPlan, dispatchGpuMatmul, matmulParams, planFromTuning, type MatmulLoraTerm } from './matmulGpu';
import { gpuMatmulPlanFor } from './matmulPlans';

// The family's shared parameters, option flags and element reads, then this file's kernels.
const code = common + own;
/** The same plus matmul_rows_shared, which uses subgroup builtins (devices with 'subgroups' only). */
const subgroupCode = 'enable subgroups;\n' + code + shared;

/**
 * 'rows-shared': 'rows' with 8 threads that each load one run of A and hand it to the others by
 * subgroupBroadcast, so a thread loads 5 runs per 4 k instead of 12 (shaders/matmulSubgroup.wgsl;
 * same outputs as 'rows'): the CPU plan's kernel on devices whose subgroups are at least 8 wide.
 * 'rows': a workgroup owns 8 rows of C and each of its wgX threads a 4-column strip of them,
 * so every A element is the same for the whole workgroup and each B element feeds 8
 * multiply-adds: the CPU plan's kernel where 'rows-shared' cannot run.
 * 'register': each thread keeps a 4x4 block of C in registers and reads A and B straight from
 * storage (no workgroup memory, no barriers): the CPU plan's kernel before 'rows'.
 * 'tiled': a workgroup stages (4*wgY) x bk of A and bk x (4*wgX) of B in workgroup memory: the
 * usual shape for real GPUs.
 * 'blocked' and 'gemv' (src/kernels/matmulGpu.ts): the GPU plan's kernels, 8x8 outputs per
 * thread over 32-128 wide tiles with optional split-K, and a K-parallel kernel for M <= 16.
 * 'by-shape': one of those two with tiles picked from the shape and the device (the job's tuned
 * launch for the shape, else the adapter class's rules: see matmulPlans.ts), the GPU plan's default.
 */
export type MatmulKernel = 'rows-shared' | 'rows' | 'register' | 'tiled' | 'blocked' | 'gemv';

export interface MatmulTuning {
  kernel: MatmulKernel | 'by-shape';
  /** Threads along N (each computes 4 columns; 'rows-shared': always 8; 'blocked': 8, and wgY must equal wgX; 'gemv': threads along K). */
  wgX: number;
  /** Threads along M (each computes 4 rows; 'blocked': 8; 'rows': unused, a workgroup is one row of threads). */
  wgY: number;
  /** 'tiled' and 'blocked': depth of a K step, a multiple of 4 ('blocked': of 8). */
  bk: number;
  /** 'blocked' only: K ranges computed apart and summed in order by a second kernel (default 1). */
  splitK?: number;
  /**
   * Compile one pipeline per combination of options (transposes, alignment, bias, f16) instead
   * of one that reads them from the uniform. Pays on GPUs; on lavapipe every pipeline costs
   * seconds of LLVM time at its first dispatch.
   */
  specialize: boolean;
}

/** Shape, transposes, batching, scales and sub-matrix views of a product: the kernel's and the reference's. */
export interface MatmulLayout {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** Independent products in one dispatch (default 1, at most 65535). */
  batch?: number;
  /** Elements between batch items (defaults: packed). 0 broadcasts one matrix to every item. */
  strideA?: number;
  strideB?: number;
  strideC?: number;
  /** Scale of the product (default 1). */
  alpha?: number;
  /** Scale of C's old contents (default 0: C is not read, so NaN there is overwritten). */
  beta?: number;
  /** Leading dimensions in elements, for sub-matrix views (defaults: the packed row length). */
  lda?: number;
  ldb?: number;
  ldc?: number;
  /** Element offsets into each binding (after its byte offset, if it is a range). */
  offsetA?: number;
  offsetB?: number;
  offsetC?: number;
  offsetBias?: number;
}

export interface MatmulArgs extends MatmulLayout {
  /** op(A) is [M, K]: A is stored [M, K], or [K, M] when transA. */
  a: BufferBinding;
  /** op(B) is [K, N]: B is stored [K, N], or [N, K] when transB (HF's [out, in] weight). */
  b: BufferBinding;
  /** Output [M, N]; read only when beta != 0. Must not alias A, B or bias. */
  c: BufferBinding;
  /** f32 vector of N values added to every row of C (after alpha and beta). */
  bias?: BufferBinding;
  /** B holds IEEE f16 values (2 bytes each); A, C, bias and accumulation stay f32. */
  bF16?: boolean;
  /** Overrides of the device's default kernel and tile shape. */
  tuning?: Partial<MatmulTuning>;
  /**
   * Largest range to bind (default: the device's maxStorageBufferBindingSize). Operands over it
   * are split into several dispatches over ranges of the buffer; tests lower it to exercise that.
   */
  maxBindingBytes?: number;
  /**
   * A LoRA term folded into the product as r extra K columns, (x | s·u)·(W | B)ᵀ, for x·Wᵀ
   * (transB, unbatched). Only the GPU plan's 'blocked' kernel has it: with it, the 'rows',
   * 'register' and 'tiled' kernels give way to the shape's 'blocked' launch.
   */
  lora?: MatmulLoraTerm;
  label?: string;
}

const BINDINGS = ['uniform', 'read', 'read', 'read', 'write'] as const;

/** Rows of C per workgroup of matmul_rows and matmul_rows_shared (fixed in their shaders). */
const ROWS_PER_WORKGROUP = 8;
/** Threads of matmul_rows_shared's workgroup (fixed in shaders/matmulSubgroup.wgsl). */
const SHARED_ROWS_THREADS = 8;

/**
 * True when the device runs 'rows-shared': subgroups, all at least 8 wide, so its workgroup of
 * 8 threads is one subgroup.
 */
export function sharedRowsFit(gpu: Gpu): boolean {
  return gpu.hasSubgroups && (gpu.adapter.subgroupMinSize ?? 0) >= 8;
}

/**
 * The kernel and tile shape `matmul` uses on this device unless told otherwise. The GPU plan
 * forced onto a CPU adapter (CI) keeps the flags at run time: lavapipe compiles each pipeline
 * for a minute or more under load, and one pipeline per tile shape serves every variant.
 */
export function defaultMatmulTuning(gpu: Gpu): MatmulTuning {
  return gpu.kernels === 'cpu'
    ? { kernel: sharedRowsFit(gpu) ? 'rows-shared' : 'rows', wgX: 16, wgY: 1, bk: 16, specialize: false }
    : { kernel: 'by-shape', wgX: 16, wgY: 16, bk: 16, specialize: !isCpuAdapter(gpu.adapter) };
}

export interface Range {
  buffer: GPUBuffer;
  /** Byte offset of the binding. */
  offset: number;
  /** Byte size of the binding. */
  size: number;
}

/** The full problem with every default resolved. */
export interface Problem {
  a: Range;
  b: Range;
  c: Range;
  bias: Range | null;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  batch: number;
  strideA: number;
  strideB: number;
  strideC: number;
  alpha: number;
  beta: number;
  bF16: boolean;
  lda: number;
  ldb: number;
  ldc: number;
  offA: number;
  offB: number;
  offC: number;
  offBias: number;
}

function toRange(b: BufferBinding): Range {
  if (!('buffer' in b)) return { buffer: b, offset: 0, size: b.size };
  const offset = b.offset ?? 0;
  return { buffer: b.buffer, offset, size: b.size ?? b.buffer.size - offset };
}

function isInt(v: number): boolean {
  return Number.isInteger(v) && v >= 0;
}

/** One past the last element an operand view touches, relative to its binding. */
function extent(off: number, batch: number, stride: number, rows: number, ld: number, cols: number): number {
  if (rows === 0 || cols === 0 || batch === 0) return off;
  return off + (batch - 1) * stride + (rows - 1) * ld + cols;
}

function resolve(args: MatmulArgs): Problem {
  const { M, N, K } = args;
  const transA = args.transA ?? false;
  const transB = args.transB ?? false;
  const batch = args.batch ?? 1;
  const p: Problem = {
    a: toRange(args.a),
    b: toRange(args.b),
    c: toRange(args.c),
    bias: args.bias ? toRange(args.bias) : null,
    M,
    N,
    K,
    transA,
    transB,
    batch,
    strideA: args.strideA ?? M * K,
    strideB: args.strideB ?? K * N,
    strideC: args.strideC ?? M * N,
    alpha: args.alpha ?? 1,
    beta: args.beta ?? 0,
    bF16: args.bF16 ?? false,
    lda: args.lda ?? (transA ? M : K),
    ldb: args.ldb ?? (transB ? K : N),
    ldc: args.ldc ?? N,
    offA: args.offsetA ?? 0,
    offB: args.offsetB ?? 0,
    offC: args.offsetC ?? 0,
    offBias: args.offsetBias ?? 0,
  };
  const ints: Array<[string, number]> = [
    ['M', M], ['N', N], ['K', K], ['batch', batch], ['strideA', p.strideA], ['strideB', p.strideB],
    ['strideC', p.strideC], ['lda', p.lda], ['ldb', p.ldb], ['ldc', p.ldc], ['offsetA', p.offA],
    ['offsetB', p.offB], ['offsetC', p.offC], ['offsetBias', p.offBias],
  ];
  for (const [name, v] of ints) if (!isInt(v)) throw new Error(`matmul: ${name} = ${v} is not a non-negative integer`);
  if (batch > 65535) throw new Error(`matmul: batch ${batch} > 65535`);
  if (p.lda < (transA ? M : K)) throw new Error(`matmul: lda ${p.lda} is shorter than a row of A`);
  if (p.ldb < (transB ? K : N)) throw new Error(`matmul: ldb ${p.ldb} is shorter than a row of B`);
  if (p.ldc < N) throw new Error(`matmul: ldc ${p.ldc} < N ${N}`);
  // Out-of-range reads would be clamped silently by robust buffer access: fail loudly instead.
  // A and B are read as 16-byte vectors, so only whole vectors of their bindings are visible.
  const check = (name: string, r: Range | null, bytesPer: number, end: number, unit: number) => {
    const visible = r ? Math.floor(r.size / unit) * unit : 0;
    if (r && end * bytesPer > visible) {
      throw new Error(`matmul: ${name} needs ${end * bytesPer} bytes from its binding, which shows ${visible}`);
    }
  };
  const [aRows, aCols] = transA ? [K, M] : [M, K];
  const [bRows, bCols] = transB ? [N, K] : [K, N];
  check('A', p.a, 4, extent(p.offA, batch, p.strideA, aRows, p.lda, aCols), 16);
  check('B', p.b, p.bF16 ? 2 : 4, extent(p.offB, batch, p.strideB, bRows, p.ldb, bCols), 16);
  check('C', p.c, 4, extent(p.offC, batch, p.strideC, M, p.ldc, N), 4);
  check('bias', p.bias, 4, p.offBias + N, 4);
  return p;
}

const FLAG_TRANS_A = 1;
const FLAG_TRANS_B = 2;
const FLAG_VEC_A = 4;
const FLAG_VEC_B = 8;
const FLAG_BIAS = 16;
const FLAG_B_F16 = 32;

/** Option bits; `f16Run` is the run of f16 B elements the kernel loads at once (matmulGpu: 8). */
function flagsOf(p: Problem, f16Run = 4): number {
  // A run along the contiguous dimension is one aligned load when every start is aligned to it.
  const vecA = p.lda % 4 === 0 && p.offA % 4 === 0 && (p.batch === 1 || p.strideA % 4 === 0);
  const runB = p.bF16 ? f16Run : 4;
  const vecB = p.ldb % runB === 0 && p.offB % runB === 0 && (p.batch === 1 || p.strideB % runB === 0);
  return (
    (p.transA ? FLAG_TRANS_A : 0) |
    (p.transB ? FLAG_TRANS_B : 0) |
    (vecA ? FLAG_VEC_A : 0) |
    (vecB ? FLAG_VEC_B : 0) |
    (p.bias ? FLAG_BIAS : 0) |
    (p.bF16 ? FLAG_B_F16 : 0)
  );
}

/** One spec object per variant, so the pipeline cache finds it by identity. */
const specs = new Map<string, KernelSpec>();

function specFor(flags: number, t: MatmulTuning): KernelSpec {
  const key = t.kernel === 'rows-shared' ? `${flags}:${t.kernel}:${t.specialize}` : `${flags}:${t.kernel}:${t.wgX}:${t.kernel === 'rows' ? 1 : t.wgY}:${t.specialize}:${t.bk}`;
  let spec = specs.get(key);
  if (!spec) specs.set(key, (spec = makeSpec(flags, t)));
  return spec;
}

function makeSpec(flags: number, t: MatmulTuning): KernelSpec {
  if (t.kernel === 'rows-shared') {
    const entryPoint = 'matmul_rows_shared';
    return { name: entryPoint, code: subgroupCode, entryPoint, bindings: BINDINGS, constants: t.specialize ? { FLAGS: flags } : {} };
  }
  const constants: Record<string, number> = t.kernel === 'rows' ? { WG_X: t.wgX } : { WG_X: t.wgX, WG_Y: t.wgY };
  // 0xffffffff (the shader's default) leaves the flags to the uniform.
  if (t.specialize) constants.FLAGS = flags;
  if (t.kernel === 'tiled') constants.BK = t.bk;
  const entryPoint = t.kernel === 'tiled' ? 'matmul_tiled' : t.kernel === 'rows' ? 'matmul_rows' : 'matmul_reg';
  return { name: entryPoint, code, entryPoint, bindings: BINDINGS, constants };
}

function dispatchOne(gpu: Gpu, rec: Recorder, p: Problem, t: MatmulTuning, lora: MatmulLoraTerm | undefined, label: string | undefined): void {
  if (t.kernel === 'by-shape' || t.kernel === 'blocked' || t.kernel === 'gemv') {
    const plan = t.kernel === 'by-shape' ? gpuMatmulPlanFor(gpu, { M: p.M, N: p.N, K: p.K, batch: p.batch, lora: !!lora }) : planFromTuning(t);
    checkGpuPlan(gpu, plan, p, lora);
    dispatchGpuMatmul(gpu, rec, p, flagsOf(p, 8), plan, t.specialize, lora, label);
    return;
  }
  const flags = flagsOf(p);
  const rowsKernel = t.kernel === 'rows' || t.kernel === 'rows-shared';
  const wgX = t.kernel === 'rows-shared' ? SHARED_ROWS_THREADS : t.wgX;
  // The uniform's GPU-plan fields (matmulCommon.wgsl): all of K in one split, no LoRA columns.
  const params = matmulParams(p, flags).u32(p.K).u32(1).u32(0).f32(0).bytes();
  // Without a bias the slot still needs a buffer: A again (read-only bindings may alias).
  const bias = p.bias ?? p.a;
  rec.dispatch(specFor(flags, t), {
    buffers: [p.a, p.b, bias, p.c],
    params,
    workgroups: [Math.ceil(p.N / (4 * wgX)), Math.ceil(p.M / (rowsKernel ? ROWS_PER_WORKGROUP : 4 * t.wgY)), p.batch],
    label,
  });
}

/**
 * Narrows a binding to the elements [first, end) it must expose, starting at an offset the
 * device accepts; returns the new range and the element offset of `first` inside it.
 */
function narrow(r: Range, bytesPer: number, first: number, end: number, align: number): { range: Range; off: number } {
  const startByte = r.offset + first * bytesPer;
  const offset = Math.floor(startByte / align) * align;
  const endByte = r.offset + end * bytesPer;
  // Whole vec4s where the original range allows (the shader reads A and B as vec4s), but never
  // past it: a wider C range could overlap another binding of the same buffer.
  const size = Math.min(Math.max(16, Math.ceil((endByte - offset) / 16) * 16), r.offset + r.size - offset);
  return { range: { buffer: r.buffer, offset, size }, off: (startByte - offset) / bytesPer };
}

/**
 * A binding of rows [firstRow, firstRow + rows) of a row-major matrix in `buffer` (row length
 * `rowLength` elements of `bytesPerElement`), at an offset the device accepts, plus the element
 * offset of the first row inside it: pass them as `b` and `offsetB` (or a/offsetA, c/offsetC).
 * For callers that walk a large weight in chunks themselves, e.g. an LM head by vocabulary.
 */
export function rowRange(
  gpu: Gpu,
  buffer: GPUBuffer,
  firstRow: number,
  rows: number,
  rowLength: number,
  bytesPerElement = 4,
): { binding: BufferBinding; offset: number } {
  const whole: Range = { buffer, offset: 0, size: buffer.size };
  const first = firstRow * rowLength;
  const end = (firstRow + rows) * rowLength;
  const { range, off } = narrow(whole, bytesPerElement, first, end, gpu.limits.minStorageBufferOffsetAlignment);
  return { binding: range, offset: off };
}

/** Largest chunk of a dimension whose rows of `rowBytes` fit in `limit`, in multiples of 64. */
function chunkRows(limit: number, rowBytes: number, total: number, align: number, what: string): number {
  const rows = Math.floor((limit - align - 16) / rowBytes) - 1;
  if (rows < 1) throw new Error(`matmul: one row of ${what} (${rowBytes} bytes) does not fit in a ${limit}-byte binding`);
  if (rows >= total) return total;
  // Multiples of 64 keep 4-aligned views aligned and tiles full.
  return rows >= 64 ? rows - (rows % 64) : rows;
}

function splitAndDispatch(gpu: Gpu, rec: Recorder, p: Problem, t: MatmulTuning, limit: number, align: number, label?: string): void {
  if (p.batch !== 1) throw new Error('matmul: batched operands over the binding-size limit are not supported');
  const esB = p.bF16 ? 2 : 4;
  // Each operand's span grows with the dimension along its stored rows.
  let mC = p.M;
  let nC = p.N;
  let kC = p.K;
  const over = (r: Range | null) => r !== null && r.size > limit;
  if (over(p.c)) mC = Math.min(mC, chunkRows(limit, p.ldc * 4, p.M, align, 'C'));
  if (over(p.a)) {
    if (p.transA) kC = Math.min(kC, chunkRows(limit, p.lda * 4, p.K, align, 'A'));
    else mC = Math.min(mC, chunkRows(limit, p.lda * 4, p.M, align, 'A'));
  }
  if (over(p.b)) {
    if (p.transB) nC = Math.min(nC, chunkRows(limit, p.ldb * esB, p.N, align, 'B'));
    else kC = Math.min(kC, chunkRows(limit, p.ldb * esB, p.K, align, 'B'));
  }
  for (let m0 = 0; m0 < p.M; m0 += mC) {
    const m = Math.min(mC, p.M - m0);
    for (let n0 = 0; n0 < p.N; n0 += nC) {
      const n = Math.min(nC, p.N - n0);
      // K = 0 still runs once: C = beta * C + bias.
      for (let k0 = 0; k0 === 0 || k0 < p.K; k0 += Math.max(kC, 1)) {
        const k = Math.min(kC, p.K - k0);
        const a = p.transA
          ? narrow(p.a, 4, p.offA + k0 * p.lda + m0, p.offA + (k0 + Math.max(k, 1) - 1) * p.lda + m0 + m, align)
          : narrow(p.a, 4, p.offA + m0 * p.lda + k0, p.offA + (m0 + m - 1) * p.lda + k0 + k, align);
        const b = p.transB
          ? narrow(p.b, esB, p.offB + n0 * p.ldb + k0, p.offB + (n0 + n - 1) * p.ldb + k0 + k, align)
          : narrow(p.b, esB, p.offB + k0 * p.ldb + n0, p.offB + (k0 + Math.max(k, 1) - 1) * p.ldb + n0 + n, align);
        const c = narrow(p.c, 4, p.offC + m0 * p.ldc + n0, p.offC + (m0 + m - 1) * p.ldc + n0 + n, align);
        const first = k0 === 0;
        const bias = first && p.bias ? narrow(p.bias, 4, p.offBias + n0, p.offBias + n0 + n, align) : null;
        for (const [name, r] of [['A', a], ['B', b], ['C', c]] as const) {
          if (r.range.size > limit) throw new Error(`matmul: a ${name} chunk of ${r.range.size} bytes still exceeds ${limit}`);
        }
        const sub: Problem = {
          ...p,
          a: a.range,
          b: b.range,
          c: c.range,
          bias: bias?.range ?? null,
          M: m,
          N: n,
          K: k,
          offA: a.off,
          offB: b.off,
          offC: c.off,
          offBias: bias?.off ?? 0,
          // Later K chunks accumulate onto the first.
          beta: first ? p.beta : 1,
        };
        dispatchOne(gpu, rec, sub, t, undefined, label);
      }
    }
  }
}

function checkTuning(gpu: Gpu, t: MatmulTuning): void {
  if (t.kernel === 'rows-shared') {
    if (!sharedRowsFit(gpu)) throw new Error("matmul: the 'rows-shared' kernel needs subgroups at least 8 wide");
    return;
  }
  if (t.kernel !== 'rows' && t.kernel !== 'register' && t.kernel !== 'tiled') return; // matmulGpu checks its own plans
  const l = gpu.limits;
  if (t.kernel === 'rows') {
    if (t.wgX > l.maxComputeInvocationsPerWorkgroup || t.wgX > l.maxComputeWorkgroupSizeX) throw new Error(`matmul: a workgroup of ${t.wgX} threads exceeds this device's limits`);
    return;
  }
  if (t.wgX * t.wgY > l.maxComputeInvocationsPerWorkgroup || t.wgX > l.maxComputeWorkgroupSizeX || t.wgY > l.maxComputeWorkgroupSizeY) {
    throw new Error(`matmul: a ${t.wgX}x${t.wgY} workgroup exceeds this device's limits`);
  }
  if (t.kernel !== 'tiled') return;
  if (t.bk % 4 !== 0 || t.bk < 4) throw new Error(`matmul: bk ${t.bk} is not a positive multiple of 4`);
  // Both tiles, with the spare vec4 per row that the shader adds (see matmul.wgsl).
  const bytes = (t.bk + 4) * (t.wgX + t.wgY) * 16;
  if (bytes > l.maxComputeWorkgroupStorageSize) {
    throw new Error(`matmul: tiles of ${bytes} bytes exceed maxComputeWorkgroupStorageSize ${l.maxComputeWorkgroupStorageSize}`);
  }
}

/**
 * Records C = alpha * op(A) op(B) + beta * C + bias. Any M, N, K; batched with per-operand
 * strides; B may be f16. Operands larger than the binding-size limit (an LM head, say) are
 * split into several dispatches over buffer ranges: along N or K for B, along M for A and C.
 */
export function matmul(gpu: Gpu, rec: Recorder, args: MatmulArgs): void {
  const p = resolve(args);
  if (p.M === 0 || p.N === 0 || p.batch === 0) return;
  const tuning: MatmulTuning = { ...defaultMatmulTuning(gpu), ...args.tuning };
  if (args.lora && (tuning.kernel === 'rows-shared' || tuning.kernel === 'rows' || tuning.kernel === 'register' || tuning.kernel === 'tiled')) tuning.kernel = 'by-shape';
  checkTuning(gpu, tuning);
  const limit = args.maxBindingBytes ?? gpu.limits.maxStorageBufferBindingSize;
  const fits = [p.a, p.b, p.c, p.bias].every((r) => r === null || r.size <= limit);
  if (fits) dispatchOne(gpu, rec, p, tuning, args.lora, args.label);
  else if (args.lora) throw new Error('matmul: a folded LoRA term cannot be split over the binding-size limit');
  else splitAndDispatch(gpu, rec, p, tuning, limit, gpu.limits.minStorageBufferOffsetAlignment, args.label);
}

/** Floating-point operations of one matmul (2 per multiply-add), for GFLOP/s figures. */
export function matmulFlops(M: number, N: number, K: number, batch = 1): number {
  return 2 * M * N * K * batch;
}
