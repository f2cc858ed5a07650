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
  /** Only the per-token counts of a dry run (no timed runs): cheap for full-size models. */
  dryRun?: boolean;
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

/** Decode steps counted per model (after the prefill and one decode step). */
const COUNTED_TOKENS = 8;

interface TokenCounts {
  dispatchesPerToken: number;
  bindGroupsPerToken: number;
  submitsPerToken: number;
  encodeMsPerToken: number;
}

/**
 * The CPU side of one decoded token as `generate` runs it (the token's forward pass and its
 * sampling): dispatches, submits, bind groups created and the process CPU time to record (or
 * replay) and encode the step, medians over COUNTED_TOKENS tokens of a dry run (nothing
 * submitted, so it is cheap for any model; the ids read back are zeros).
 */
async function decodeStepCounts(gpu: Gpu, model: CausalLM, prompt: number[]): Promise<TokenCounts> {
  const steps: TokenCounts[] = [];
  let cpu = process.cpuUsage();
  gpu.dryRun = true;
  try {
    gpu.resetCounters();
    // onToken(step) follows the read of token `step`; from the previous call to it runs one
    // decode step (step 1: the first, which records; later ones are the counted tokens).
    const onToken = (_: unknown, step: number) => {
      const used = process.cpuUsage(cpu);
      const c = gpu.counters;
      if (step >= 2) steps.push({ dispatchesPerToken: c.dispatches, bindGroupsPerToken: c.bindGroups, submitsPerToken: c.submits, encodeMsPerToken: (used.user + used.system) / 1000 });
      gpu.resetCounters();
      cpu = process.cpuUsage();
    };
    await generate(model, [prompt], null, { maxNewTokens: COUNTED_TOKENS + 2, eosTokenIds: [], onToken });
  } finally {
    gpu.dryRun = false;
  }
  const med = (f: (x: TokenCounts) => number) => median(steps.map(f));
  return {
    dispatchesPerToken: med((x) => x.dispatchesPerToken),
    bindGroupsPerToken: med((x) => x.bindGroupsPerToken),
    submitsPerToken: med((x) => x.submitsPerToken),
    encodeMsPerToken: med((x) => x.encodeMsPerToken),
  };
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
      if (!opts.dryRun) {
        opts.log(`generate: ${named.label}: warm-up run (compiles pipelines)`);
        await run();
      }
      const counts = await decodeStepCounts(gpu, model, prompt);
      const countsNote = `per token (median of ${COUNTED_TOKENS}, dry run): ${counts.submitsPerToken} submits, ${counts.bindGroupsPerToken} new bind groups, encode = process CPU ms`;
      opts.log(`generate: ${named.label}: per decoded token ${counts.dispatchesPerToken} dispatches, ${counts.submitsPerToken} submits, ${counts.bindGroupsPerToken} new bind groups, ${counts.encodeMsPerToken.toFixed(2)} ms CPU to record and encode`);
      if (opts.dryRun) {
        rows.push({
          suite: 'generate',
          name: names.decode,
          ms: NaN,
          dispatchesPerToken: counts.dispatchesPerToken,
          encodeMsPerToken: counts.encodeMsPerToken,
          note: `dry run (recorded and encoded, never submitted), batch 1, greedy, KV cache; ${countsNote}`,
        });
        continue;
      }
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
        note: `batch 1, greedy, KV cache; ms per token; median of ${opts.reps}; ${countsNote}`,
      });
    } finally {
      model.destroy();
      gpu.pool.trim();
    }
  }
  return rows;
}
