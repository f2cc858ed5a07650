// Next-token choice on the GPU (argmax, repetition penalty, temperature/top-k/top-p draws): bindings for shaders/sampling.wgsl.
import code from '../../shaders/sampling.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type Recorder } from '../gpu';
import { kernelSpec } from './kernelSpec';

const ARGMAX = kernelSpec(code, 'sampling.argmax_rows', 'argmax_rows', ['uniform', 'read', 'write']);
const SAMPLE_TOPK = kernelSpec(code, 'sampling.sample_topk', 'sample_topk', ['uniform', 'read', 'write']);
const SAMPLE_FULL = kernelSpec(code, 'sampling.sample_full', 'sample_full', ['uniform', 'read', 'write']);
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
  random: ArrayLike<number> | null,
): Uint8Array {
  const params = new Params(512)
    .u32(rows)
    .u32(rowOffset)
    .u32(V)
    .u32(k)
    .f32(temperature)
    .f32(topP)
    .u32(fullZ ? 1 : 0)
    .u32(0);
  for (let i = 0; i < SAMPLE_ROWS_PER_DISPATCH; i++) params.f32(random && i < rows ? random[rowOffset + i]! : 0);
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
  a: LogitRows & SamplingSettings & { out: BufferBinding; random: ArrayLike<number> },
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
  if (a.random.length < a.rows) throw new Error(`sampleRows: ${a.random.length} random numbers for ${a.rows} rows`);
  for (let i = 0; i < a.rows; i++) {
    const u = a.random[i]!;
    if (!(u >= 0 && u < 1)) throw new Error(`sampleRows: random[${i}] = ${u} is not in [0, 1)`);
  }
  const full = a.topK === 0 && a.topP >= 1;
  const k = Math.min(a.topK === 0 ? SAMPLE_MAX_CANDIDATES : a.topK, a.V);
  forEachRowBlock(a.rows, (offset, count) => {
    rec.dispatch(full ? SAMPLE_FULL : SAMPLE_TOPK, {
      buffers: [a.logits, a.out],
      params: sampleParams(offset, count, a.V, k, a.temperature, a.topP, a.topK === 0, a.random),
      workgroups: [count],
    });
  });
}
