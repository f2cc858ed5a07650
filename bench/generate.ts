/**
 * `generate` suite: prefill and decode throughput of greedy generation (batch 1, KV cache) on
 * random-weight models, from the timings `generate` itself reports.
 */
import type { Gpu } from '../src/gpu';
import { generate } from '../src/model/generate';
import { CausalLM } from '../src/model/transformer';
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

export async function benchGenerate(gpu: Gpu, opts: GenerateBenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const spec of opts.models) {
    const named = namedModel(spec.name, spec.layers);
    const { config } = named;
    opts.log(`generate: building ${named.label} (${opts.dtype})`);
    const model = new CausalLM(gpu, config, await buildRandomModel(gpu, config, { dtype: opts.dtype, seed: 1 }));
    try {
      const rng = new Rng(3);
      const prompt = Array.from({ length: opts.prompt }, () => rng.int(config.vocabSize));
      // Random weights pick arbitrary tokens: no EOS, so every run decodes the same count.
      const run = () => generate(model, [prompt], null, { maxNewTokens: opts.newTokens, eosTokenIds: [] });
      opts.log(`generate: ${named.label}: warm-up run (compiles pipelines)`);
      await run();
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
        name: `${named.label} prefill ${opts.prompt} tokens, ${opts.dtype}`,
        ms: prefillMs,
        tokensPerSecond: (opts.prompt / prefillMs) * 1000,
        peakBytes,
        note: `batch 1; time to the first generated token; median of ${opts.reps}`,
      });
      rows.push({
        suite: 'generate',
        name: `${named.label} decode ${opts.newTokens} tokens, ${opts.dtype}`,
        ms: median(decodeMsPerToken),
        tokensPerSecond: 1000 / median(decodeMsPerToken),
        peakBytes,
        note: `batch 1, greedy, KV cache; ms per token; median of ${opts.reps}`,
      });
    } finally {
      model.destroy();
      gpu.pool.trim();
    }
  }
  return rows;
}
