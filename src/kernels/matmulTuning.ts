// A short tuning pass over GPU-plan matmul launches: a few candidates per shape, each compiled ahead, checked against the reference kernel and timed.
import { f32ToF16Bits, GpuDeviceLostError, type Gpu, type Recorder } from '../gpu';
import { maxRelError } from '../util/relativeError';
import { Rng } from '../util/random';
import { matmul, type MatmulArgs, type MatmulTuning } from './matmul';
import { BLOCKED_BKS, BLOCKED_WGS, blockedTileBytes, SPLIT_K_MAX, SPLIT_K_MIN, SPLIT_K_SPAN, type GpuMatmulPlan } from './matmulGpu';
import { kernelRules, matmulShapeKey, planFits, rowBucket, rulesMatmulPlan, type KernelRules, type MatmulShape } from './matmulPlans';

/** A product the step runs, with the layout the tuning's inputs take. */
export interface TuningShape extends MatmulShape {
  transA?: boolean;
  transB?: boolean;
  bF16?: boolean;
  /** Rank of the folded LoRA term (when `lora`; default 16). */
  r?: number;
}

/** One launch to try. `record` is a test seam: it records the candidate in place of the real kernel. */
export interface TuningCandidate {
  plan: GpuMatmulPlan;
  record?: (gpu: Gpu, rec: Recorder, args: MatmulArgs) => void;
}

export interface CandidateResult {
  plan: GpuMatmulPlan;
  /** Best per-dispatch time over the batches, ms. */
  ms?: number;
  /** max |candidate - reference| / max |reference| on the check input. */
  error?: number;
  /** Why the candidate was dropped (it is then never chosen). */
  dropped?: string;
}

export interface ShapeTuning {
  key: string;
  shape: TuningShape;
  rules: GpuMatmulPlan;
  /** The fastest candidate that compiled and agreed with the reference; null when none did. */
  winner: GpuMatmulPlan | null;
  results: CandidateResult[];
}

export interface TuningOptions {
  /** Timed batches per candidate (default 3; the best counts). */
  batches?: number;
  /** Dispatches per timed batch (default 4). */
  perBatch?: number;
  /** Candidates per shape, the rules' launch first (default and most: MAX_CANDIDATES). */
  maxCandidates?: number;
  log?: (line: string) => void;
  /** Test seam: the candidates of a shape (default `matmulCandidates`). */
  candidates?: (shape: TuningShape, rules: GpuMatmulPlan, gpu: Gpu) => TuningCandidate[];
}

/** Bounds of one pass: at most 8 shapes x 4 candidates x (1 checked + 3 x 4 timed dispatches). */
export const MAX_SHAPES = 8;
export const MAX_CANDIDATES = 4;
/**
 * A candidate agrees with the reference kernel when max |diff| / max |reference| <= 1e-4 on
 * inputs uniform in [-1, 1]. Both accumulate in f32, in different orders (tiles, split-K): the
 * gap grows like sqrt(K)·2⁻²⁴, about 1e-5 at K = 49152, while a wrong launch (a lost tile, a
 * split summed twice) is off by O(1).
 */
export const TUNING_BOUND = 1e-4;

/** The pinned reference: the CPU plan's register kernel, tested against the TypeScript reference. */
const REFERENCE: Partial<MatmulTuning> = { kernel: 'register', wgX: 8, wgY: 8, bk: 16, specialize: false };

function samePlan(a: GpuMatmulPlan, b: GpuMatmulPlan): boolean {
  return a.kernel === b.kernel && (a.kernel === 'gemv' ? a.gemvThreads === b.gemvThreads : a.wg === b.wg && a.bk === b.bk && a.splitK === b.splitK);
}

export function describeMatmulPlan(p: GpuMatmulPlan): string {
  return p.kernel === 'gemv' ? `gemv ${p.gemvThreads} threads` : `${8 * p.wg}x${8 * p.wg} tile, bk ${p.bk}${p.splitK > 1 ? `, split-K ${p.splitK}` : ''}`;
}

/**
 * The launches worth trying for a shape, the rules' first: for GEMV shapes other thread counts;
 * for tiled shapes the other tile widths (deepest K step that fits) and split-K on or off where
 * the shape allows it. At most MAX_CANDIDATES, all fitting the device.
 */
