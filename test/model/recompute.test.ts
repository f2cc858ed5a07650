import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelConfig } from '../../src/model/config';
import { LoraAdapter, defaultLoraConfig } from '../../src/model/lora';
import { bucketSize } from '../../src/gpu/bufferPool';
import { DEFAULT_MEMORY_BUDGET_BYTES, estimateLoraJobMemory } from '../../src/model/memoryEstimate';
import { buildRandomModel, randomBatch } from '../../src/model/randomModel';
import { CausalLM } from '../../src/model/transformer';
import { resolveHyperparameters } from '../../src/train/hyperparameters';
import { describeKeptLayers, keptLayersOf } from '../../src/train/keptLayers';
import { Trainer } from '../../src/train/trainer';
import { getTestGpu } from '../helpers/gpu';
import { patternExamples } from '../helpers/model';

// tiny-llama's shapes with 5 layers, so that a budget can hold some layers' activations but not all.
const raw = JSON.parse(readFileSync(join(__dirname, '../fixtures/models/tiny-llama/config.json'), 'utf8')) as Record<string, unknown>;
const config = parseModelConfig({ ...raw, num_hidden_layers: 5 });
const made: CausalLM[] = [];
afterAll(() => made.forEach((m) => m.destroy()));

/**
 * A random f32 model of `cfg`, an r = 4 adapter on it with random B (B is zero after
 * initialisation; random B makes every gradient depend on the activations), a batch of B x T, and
 * the memory estimate's shape of that job.
 */
async function randomJob(cfg: ModelConfig, B: number, T: number, dropout = 0) {
  const gpu = await getTestGpu();
  const model = new CausalLM(gpu, cfg, await buildRandomModel(gpu, cfg, { dtype: 'f32', seed: 3 }));
  made.push(model);
  const loraConfig = defaultLoraConfig(cfg, { r: 4, alpha: 8, dropout });
  const adapter = new LoraAdapter(gpu, cfg, model.weights, loraConfig);
  adapter.initialize(7);
  for (const m of adapter.modules.values()) adapter.write(m.b, Float32Array.from({ length: m.b.n }, (_, i) => Math.sin(i + m.b.offset)));
  const shape = { batch: B, seq: T, rank: 4, dtype: 'f32' as const, targetModules: loraConfig.targetModules, maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize };
  return { gpu, model, adapter, batch: randomBatch(cfg, B, T, 5), shape };
}

describe("recompute 'auto' under a budget that holds some layers' activations", () => {
  it('keeps the first layers, recomputes the rest, and gives the same gradients bit for bit', async () => {
    const [B, T] = [2, 24];
    const { model, adapter, batch, shape } = await randomJob(config, B, T, 0.1);
    const never = estimateLoraJobMemory(config, { ...shape, recompute: 'never' });
    const grads = new Map<string, Map<string, Float32Array>>();
    for (const [label, policy, budget, kept] of [
      ['never', 'never', undefined, 5],
      ['partial', 'auto', never.totalBytes - 1, 3],
      ['always', 'always', undefined, 0],
    ] as const) {
      model.recompute = policy;
      if (budget !== undefined) model.memoryBudgetBytes = budget;
      expect(model.keptLayers(B, T, adapter), label).toBe(kept);
      await model.forwardBackward(batch, adapter, { gradScale: 1 / (B * T), accumulate: false, dropoutSeed: 11 });
      grads.set(label, await adapter.readGradients());
    }
    for (const [key, g] of grads.get('never')!) {
      expect(Array.from(grads.get('partial')!.get(key)!), key).toEqual(Array.from(g));
      expect(Array.from(grads.get('always')!.get(key)!), key).toEqual(Array.from(g));
    }
    adapter.destroy();
  });
});

