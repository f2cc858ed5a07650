/**
 * Causal grouped-query attention (f32) with an online softmax: forward, backward, KV-cache decode.
 *
 * Layouts (row-major, as the q/k/v projections produce them):
 * - q, out, dout, dq: [B, T, Hq, D]
 * - k, v, dk, dv: [B, kvCapacity, Hkv, D]; rows 0 .. pastLen+T-1 are used. In training
 *   kvCapacity = T and pastLen = 0, i.e. plain [B, T, Hkv, D].
 * - lse (per-row logsumexp of the scaled scores, natural log) and the backward workspace
 *   `delta`: [B, Hq, T].
 * Query t has position pastLen + t and attends keys 0 ..= pastLen + t. Query head h uses kv
 * head floor(h / (Hq / Hkv)). Scale defaults to 1/sqrt(D). Head dims: multiples of 4 up to 128
 * (tensors are read as vec4 rows; every real model's head dim qualifies).
 *
 * Decode: one new token per sequence, q [B, 1, Hq, D], over caches [B, capacity, Hkv, D] whose
 * rows 0 .. kvLen-1 are valid (append the new token's k/v first with `appendKv`, then decode
 * with kvLen = its position + 1). Keys are split over workgroups (flash-decoding) and merged by
 * a second kernel through a caller-owned workspace (`attentionDecodeWorkspaceBytes`). With a
 * `LivePosition` instead of a number, the position comes from a buffer at run time, so one
 * recorded step serves every token: the dispatch covers the most splits of any length up to the
 * capacity, and the kernels derive this length's splits with the same rule (the same results).
 *
 * Tensors must each fit one storage binding (maxStorageBufferBindingSize): split big batches.
 *
 * Two kernel families compute the same results (within the tests' bounds): the device's kernel
 * plan picks one, a caller may name one with `kernels`. 'cpu': the kernels of attention.wgsl,
 * one thread per row, no workgroup memory or barriers. 'gpu': flashAttention.wgsl's tiles in
 * workgroup memory, several lanes per row splitting the head dim, head dim fixed per pipeline
 * (every head dim above). Both are deterministic.
 */
import common from '../../shaders/attentionCommon.wgsl?raw';
import own from '../../shaders/attention.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type KernelPlan, type KernelSpec, type Recorder } from '../gpu';
import { FLASH_THREADS, flashSpecs, type FlashSpecs } from './flashAttention';
import { grid1d } from './grid';

/** Largest head dim the kernels hold in registers (MAX_D4 * 4 in the shader). */
export const ATTENTION_MAX_HEAD_DIM = 128;
/** Threads per workgroup: query rows (forward, dq), key rows (dk/dv) or splits (decode). */
const ROWS = 64;
/** Decode splits keys until about this many threads run (or chunks reach DECODE_MIN_CHUNK). */
const DECODE_TARGET_THREADS = 4096;
const DECODE_MIN_CHUNK = 32;
/**
 * The 'gpu' plan's decode runs a workgroup per split: about this many workgroups, chunks of at
 * least one step of FLASH_THREADS keys. Never more splits than the 'cpu' plan's rule allows, so
 * attentionDecodeWorkspaceBytes covers both.
 */
const FLASH_DECODE_TARGET_WORKGROUPS = 1024;
const FLASH_DECODE_MIN_CHUNK = FLASH_THREADS;

export interface AttentionDims {
  B: number;
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  /** Softmax scale; 1/sqrt(D) when absent. */
  scale?: number;
  /** Kernel family; the device's plan (gpu.kernels) when absent. */
  kernels?: KernelPlan;
}

export interface AttentionForwardArgs extends AttentionDims {
  q: BufferBinding;
  k: BufferBinding;
  v: BufferBinding;
  out: BufferBinding;
  lse: BufferBinding;
  /** Cached keys before the first query (prefill continuing a cache). Default 0. */
  pastLen?: number;
  /** Rows per sequence in the k/v buffers. Default pastLen + T. */
  kvCapacity?: number;
}

export interface AttentionBackwardArgs extends AttentionDims {
  q: BufferBinding;
  k: BufferBinding;
  v: BufferBinding;
  out: BufferBinding;
  lse: BufferBinding;
  dout: BufferBinding;
  dq: BufferBinding;
  dk: BufferBinding;
  dv: BufferBinding;
  /** Workspace of B*Hq*T f32 (rowsum(dout * out)); overwritten. */
  delta: BufferBinding;
  pastLen?: number;
  kvCapacity?: number;
}

/**
 * A position read at run time: entry 0 of a u32 buffer (the decoded token's cache row, the same
 * for every sequence), written before the recorded step is submitted.
 */
export interface LivePosition {
  buffer: BufferBinding;
}

