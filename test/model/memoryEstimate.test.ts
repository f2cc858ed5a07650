// The config-only GPU memory estimate (src/model/memoryEstimate.ts), and its agreement with the
// peak of a real training step on every test model (`whittle info --measure`). The measured
// figure is the buffer pool's own byte accounting: WebGPU reports no driver memory.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { bucketSize } from '../../src/gpu/bufferPool';
import { parseModelConfig } from '../../src/model/config';
import { estimateLoraJobMemory, type MemoryEstimate } from '../../src/model/memoryEstimate';
import { runCli } from '../cli/run';

const MODELS = join(__dirname, '..', 'fixtures', 'models');
const rawConfig = (name: string) => JSON.parse(readFileSync(join(MODELS, name, 'config.json'), 'utf8')) as Record<string, unknown>;
const config = (name: string) => parseModelConfig(rawConfig(name));

describe('estimateLoraJobMemory', () => {
  it('scales the weights with the dtype and the activations with the tokens', () => {
    const llama = config('tiny-llama');
    const base = { batch: 2, seq: 64, rank: 8, targetModules: ['q_proj', 'v_proj'] };
    const f16 = estimateLoraJobMemory(llama, { ...base, dtype: 'f16' });
    const f32 = estimateLoraJobMemory(llama, { ...base, dtype: 'f32' });
    expect(f32.weightsBytes).toBeGreaterThan(1.8 * f16.weightsBytes);
    const twice = estimateLoraJobMemory(llama, { ...base, dtype: 'f16', batch: 4 });
    expect(twice.residualBytes).toBe(2 * f16.residualBytes);
    expect(twice.loraBytes).toBe(f16.loraBytes);
  });

  it('counts LoRA parameters per targeted module, GPT-2 c_proj in attention and MLP both', () => {
    const gpt2 = config('tiny-gpt2');
    const C = gpt2.hidden;
    const I = gpt2.intermediate;
    const r = 4;
    const e = estimateLoraJobMemory(gpt2, { batch: 1, seq: 16, rank: r, dtype: 'f32', targetModules: ['c_proj'] });
    // Per layer: attention c_proj (C -> C) and MLP c_proj (I -> C), A is r x in, B is out x r.
    expect(e.loraParameters).toBe(gpt2.layers * (r * C + C * r + r * I + C * r));
    // A, B, their gradients and two AdamW moments, each rounded to the pool's bucket.
    const perLayer = 4 * (bucketSize(4 * r * C) + bucketSize(4 * C * r) + bucketSize(4 * r * I) + bucketSize(4 * C * r));
    expect(e.loraBytes).toBe(gpt2.layers * perLayer);
    expect(e.residualBytes).toBe((gpt2.layers + 1) * bucketSize(16 * C * 4));
  });

  it('no target module means no adapter, no optimizer scratch, and the parts add up to the total', () => {
    const llama = config('tiny-llama');
    const e = estimateLoraJobMemory(llama, { batch: 1, seq: 8, rank: 4, dtype: 'f16', targetModules: [] });
    expect(e.loraParameters).toBe(0);
    expect(e.loraBytes).toBe(0);
    expect(e.optimizerScratchBytes).toBe(0);
    expect(e.totalBytes).toBe(e.weightsBytes + e.residualBytes + e.layerScratchBytes + e.keptActivationsBytes + e.logitsBytes + e.kernelParamsBytes);
  });
});

