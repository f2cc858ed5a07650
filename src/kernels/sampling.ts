// Next-token choice on the GPU (argmax, repetition penalty, temperature/top-k/top-p draws): bindings for shaders/sampling.wgsl.
import code from '../../shaders/sampling.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type Recorder } from '../gpu';
import { kernelSpec } from './kernelSpec';

const ARGMAX = kernelSpec(code, 'sampling.argmax_rows', 'argmax_rows', ['uniform', 'read', 'write']);
const SAMPLE_TOPK = kernelSpec(code, 'sampling.sample_topk', 'sample_topk', ['uniform', 'read', 'write', 'read']);
const SAMPLE_FULL = kernelSpec(code, 'sampling.sample_full', 'sample_full', ['uniform', 'read', 'write', 'read']);
const PENALTY = kernelSpec(code, 'sampling.repetition_penalty', 'repetition_penalty', ['uniform', 'read', 'write']);

/**
 * Most candidates sample_topk keeps: the largest top-k, and the candidate set of top-p when
 * top-k is off (then the nucleus is cut at this many tokens; its probabilities still come from
 * the full-vocabulary softmax).
 */
export const SAMPLE_MAX_CANDIDATES = 256;
/** Rows whose uniform numbers fit one dispatch's params; more rows take more dispatches. */
export const SAMPLE_ROWS_PER_DISPATCH = 64;

export interface LogitRows {
  /** f32 [rows, V]. */
  logits: BufferBinding;
  rows: number;
  V: number;
}

function sampleParams(
  rowOffset: number,
  rows: number,
  V: number,
  k: number,
  temperature: number,
  topP: number,
  fullZ: boolean,
  random: ArrayLike<number> | RandomBuffer | null,
): Uint8Array {
  const inBuffer = random !== null && 'buffer' in random;
  const params = new Params(512)
    .u32(rows)
    .u32(rowOffset)
    .u32(V)
    .u32(k)
    .f32(temperature)
    .f32(topP)
    .u32(fullZ ? 1 : 0)
    .u32(inBuffer ? 1 : 0);
  const values = inBuffer ? null : random;
  for (let i = 0; i < SAMPLE_ROWS_PER_DISPATCH; i++) params.f32(values && i < rows ? values[rowOffset + i]! : 0);
  return params.bytes();
}

function forEachRowBlock(rows: number, fn: (offset: number, count: number) => void): void {
  for (let offset = 0; offset < rows; offset += SAMPLE_ROWS_PER_DISPATCH) {
    fn(offset, Math.min(SAMPLE_ROWS_PER_DISPATCH, rows - offset));
  }
}

/** out[r] = argmax of row r (u32; ties go to the lowest index). Greedy decoding. */
export function argmaxRows(_gpu: Gpu, rec: Recorder, a: LogitRows & { out: BufferBinding }): void {
  if (a.V < 1) throw new Error('argmaxRows: V must be >= 1');
  forEachRowBlock(a.rows, (offset, count) => {
    rec.dispatch(ARGMAX, {
      buffers: [a.logits, a.out],
      params: sampleParams(offset, count, a.V, 0, 1, 1, false, null),
      workgroups: [count],
    });
  });
}

/**
 * HF RepetitionPenaltyLogitsProcessor, in place: for every distinct id in row r's list,
 * logit < 0 ? logit * penalty : logit / penalty. ids: u32 [rows, idsPerRow]; pad short lists
 * with 0xffffffff (any id >= V is skipped). Repeated ids are fine (applied once), but each
 * thread scans the ids before it, so passing each id once keeps long contexts cheap.
 */
export function applyRepetitionPenalty(
  gpu: Gpu,
  rec: Recorder,
  a: LogitRows & { ids: BufferBinding; idsPerRow: number; penalty: number },
): void {
  if (!(a.penalty > 0)) throw new Error(`applyRepetitionPenalty: penalty must be > 0, got ${a.penalty}`);
  if (a.idsPerRow === 0 || a.penalty === 1) return;
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.ceil(a.idsPerRow / 256);
  if (gx > max || a.rows > max) throw new Error('applyRepetitionPenalty: too many ids or rows for one dispatch');
  rec.dispatch(PENALTY, {
    buffers: [a.ids, a.logits],
    params: new Params().u32(a.rows).u32(a.V).u32(a.idsPerRow).f32(a.penalty).bytes(),
    workgroups: [gx, a.rows],
  });
}

/**
 * The draws' uniform numbers read at run time: f32 [rows] in [0, 1), written before the recorded
 * step is submitted (the writer checks the range), so one recording serves every token.
 */
export interface RandomBuffer {
  buffer: BufferBinding;
}

export interface SamplingSettings {
  /** <= 0: greedy (argmax), as HF's do_sample=False. */
  temperature: number;
  /** 0: off; 1..SAMPLE_MAX_CANDIDATES otherwise. */
  topK: number;
  /** >= 1: off. */
  topP: number;
}

/**
 * Chooses one token id per row into out (u32 [rows]) with HF's warper order: temperature, top-k,
 * top-p, then a draw with random[r] (uniform in [0, 1), from a seeded CPU generator, so a run
 * is reproducible). Greedy when temperature <= 0 or topK == 1; an exact full-vocabulary draw
 * when both top-k and top-p are off.
 */
export function sampleRows(
  gpu: Gpu,
  rec: Recorder,
  a: LogitRows & SamplingSettings & { out: BufferBinding; random: ArrayLike<number> | RandomBuffer },
): void {
  if (a.V < 1) throw new Error('sampleRows: V must be >= 1');
  if (!Number.isInteger(a.topK) || a.topK < 0 || a.topK > SAMPLE_MAX_CANDIDATES) {
    throw new Error(`sampleRows: topK must be an integer in 0..${SAMPLE_MAX_CANDIDATES}, got ${a.topK}`);
  }
  if (!(a.topP > 0)) throw new Error(`sampleRows: topP must be > 0, got ${a.topP}`);
  if (a.temperature <= 0 || a.topK === 1) {
    argmaxRows(gpu, rec, a);
    return;
  }
  const random = 'buffer' in a.random ? null : a.random;
  if (random) checkUniforms(random, a.rows);
  const full = a.topK === 0 && a.topP >= 1;
  const k = Math.min(a.topK === 0 ? SAMPLE_MAX_CANDIDATES : a.topK, a.V);
  forEachRowBlock(a.rows, (offset, count) => {
    rec.dispatch(full ? SAMPLE_FULL : SAMPLE_TOPK, {
      // Without a random buffer the kernel never reads that binding; the logits stand in.
      buffers: [a.logits, a.out, random ? a.logits : (a.random as RandomBuffer).buffer],
      params: sampleParams(offset, count, a.V, k, a.temperature, a.topP, a.topK === 0, a.random),
      workgroups: [count],
    });
  });
}

/** Throws unless `random` holds `rows` numbers in [0, 1) (the draws' inputs). */
export function checkUniforms(random: ArrayLike<number>, rows: number): void {
  if (random.length < rows) throw new Error(`sampleRows: ${random.length} random numbers for ${rows} rows`);
  for (let i = 0; i < rows; i++) {
    const u = random[i]!;
    if (!(u >= 0 && u < 1)) throw new Error(`sampleRows: random[${i}] = ${u} is not in [0, 1)`);
  }
}