export interface AttentionDecodeArgs {
  /** [B, 1, Hq, D] */
  q: BufferBinding;
  /** [B, capacity, Hkv, D] */
  kCache: BufferBinding;
  vCache: BufferBinding;
  /** [B, 1, Hq, D] */
  out: BufferBinding;
  /** At least attentionDecodeWorkspaceBytes(...) bytes; overwritten. */
  workspace: BufferBinding;
  B: number;
  Hq: number;
  Hkv: number;
  D: number;
  capacity: number;
  /** Valid cache rows, >= 1; live: the buffer's position + 1. */
  kvLen: number | LivePosition;
  scale?: number;
  /** Keys per split; chosen from the problem size when absent. */
  chunk?: number;
  /** Kernel family; the device's plan (gpu.kernels) when absent. */
  kernels?: KernelPlan;
}

export interface AppendKvArgs {
  /** [B, rows, Hkv, D] */
  kNew: BufferBinding;
  vNew: BufferBinding;
  /** [B, capacity, Hkv, D] */
  kCache: BufferBinding;
  vCache: BufferBinding;
  B: number;
  rows: number;
  Hkv: number;
  D: number;
  capacity: number;
  /** First cache row written (every sequence of the batch is at the same length). */
  pos: number | LivePosition;
}

const code = common + own;

function spec(entryPoint: string, bindings: KernelSpec['bindings']): KernelSpec {
  return { name: `attention.${entryPoint}`, code, entryPoint, bindings, constants: { ROWS } };
}

// The head dim is a runtime parameter (see the shader's header), so each kernel compiles once.
const FWD = spec('attn_fwd', ['uniform', 'read', 'read', 'read', 'write', 'write']);
const BWD_DQ = spec('attn_bwd_dq', ['uniform', 'read', 'read', 'read', 'read', 'read', 'read', 'write', 'write']);
const BWD_DKDV = spec('attn_bwd_dkdv', ['uniform', 'read', 'read', 'read', 'read', 'read', 'read', 'write', 'write']);
const DECODE_PARTIAL = spec('attn_decode_partial', ['uniform', 'read', 'read', 'read', 'write', 'read']);
const DECODE_COMBINE = spec('attn_decode_combine', ['uniform', 'read', 'write', 'read']);
const KV_APPEND = spec('attn_kv_append', ['uniform', 'read', 'read', 'write', 'write', 'read']);

/** The flash kernels for head dim D when the plan is 'gpu', else null ('cpu' kernels). */
function flashFor(gpu: Gpu, plan: KernelPlan | undefined, D: number): FlashSpecs | null {
  return (plan ?? gpu.kernels) === 'gpu' ? flashSpecs(D) : null;
}

function bytesOf(b: BufferBinding): number {
  if ('buffer' in b) return b.size ?? b.buffer.size - (b.offset ?? 0);
  return b.size;
}

function needFloats(what: string, b: BufferBinding, floats: number): void {
  const have = bytesOf(b);
  if (have < floats * 4) throw new Error(`attention: ${what} holds ${have} bytes, needs ${floats * 4}`);
}

function checkDims(d: AttentionDims): void {
  for (const [k, v] of Object.entries({ B: d.B, T: d.T, Hq: d.Hq, Hkv: d.Hkv, D: d.D })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`attention: ${k} must be a positive integer, got ${v}`);
  }
  if (d.Hq % d.Hkv !== 0) throw new Error(`attention: Hkv=${d.Hkv} must divide Hq=${d.Hq}`);
  if (d.D > ATTENTION_MAX_HEAD_DIM || d.D % 4 !== 0) {
    throw new Error(`attention: head dim ${d.D} must be a multiple of 4 and <= ${ATTENTION_MAX_HEAD_DIM}`);
  }
}

function attnParams(d: AttentionDims, pastLen: number, kvCapacity: number): Uint8Array {
  return new Params()
    .u32(d.B)
    .u32(d.T)
    .u32(d.Hq)
    .u32(d.Hkv)
    .u32(kvCapacity)
    .u32(pastLen)
    .u32(d.D)
    .f32(d.scale ?? 1 / Math.sqrt(d.D))
    .bytes();
}

function kvGeometry(a: { T: number; pastLen?: number; kvCapacity?: number }): { pastLen: number; kvCapacity: number } {
  const pastLen = a.pastLen ?? 0;
  const kvCapacity = a.kvCapacity ?? pastLen + a.T;
  if (!Number.isInteger(pastLen) || pastLen < 0) throw new Error(`attention: pastLen ${pastLen}`);
  if (kvCapacity < pastLen + a.T) throw new Error(`attention: kvCapacity ${kvCapacity} < pastLen + T = ${pastLen + a.T}`);
  return { pastLen, kvCapacity };
}

