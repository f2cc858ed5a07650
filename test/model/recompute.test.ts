import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/model/config';
import { LoraAdapter, defaultLoraConfig } from '../../src/model/lora';
import { estimateLoraJobMemory } from '../../src/model/memoryEstimate';
import { buildRandomModel, randomBatch } from '../../src/model/randomModel';
import { CausalLM } from '../../src/model/transformer';
import { getTestGpu } from '../helpers/gpu';

// tiny-llama's shapes with 5 layers, so that a budget can hold some layers' activations but not all.
const raw = JSON.parse(readFileSync(join(__dirname, '../fixtures/models/tiny-llama/config.json'), 'utf8')) as Record<string, unknown>;
const config = parseModelConfig({ ...raw, num_hidden_layers: 5 });
const made: CausalLM[] = [];
afterAll(() => made.forEach((m) => m.destroy()));

describe("recompute 'auto' under a budget that holds some layers' activations", () => {
  it('keeps the first layers, recomputes the rest, and gives the same gradients bit for bit', async () => {
    const gpu = await getTestGpu();
    const [B, T] = [2, 24];
    const model = new CausalLM(gpu, config, await buildRandomModel(gpu, config, { dtype: 'f32', seed: 3 }));
    made.push(model);
    const loraConfig = defaultLoraConfig(config, { r: 4, alpha: 8, dropout: 0.1 });
    const adapter = new LoraAdapter(gpu, config, model.weights, loraConfig);
    adapter.initialize(7);
    // B is zero after initialisation; random B makes every gradient depend on the activations.
    for (const m of adapter.modules.values()) adapter.write(m.b, Float32Array.from({ length: m.b.n }, (_, i) => Math.sin(i + m.b.offset)));
    const batch = randomBatch(config, B, T, 5);
    const shape = { batch: B, seq: T, rank: 4, dtype: 'f32' as const, targetModules: loraConfig.targetModules, maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize };
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