export function matmulCandidates(shape: TuningShape, rules: GpuMatmulPlan, gpu: Pick<Gpu, 'limits'>): TuningCandidate[] {
  const l = gpu.limits;
  const plans: GpuMatmulPlan[] = [rules];
  if (rules.kernel === 'gemv') {
    for (const t of [32, 64, 128, 256]) plans.push({ ...rules, gemvThreads: t });
  } else {
    const canSplit = shape.K >= SPLIT_K_MIN && shape.batch === 1 && !shape.lora;
    const split = Math.min(SPLIT_K_MAX, Math.floor(shape.K / SPLIT_K_SPAN));
    if (canSplit) plans.push({ ...rules, splitK: rules.splitK > 1 ? 1 : split });
    for (const wg of BLOCKED_WGS) {
      const bk = BLOCKED_BKS.find((d) => blockedTileBytes(wg, d) <= l.maxComputeWorkgroupStorageSize) ?? 8;
      plans.push({ kernel: 'blocked', wg, bk, splitK: rules.splitK, gemvThreads: rules.gemvThreads });
    }
  }
  const out: GpuMatmulPlan[] = [];
  for (const p of plans) if (planFits(l, p) && !out.some((q) => samePlan(p, q))) out.push(p);
  return out.slice(0, MAX_CANDIDATES).map((plan) => ({ plan }));
}

function tuningOf(plan: GpuMatmulPlan, specialize: boolean): Partial<MatmulTuning> {
  return plan.kernel === 'gemv'
    ? { kernel: 'gemv', wgX: plan.gemvThreads, wgY: 1, bk: 8, specialize }
    : { kernel: 'blocked', wgX: plan.wg, wgY: plan.wg, bk: plan.bk, splitK: plan.splitK, specialize };
}

/** Random operands of one shape (rows at the bucket the table keys on), on the GPU. */
function makeInputs(gpu: Gpu, s: TuningShape, seed: number): { args: Omit<MatmulArgs, 'c'>; c: GPUBuffer; ref: GPUBuffer; buffers: GPUBuffer[] } {
  const rng = new Rng(seed);
  const M = rowBucket(s.M);
  const { N, K, batch } = s;
  const a = gpu.upload(rng.f32(M * K * batch), 'tuning A');
  const bValues = rng.f32(K * N * batch);
  const b = s.bF16 ? gpu.upload(Uint16Array.from(bValues, f32ToF16Bits), 'tuning B') : gpu.upload(bValues, 'tuning B');
  const c = gpu.createBuffer(M * N * batch * 4, 'tuning C');
  const ref = gpu.createBuffer(M * N * batch * 4, 'tuning reference');
  const buffers = [a, b, c, ref];
  const args: Omit<MatmulArgs, 'c'> = { a, b, M, N, K, batch, transA: !!s.transA, transB: !!s.transB, bF16: !!s.bF16, label: 'tuning' };
  if (s.lora) {
    const r = s.r ?? 16;
    const u = gpu.upload(rng.f32(M * r), 'tuning LoRA u');
    const lb = gpu.upload(rng.f32(N * r), 'tuning LoRA B');
    buffers.push(u, lb);
    args.lora = { u, b: lb, r, scale: 0.5 };
  }
  return { args, c, ref, buffers };
}

function recordReference(gpu: Gpu, rec: Recorder, args: Omit<MatmulArgs, 'c'>, ref: GPUBuffer): void {
  const { lora, ...plain } = args;
  matmul(gpu, rec, { ...plain, c: ref, tuning: REFERENCE });
  if (lora) matmul(gpu, rec, { a: lora.u, b: lora.b, c: ref, M: args.M, N: args.N, K: lora.r, transB: true, alpha: lora.scale, beta: 1, tuning: REFERENCE });
}

function message(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
}