/** Records the forward pass: out = softmax(scale q k^T, causal) v, and lse per query row. */
export function attentionForward(gpu: Gpu, rec: Recorder, a: AttentionForwardArgs): void {
  checkDims(a);
  const { pastLen, kvCapacity } = kvGeometry(a);
  const { B, T, Hq, Hkv, D } = a;
  needFloats('q', a.q, B * T * Hq * D);
  needFloats('k', a.k, B * kvCapacity * Hkv * D);
  needFloats('v', a.v, B * kvCapacity * Hkv * D);
  needFloats('out', a.out, B * T * Hq * D);
  needFloats('lse', a.lse, B * Hq * T);
  const flash = flashFor(gpu, a.kernels, D);
  rec.dispatch(flash ? flash.forward : FWD, {
    buffers: [a.q, a.k, a.v, a.out, a.lse],
    params: attnParams(a, pastLen, kvCapacity),
    workgroups: [Math.ceil(T / (flash ? flash.shape.rows : ROWS)), Hq, B],
  });
}

/**
 * Records the backward pass (FlashAttention-2) as two kernels: dq per query row, which also stores
 * delta = rowsum(dout * out) in the `delta` workspace; then dk, dv per key row, summing over the
 * query heads that share its kv head itself ('cpu': a thread per row; 'gpu': several lanes per
 * row, the other side's rows staged in workgroup memory). P is recomputed from lse and
 * never stored. Deterministic (fixed summation order, no atomics). dk/dv rows past pastLen + T
 * are not written.
 */
export function attentionBackward(gpu: Gpu, rec: Recorder, a: AttentionBackwardArgs): void {
  checkDims(a);
  const { pastLen, kvCapacity } = kvGeometry(a);
  const { B, T, Hq, Hkv, D } = a;
  const qFloats = B * T * Hq * D;
  const kvFloats = B * kvCapacity * Hkv * D;
  for (const [n, b] of [['q', a.q], ['out', a.out], ['dout', a.dout], ['dq', a.dq]] as const) needFloats(n, b, qFloats);
  for (const [n, b] of [['k', a.k], ['v', a.v], ['dk', a.dk], ['dv', a.dv]] as const) needFloats(n, b, kvFloats);
  needFloats('lse', a.lse, B * Hq * T);
  needFloats('delta', a.delta, B * Hq * T);
  const params = attnParams(a, pastLen, kvCapacity);
  const flash = flashFor(gpu, a.kernels, D);
  const rows = flash ? flash.shape.rows : ROWS;

  rec.dispatch(flash ? flash.dq : BWD_DQ, {
    buffers: [a.q, a.k, a.v, a.dout, a.lse, a.out, a.delta, a.dq],
    params,
    workgroups: [Math.ceil(T / rows), Hq, B],
  });
  rec.dispatch(flash ? flash.dkdv : BWD_DKDV, {
    buffers: [a.q, a.k, a.v, a.dout, a.lse, a.delta, a.dk, a.dv],
    params,
    workgroups: [Math.ceil((pastLen + T) / rows), Hkv, B],
  });
}

/**
 * Enough splits to keep ~DECODE_TARGET_THREADS threads ('cpu') or the target workgroups ('gpu')
 * busy, none shorter than the minimum chunk: the merge costs grow with the splits. The decode
 * kernels apply the same rule to a live length.
 */
function decodeSplitRule(d: { B: number; Hq: number }, plan: KernelPlan): { maxSplits: number; minChunk: number } {
  const [target, minChunk] = plan === 'gpu' ? [FLASH_DECODE_TARGET_WORKGROUPS, FLASH_DECODE_MIN_CHUNK] : [DECODE_TARGET_THREADS, DECODE_MIN_CHUNK];
  return { maxSplits: Math.max(1, Math.ceil(target / (d.B * d.Hq))), minChunk };
}

/** How decode splits the key range of a cache with `kvLen` valid rows, for a kernel plan. */
export function attentionDecodeSplits(
  d: { B: number; Hq: number; kvLen: number; chunk?: number },
  plan: KernelPlan = 'cpu',
): {
  chunk: number;
  nSplits: number;
} {
  let chunk = d.chunk;
  if (chunk === undefined) {
    const { maxSplits, minChunk } = decodeSplitRule(d, plan);
    const splits = Math.max(1, Math.min(maxSplits, Math.floor(d.kvLen / minChunk)));
    chunk = Math.ceil(d.kvLen / splits);
  }
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`attention decode: chunk ${chunk}`);
  return { chunk, nSplits: Math.ceil(d.kvLen / chunk) };
}

/**
 * Bytes of workspace decode needs for any kvLen <= capacity (with automatic chunks; a caller
 * passing its own `chunk` needs B*Hq*ceil(kvLen/chunk)*(D+4)*4).
 */
