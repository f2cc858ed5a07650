/**
 * `generate` suite: prefill and decode throughput of greedy generation (batch 1, KV cache) on
 * random-weight models, from the timings `generate` itself reports.
 */
import type { Gpu } from '../src/gpu';
import { generate } from '../src/model/generate';
import { CausalLM, KvCache } from '../src/model/transformer';
import type { WeightDtype } from '../src/model/weights';
import { Rng } from '../src/util/random';
import { buildRandomModel } from '../src/model/randomModel';
import { namedModel } from './synthetic';
import { median, type BenchRow } from '../src/bench/table';
import type { ModelSpec } from './train';

export interface GenerateBenchOptions {
  models: ModelSpec[];
  dtype: WeightDtype;
  /** Prompt tokens (prefill). */
  prompt: number;
  /** Tokens decoded after the prompt. */
  newTokens: number;
  /** Timed runs per model (median reported), after one untimed warm-up run. */
  reps: number;
  log: (msg: string) => void;
}

/** The prompt a generate case feeds the model: `n` tokens drawn from a fixed seed. */
export function generatePrompt(vocabSize: number, n: number): number[] {
  const rng = new Rng(3);
  return Array.from({ length: n }, () => rng.int(vocabSize));
}

/** The prefill and decode rows' names (the keys the PyTorch peers' results come back under). */
export function generateRowNames(label: string, prompt: number, newTokens: number, dtype: WeightDtype): { prefill: string; decode: string } {
  return { prefill: `${label} prefill ${prompt} tokens, ${dtype}`, decode: `${label} decode ${newTokens} tokens, ${dtype}` };
}

/** Decode steps counted per model (after one warm-up step). */
const COUNTED_TOKENS = 8;

/**
 * The CPU side of one decoded token: dispatches, bind groups created and the process CPU time
 * to record and encode the token's forward pass, measured in a dry run (nothing submitted, so
 * it is cheap for any model) on a KV cache that already holds the prompt.
 */
function decodeStepCounts(gpu: Gpu, model: CausalLM, prompt: number[]): { dispatchesPerToken: number; bindGroupsPerToken: number; encodeMsPerToken: number } {
  const { config } = model;
  const kv = new KvCache(gpu, config, 1, prompt.length + COUNTED_TOKENS + 1);
  const logits = gpu.createBuffer(config.vocabSize * 4, 'bench-logits');
  gpu.dryRun = true;
  try {
    model.forwardCached(Uint32Array.from(prompt), prompt.length, kv, null, logits);
    model.forwardCached(Uint32Array.of(1), 1, kv, null, logits);
    gpu.resetCounters();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < COUNTED_TOKENS; i++) model.forwardCached(Uint32Array.of(2 + i), 1, kv, null, logits);
    const cpu = process.cpuUsage(cpu0);
    return {
      dispatchesPerToken: gpu.counters.dispatches / COUNTED_TOKENS,
      bindGroupsPerToken: gpu.counters.bindGroups / COUNTED_TOKENS,
      encodeMsPerToken: (cpu.user + cpu.system) / 1000 / COUNTED_TOKENS,
    };
  } finally {
    gpu.dryRun = false;
    kv.destroy();
    gpu.release(logits);
  }
}

export async function benchGenerate(gpu: Gpu, opts: GenerateBenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const spec of opts.models) {
    const named = namedModel(spec.name, spec.layers);
    const { config } = named;
    opts.log(`generate: building ${named.label} (${opts.dtype})`);
    const model = new CausalLM(gpu, config, await buildRandomModel(gpu, config, { dtype: opts.dtype, seed: 1 }));
    try {
      const prompt = generatePrompt(config.vocabSize, opts.prompt);
      const names = generateRowNames(named.label, opts.prompt, opts.newTokens, opts.dtype);
      // Random weights pick arbitrary tokens: no EOS, so every run decodes the same count.
      const run = () => generate(model, [prompt], null, { maxNewTokens: opts.newTokens, eosTokenIds: [] });
      opts.log(`generate: ${named.label}: warm-up run (compiles pipelines)`);
      await run();
      const counts = decodeStepCounts(gpu, model, prompt);
      opts.log(`generate: ${named.label}: per decoded token ${counts.dispatchesPerToken} dispatches, ${counts.bindGroupsPerToken} new bind groups, ${counts.encodeMsPerToken.toFixed(2)} ms CPU to record and encode`);
      gpu.pool.resetPeak();
      const prefill: number[] = [];
      const decodeMsPerToken: number[] = [];
      for (let i = 0; i < opts.reps; i++) {
        const r = await run();
        const decoded = r.tokens[0]!.length;
        if (decoded !== opts.newTokens) throw new Error(`${named.label}: decoded ${decoded} of ${opts.newTokens} tokens`);
        prefill.push(r.prefillMs);
        // prefillMs covers the prompt and the first token's sampling; decodeMs the other
        // decoded - 1 tokens (the result's tokensPerSecond divides all `decoded` by decodeMs).
        const msPerToken = r.decodeMs / Math.max(1, decoded - 1);
        decodeMsPerToken.push(msPerToken);
        opts.log(`generate: ${named.label}: prefill ${r.prefillMs.toFixed(0)} ms, decode ${(1000 / msPerToken).toFixed(1)} tokens/s`);
      }
      const prefillMs = median(prefill);
      const peakBytes = gpu.memory().peakBytes;
      rows.push({
        suite: 'generate',
        name: names.prefill,
        ms: prefillMs,
        tokensPerSecond: (opts.prompt / prefillMs) * 1000,
        peakBytes,
        note: `batch 1; time to the first generated token; median of ${opts.reps}`,
      });
      rows.push({
        suite: 'generate',
        name: names.decode,
        ms: median(decodeMsPerToken),
        tokensPerSecond: 1000 / median(decodeMsPerToken),
        peakBytes,
        dispatchesPerToken: counts.dispatchesPerToken,
        encodeMsPerToken: counts.encodeMsPerToken,
        note: `batch 1, greedy, KV cache; ms per token; median of ${opts.reps}; per token (dry run of ${COUNTED_TOKENS}): ${counts.bindGroupsPerToken} new bind groups, encode = process CPU ms`,
      });
    } finally {
      model.destroy();
      gpu.pool.trim();
    }
  }
  return rows;
}
