import type { Recorder } from '../gpu';
import { applyRepetitionPenalty, checkUniforms, sampleRows } from '../kernels/sampling';
import { Rng } from '../util/random';
import type { LoraAdapter } from './lora';
import { KvCache, type StepTail } from './kvCache';
import type { CausalLM } from './transformer';

export interface GenerateOptions {
  maxNewTokens: number;
  /** <= 0: greedy. */
  temperature?: number;
  /** 0: off. */
  topK?: number;
  /** >= 1: off. */
  topP?: number;
  /** HF's repetition_penalty over the prompt and everything generated; 1: off. */
  repetitionPenalty?: number;
  /** Seed of the sampling draws: same seed, same text. */
  seed?: number;
  /** Ids that end a sequence (not included in the output). */
  eosTokenIds?: readonly number[];
  /**
   * Called after each step with the new id of every sequence still running (undefined for finished
   * ones). Return true to stop (stop strings are checked by the caller, which can decode).
   */
  onToken?: (ids: (number | undefined)[], step: number) => boolean | void;
  /** Aborts between steps. */
  signal?: AbortSignal;
}

export interface GenerateResult {
  /** Generated ids per sequence, without the prompt and without the EOS. */
  tokens: number[][];
  /** Why each sequence stopped ('context': the model's context filled before maxNewTokens). */
  finish: ('eos' | 'length' | 'context' | 'stopped')[];
  prefillMs: number;
  decodeMs: number;
  /** Decoded tokens per second over all sequences (after the prompt). */
  tokensPerSecond: number;
}

/**
 * Autoregressive generation with a KV cache: one prefill over the prompts, then one token per
 * sequence per step, sampled on the GPU so only B ids come back each step. A step (the token's
 * forward pass and its sampling) is recorded once and replayed: what changes per token (the fed
 * ids, the position, the draws' numbers, the penalised ids) is written to buffers. Prompts of a batch
 * must have the same length. The adapter, when given, is applied unmerged, so base and
 * fine-tuned generation share one copy of the base weights.
 */
export async function generate(model: CausalLM, prompts: readonly (readonly number[])[], adapter: LoraAdapter | null, options: GenerateOptions): Promise<GenerateResult> {
  const gpu = model.gpu;
  const B = prompts.length;
  if (B === 0) throw new Error('generate: no prompts');
  const T0 = prompts[0]!.length;
  if (T0 === 0) throw new Error('generate: empty prompt');
  if (prompts.some((p) => p.length !== T0)) throw new Error('generate: prompts of one batch must have the same length');
  const V = model.config.vocabSize;
  const maxNew = Math.max(0, Math.min(options.maxNewTokens, model.config.maxPositions - T0));
  const eos = new Set(options.eosTokenIds ?? model.config.eosTokenIds);
  const rng = new Rng(options.seed ?? 0);
  const penalty = options.repetitionPenalty ?? 1;
  const settings = { temperature: options.temperature ?? 0, topK: options.topK ?? 0, topP: options.topP ?? 1 };

  const capacity = T0 + Math.max(maxNew, 1);
  const kv = new KvCache(gpu, model.config, B, capacity);
  const logits = gpu.createBuffer(B * V * 4, 'gen-logits');
  const chosen = gpu.createBuffer(B * 4, 'gen-ids');
  const random = gpu.createBuffer(B * 4, 'gen-random');
  // Each row's ids so far, padded to the capacity with ids the penalty skips (>= V).
  const seen = penalty !== 1 ? gpu.createBuffer(B * capacity * 4, 'gen-seen') : null;
  const history = prompts.map((p) => [...p]);
  const tokens: number[][] = prompts.map(() => []);
  const finish: GenerateResult['finish'] = prompts.map(() => (maxNew < options.maxNewTokens ? 'context' : 'length'));
  const running = prompts.map(() => true);
  const sample: StepTail = {
    key: `sample|${penalty}|${settings.temperature}|${settings.topK}|${settings.topP}`,
    record: (rec: Recorder) => {
      if (seen) applyRepetitionPenalty(gpu, rec, { logits, rows: B, V, ids: seen, idsPerRow: capacity, penalty });
      sampleRows(gpu, rec, { logits, rows: B, V, ...settings, out: chosen, random: { buffer: random } });
    },
  };
  // The step's per-token inputs of the sampling (the model's step writes its own).
  const writeSamplingInputs = () => {
    if (seen) {
      const packed = new Uint32Array(B * capacity).fill(0xffffffff);
      history.forEach((h, b) => packed.set(h, b * capacity));
      gpu.write(seen, packed);
    }
    const draws = Array.from({ length: B }, () => rng.next());
    checkUniforms(draws, B);
    gpu.write(random, Float32Array.from(draws));
  };
  try {
    const t0 = performance.now();
    writeSamplingInputs();
    model.forwardCached(Uint32Array.from(prompts.flat()), T0, kv, adapter, logits, sample);
    let tDecode = performance.now();
    let prefillMs = 0;
    let generated = 0;
    for (let step = 0; step < maxNew; step++) {
      if (options.signal?.aborted) break;
      const ids = await gpu.readU32(chosen, B);
      if (step === 0) {
        prefillMs = performance.now() - t0;
        tDecode = performance.now();
      }
      const report: (number | undefined)[] = [];
      for (let b = 0; b < B; b++) {
        const id = ids[b]!;
        history[b]!.push(id);
        if (!running[b]) {
          report.push(undefined);
          continue;
        }
        if (eos.has(id)) {
          running[b] = false;
          finish[b] = 'eos';
          report.push(undefined);
          continue;
        }
        tokens[b]!.push(id);
        generated++;
        report.push(id);
      }
      if (options.onToken?.(report, step) === true) {
        for (let b = 0; b < B; b++) if (running[b]) finish[b] = 'stopped';
        break;
      }
      if (!running.some(Boolean) || step === maxNew - 1) break;
      writeSamplingInputs();
      model.forwardCached(Uint32Array.from(ids), 1, kv, adapter, logits, sample);
    }
    if (options.signal?.aborted) for (let b = 0; b < B; b++) if (running[b]) finish[b] = 'stopped';
    const decodeMs = performance.now() - tDecode;
    return { tokens, finish, prefillMs, decodeMs, tokensPerSecond: decodeMs > 0 ? (generated / decodeMs) * 1000 : 0 };
  } finally {
    kv.destroy();
    gpu.release(logits);
    gpu.release(chosen);
    gpu.release(random);
    if (seen) gpu.release(seen);
  }
}