describe('every vocabulary chunk\'s logits kept when the whole job fits the budget', () => {
  it('skips recomputing the head in the backward and gives the same loss and gradients bit for bit', async () => {
    // Three vocabulary chunks (8192, 8192 and 96 columns): two to recompute in the backward, or keep.
    const wide = parseModelConfig({ ...raw, vocab_size: 2 * 8192 + 96 });
    const [B, T] = [1, 16];
    const { gpu, model, adapter, batch, shape } = await randomJob(wide, B, T);
    const kept = estimateLoraJobMemory(wide, { ...shape, recompute: 'auto' });
    const layersOnly = estimateLoraJobMemory(wide, { ...shape, recompute: 'auto', budgetBytes: kept.totalBytes - 1 });
    expect(kept.keptLogits).toBe(true);
    expect(layersOnly.keptLogits).toBe(false);
    expect(layersOnly.keptLayers).toBe(wide.layers);
    expect(kept.totalBytes - layersOnly.totalBytes).toBe(2 * bucketSize(B * T * 8192 * 4));
    expect(estimateLoraJobMemory(wide, { ...shape, recompute: 'always' }).keptLogits).toBe(false);
    const runs = new Map<string, { loss: number; dispatches: number; grads: Map<string, Float32Array> }>();
    for (const [label, policy, budget, keepsLogits] of [
      ['kept', 'auto', DEFAULT_MEMORY_BUDGET_BYTES, true],
      ['layers only', 'auto', kept.totalBytes - 1, false],
      ['always', 'always', DEFAULT_MEMORY_BUDGET_BYTES, false],
    ] as const) {
      model.recompute = policy;
      model.memoryBudgetBytes = budget;
      expect(model.keepsLogits(B, T, adapter), label).toBe(keepsLogits);
      await gpu.sync();
      gpu.resetCounters();
      const totals = (await model.forwardBackward(batch, adapter, { gradScale: 1 / (B * T), accumulate: false }))!;
      runs.set(label, { loss: totals.lossSum, dispatches: gpu.counters.dispatches, grads: await adapter.readGradients() });
    }
    const [k, l, a] = [runs.get('kept')!, runs.get('layers only')!, runs.get('always')!];
    // The two chunks before the last are not recomputed: two head matmuls fewer.
    expect(l.dispatches - k.dispatches).toBe(2);
    expect(l.loss).toBe(k.loss);
    expect(a.loss).toBe(k.loss);
    for (const [key, g] of k.grads) {
      expect(Array.from(l.grads.get(key)!), key).toEqual(Array.from(g));
      expect(Array.from(a.grads.get(key)!), key).toEqual(Array.from(g));
    }
    adapter.destroy();
  });
});

describe('a trainer under a budget that holds some layers', () => {
  it('keeps that many layers in every step, records the count, and restores it from a checkpoint', async () => {
    const gpu = await getTestGpu();
    const model = new CausalLM(gpu, config, await buildRandomModel(gpu, config, { dtype: 'f32', seed: 3 }));
    made.push(model);
    const train = patternExamples(4, 23, config.vocabSize);
    const hp = resolveHyperparameters({ seed: 7, warmupSteps: 0, loraDropout: 0, maxSeqLen: 24, epochs: 1, batchSize: 2, loraR: 4 }, train.length, { model: config });
    const shape = { batch: 2, seq: 24, rank: 4, dtype: 'f32' as const, targetModules: hp.lora.targetModules, maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize };
    model.memoryBudgetBytes = estimateLoraJobMemory(config, { ...shape, recompute: 'never' }).totalBytes - 1;
    const trainer = new Trainer({ model, hyperparameters: hp, train });
    expect(trainer.keptLayers).toBe(3);
    expect(trainer.recompute).toBe('always');
    const keptInSteps: number[] = [];
    const done = await new Trainer({
      model,
      hyperparameters: hp,
      train,
      onStep: () => keptInSteps.push(model.keptLayers(2, 24, null)),
    }).run();
    expect(keptInSteps.length).toBeGreaterThan(0);
    expect(new Set(keptInSteps)).toEqual(new Set([3]));
    expect(done.state.keptLayers).toBe(3);
    expect(model.pinnedKeptLayers).toBe(null); // the model's own choice is back after the run
    // A restored checkpoint's count wins over what this trainer resolved.
    model.memoryBudgetBytes = Number.MAX_SAFE_INTEGER;
    const resumed = new Trainer({ model, hyperparameters: hp, train });
    expect(resumed.keptLayers).toBe(5);
    await resumed.restore(done.checkpoint.bytes);
    expect(resumed.keptLayers).toBe(3);
    trainer.destroy();
    resumed.destroy();
  });

  it('reads checkpoints from before the count was recorded by their policy, and says what it keeps', () => {
    expect(keptLayersOf({ keptLayers: 3, recompute: 'always' }, 5)).toBe(3);
    expect(keptLayersOf({ recompute: 'never' }, 5)).toBe(5);
    expect(keptLayersOf({ recompute: 'always' }, 5)).toBe(0);
    expect(keptLayersOf({}, 5)).toBe(null);
    expect(describeKeptLayers(5, 5)).toBe('kept for every layer (they fit the memory budget)');
    expect(describeKeptLayers(3, 5)).toBe('kept for 3 of 5 layers (what the memory budget holds), the other 2 recomputed in the backward');
    expect(describeKeptLayers(0, 5)).toBe('recomputed in the backward for every layer (the memory budget holds none)');
  });
});