describe('estimateLoraJobMemory: keep or recompute activations', () => {
  const llama = config('tiny-llama');
  const shape = { batch: 2, seq: 64, rank: 8, dtype: 'f16' as const, targetModules: ['q_proj', 'v_proj'] };

  it("'never' keeps every layer's activations, 'always' one layer's, 'auto' as many as the budget holds", () => {
    const always = estimateLoraJobMemory(llama, { ...shape, recompute: 'always' });
    const never = estimateLoraJobMemory(llama, { ...shape, recompute: 'never' });
    expect(always.recompute).toBe('always');
    expect(always.keptActivationsBytes).toBe(0);
    expect(never.recompute).toBe('never');
    expect(never.keptActivationsBytes).toBeGreaterThan(0);
    expect(never.totalBytes - always.totalBytes).toBe(never.keptActivationsBytes);
    // Kept activations grow with the tokens, like the residuals.
    const twice = estimateLoraJobMemory(llama, { ...shape, batch: 4, recompute: 'never' });
    expect(twice.keptActivationsBytes).toBeGreaterThan(1.9 * never.keptActivationsBytes);
    expect(estimateLoraJobMemory(llama, { ...shape, budgetBytes: never.totalBytes })).toEqual(never);
    expect(never.keptLayers).toBe(llama.layers);
    expect(always.keptLayers).toBe(0);
    expect(estimateLoraJobMemory(llama, { ...shape, budgetBytes: always.totalBytes })).toEqual(always);
    // Short of keeping all: every layer but two (L - 1 kept sets cost as much as keeping all L,
    // since the recomputed layers share one set), recomputing the other two.
    const set = never.keptActivationsBytes / (llama.layers - 1);
    const partial = estimateLoraJobMemory(llama, { ...shape, budgetBytes: never.totalBytes - 1 });
    expect(partial.recompute).toBe('always');
    expect(partial.keptLayers).toBe(llama.layers - 2);
    expect(partial.keptActivationsBytes).toBe((llama.layers - 2) * set);
    expect(partial.totalBytes).toBe(always.totalBytes + partial.keptActivationsBytes);
    // With five layers, one more set than 'always' keeps one layer (three recomputed into the shared set).
    const five = parseModelConfig({ ...rawConfig('tiny-llama'), num_hidden_layers: 5 });
    const always5 = estimateLoraJobMemory(five, { ...shape, recompute: 'always' });
    const set5 = estimateLoraJobMemory(five, { ...shape, recompute: 'never' }).keptActivationsBytes / 4;
    expect(estimateLoraJobMemory(five, { ...shape, budgetBytes: always5.totalBytes + set5 }).keptLayers).toBe(1);
    expect(estimateLoraJobMemory(five, { ...shape, budgetBytes: always5.totalBytes + 3 * set5 - 1 }).keptLayers).toBe(2);
    // The default budget holds a tiny model's activations.
    expect(estimateLoraJobMemory(llama, shape).recompute).toBe('never');
  });
});

// Two shapes per model: a short f32 one and a longer f16 one with more of the batch in flight.
const SHAPES = [
  { batch: 1, seq: 16, rank: 4, dtype: 'f32' },
  { batch: 4, seq: 64, rank: 8, dtype: 'f16' },
] as const;
const CASES = readdirSync(MODELS).flatMap((name) => SHAPES.map((shape) => ({ name, ...shape })));

describe('the estimate against a measured training step', () => {
  it('covers every test model', () => {
    expect(new Set(CASES.map((c) => c.name))).toEqual(new Set(['tiny-llama', 'tiny-qwen2', 'tiny-gpt2']));
  });

  it.each(CASES)('$name, batch $batch x seq $seq, rank $rank, $dtype weights: the pool peak is within 10%', async ({ name, batch, seq, rank, dtype }) => {
    const run = await runCli(['info', join(MODELS, name), '--json', '--measure', '--batch', `${batch}`, '--seq', `${seq}`, '--rank', `${rank}`, '--dtype', dtype]);
    expect(run.code, run.stderr).toBe(0);
    const info = JSON.parse(run.stdout) as { job: { seq: number }; estimate: MemoryEstimate; measured: { peakBytes: number; loss: number } };
    expect(info.job.seq).toBe(seq);
    expect(Number.isFinite(info.measured.loss)).toBe(true);
    const ratio = info.measured.peakBytes / info.estimate.totalBytes;
    expect(ratio, `measured ${info.measured.peakBytes} bytes, estimated ${info.estimate.totalBytes}`).toBeGreaterThan(0.9);
    expect(ratio, `measured ${info.measured.peakBytes} bytes, estimated ${info.estimate.totalBytes}`).toBeLessThan(1.1);
  });
});