export function attentionDecodeWorkspaceBytes(d: { B: number; Hq: number; D: number; capacity: number }): number {
  // attentionDecodeSplits never makes more splits than this, for any kvLen <= capacity.
  const maxSplits = Math.max(1, Math.ceil(DECODE_TARGET_THREADS / (d.B * d.Hq)));
  const nSplits = Math.max(1, Math.min(maxSplits, Math.floor(d.capacity / DECODE_MIN_CHUNK)));
  return d.B * d.Hq * nSplits * (d.D + 4) * 4;
}

/** Records single-token attention over a KV cache: split-K partial softmaxes, then their merge. */
export function attentionDecode(gpu: Gpu, rec: Recorder, a: AttentionDecodeArgs): void {
  checkDims({ ...a, T: 1 });
  const { B, Hq, Hkv, D, capacity } = a;
  const live = typeof a.kvLen === 'number' ? null : a.kvLen;
  if (live && a.chunk !== undefined) throw new Error('attention decode: a live length takes no explicit chunk');
  const kvLen = live ? capacity : (a.kvLen as number);
  if (!Number.isInteger(kvLen) || kvLen < 1 || kvLen > capacity) {
    throw new Error(`attention decode: kvLen ${kvLen} outside 1..capacity ${capacity}`);
  }
  // Live: the caller keeps the position below the capacity (a KvCache checks each step).
  needFloats('q', a.q, B * Hq * D);
  needFloats('out', a.out, B * Hq * D);
  needFloats('kCache', a.kCache, B * capacity * Hkv * D);
  needFloats('vCache', a.vCache, B * capacity * Hkv * D);
  const flash = flashFor(gpu, a.kernels, D);
  const plan = flash ? 'gpu' : 'cpu';
  const rule = decodeSplitRule(a, plan);
  // Live: sized for the most splits the rule makes for any length up to the capacity.
  const { chunk, nSplits } = live
    ? { chunk: 0, nSplits: Math.max(1, Math.min(rule.maxSplits, Math.floor(capacity / rule.minChunk))) }
    : attentionDecodeSplits({ B, Hq, kvLen, ...(a.chunk === undefined ? {} : { chunk: a.chunk }) }, plan);
  needFloats('workspace', a.workspace, B * Hq * nSplits * (D + 4));
  const params = new Params()
    .u32(B)
    .u32(Hq)
    .u32(Hkv)
    .u32(capacity)
    .u32(live ? 0 : kvLen)
    .u32(chunk)
    .u32(live ? 0 : nSplits)
    .u32(D)
    .f32(a.scale ?? 1 / Math.sqrt(D))
    .u32(live ? 1 : 0)
    .u32(rule.maxSplits)
    .u32(rule.minChunk)
    .bytes();
  rec.dispatch(flash ? flash.decodePartial : DECODE_PARTIAL, {
    // Without a live position the kernels ignore that binding's entry 0; q stands in.
    buffers: [a.q, a.kCache, a.vCache, a.workspace, live?.buffer ?? a.q],
    params,
    // 'gpu': a workgroup per split; 'cpu': a thread per split.
    workgroups: [flash ? nSplits : Math.ceil(nSplits / ROWS), Hq, B],
  });
  rec.dispatch(DECODE_COMBINE, {
    buffers: [a.workspace, a.out, live?.buffer ?? a.workspace],
    params,
    workgroups: [Hq, B],
  });
}

/**
 * Records a copy of new k/v rows [B, rows, Hkv, D] into caches [B, capacity, Hkv, D] at row
 * `pos` (one small kernel for both tensors and all sequences, instead of 2*B buffer copies).
 */
export function appendKv(gpu: Gpu, rec: Recorder, a: AppendKvArgs): void {
  const { B, rows, Hkv, D, capacity } = a;
  const live = typeof a.pos === 'number' ? null : a.pos;
  const pos = live ? 0 : (a.pos as number);
  // Live: the caller keeps the position below capacity - rows + 1 (a KvCache checks each step).
  if (pos < 0 || pos + rows > capacity) throw new Error(`appendKv: rows ${pos}..${pos + rows} past capacity ${capacity}`);
  const n = B * rows * Hkv * D;
  needFloats('kNew', a.kNew, n);
  needFloats('vNew', a.vNew, n);
  needFloats('kCache', a.kCache, B * capacity * Hkv * D);
  needFloats('vCache', a.vCache, B * capacity * Hkv * D);
  const g = grid1d(n, 256, gpu.limits.maxComputeWorkgroupsPerDimension);
  rec.dispatch(KV_APPEND, {
    buffers: [a.kNew, a.vNew, a.kCache, a.vCache, live?.buffer ?? a.kNew],
    params: new Params().u32(n).u32(g.rowStride).u32(rows).u32(Hkv * D).u32(capacity).u32(pos).u32(live ? 1 : 0).bytes(),
    workgroups: g.workgroups,
  });
}