/** Tries one candidate; returns its result. Rethrows a lost device: nothing after it can run. */
async function tryCandidate(gpu: Gpu, cand: TuningCandidate, args: MatmulArgs, expected: Float32Array, o: Required<Pick<TuningOptions, 'batches' | 'perBatch'>>, specialize: boolean): Promise<CandidateResult> {
  const plan = cand.plan;
  const record = (rec: Recorder) => (cand.record ? cand.record(gpu, rec, args) : matmul(gpu, rec, { ...args, tuning: tuningOf(plan, specialize) }));
  const rec = gpu.recorder('tuning check');
  try {
    record(rec);
    // Compiled ahead, off the critical path, so a compile failure is this candidate's alone.
    await gpu.checked(() => Promise.all(rec.pendingSpecs().map((s) => gpu.pipelines.compile(s))));
  } catch (e) {
    if (e instanceof GpuDeviceLostError || gpu.lostError) throw gpu.lostError ?? e;
    return { plan, dropped: `does not compile: ${message(e)}` };
  }
  try {
    await gpu.checked(() => rec.submit());
    const got = await gpu.readF32(args.c as GPUBuffer, expected.length);
    const error = maxRelError(got, expected);
    if (!(error <= TUNING_BOUND)) return { plan, error, dropped: `disagrees with the reference: error ${error.toExponential(2)} > ${TUNING_BOUND}` };
    let best = Infinity;
    for (let i = 0; i < o.batches; i++) {
      const batch = gpu.recorder('tuning batch');
      for (let j = 0; j < o.perBatch; j++) record(batch);
      // Timestamps time the kernels alone; browsers quantise them (to 100 µs in Chrome), so a
      // batch they round to zero is timed by the wall clock instead, as on devices without them.
      const t0 = performance.now();
      let ms = 0;
      if (gpu.hasTimestamps) ms = (await batch.submitTimed()).reduce((sum, t) => sum + t.ms, 0);
      else {
        batch.submit();
        await gpu.sync();
      }
      if (!(ms > 0)) ms = performance.now() - t0;
      best = Math.min(best, ms / o.perBatch);
    }
    return { plan, ms: best, error };
  } catch (e) {
    if (e instanceof GpuDeviceLostError || gpu.lostError) throw gpu.lostError ?? e;
    return { plan, dropped: `failed to run: ${message(e)}` };
  }
}

/**
 * Tunes the GPU-plan launch of each distinct shape (first MAX_SHAPES): candidates from
 * `options.candidates` (default `matmulCandidates`), each checked against the reference on one
 * random input and timed in small batches (timestamp queries when the device has them, else
 * wall time to onSubmittedWorkDone). Dropped candidates are logged with the reason. Throws
 * (the caller falls back to the rules) when the device is lost or the reference cannot run.
 */
export async function tuneMatmulShapes(gpu: Gpu, shapes: readonly TuningShape[], options: TuningOptions = {}): Promise<ShapeTuning[]> {
  const log = options.log ?? (() => {});
  const o = { batches: options.batches ?? 3, perBatch: options.perBatch ?? 4 };
  const maxCandidates = Math.min(MAX_CANDIDATES, options.maxCandidates ?? MAX_CANDIDATES);
  const rules: KernelRules = kernelRules(gpu.adapter);
  const specialize = rules.adapterClass !== 'cpu';
  const distinct = new Map<string, TuningShape>();
  for (const s of shapes) if (!distinct.has(matmulShapeKey(s))) distinct.set(matmulShapeKey(s), s);
  const out: ShapeTuning[] = [];
  for (const [key, shape] of [...distinct].slice(0, MAX_SHAPES)) {
    const rulesPlan = rulesMatmulPlan(gpu.limits, rules, shape);
    const candidates = (options.candidates ?? matmulCandidates)(shape, rulesPlan, gpu).slice(0, maxCandidates);
    const inputs = makeInputs(gpu, shape, out.length + 1);
    try {
      const rec = gpu.recorder('tuning reference');
      recordReference(gpu, rec, inputs.args, inputs.ref);
      await gpu.checked(() => rec.submit());
      const expected = await gpu.readF32(inputs.ref);
      const args: MatmulArgs = { ...inputs.args, c: inputs.c };
      const results: CandidateResult[] = [];
      for (const cand of candidates) {
        let r: CandidateResult;
        try {
          r = await tryCandidate(gpu, cand, args, expected, o, specialize);
        } catch (e) {
          log(`tuning ${key}: ${describeMatmulPlan(cand.plan)} dropped: lost the device (${message(e)})`);
          throw e;
        }
        if (r.dropped) log(`tuning ${key}: ${describeMatmulPlan(cand.plan)} dropped: ${r.dropped}`);
        results.push(r);
      }
      const alive = results.filter((r) => r.ms !== undefined);
      const winner = alive.length ? alive.reduce((x, y) => (y.ms! < x.ms! ? y : x)).plan : null;
      log(`tuning ${key}: ${winner ? `${describeMatmulPlan(winner)} (${alive.map((r) => `${describeMatmulPlan(r.plan)} ${r.ms!.toFixed(3)} ms`).join('; ')})` : 'no candidate survived; the rules stay'}`);
      out.push({ key, shape, rules: rulesPlan, winner, results });
    } finally {
      if (!gpu.lostError) for (const b of inputs.buffers) gpu.release(b);
    }
  }
  return out;
}
