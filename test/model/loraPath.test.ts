/**
 * Both LoRA linear paths (fused loraLinear, unfused matmul + matmul) against the PyTorch golden
 * files, whichever one this adapter picks by default, and the LM head's backward over several
 * vocabulary chunks (the last chunk's forward logits are reused, the others recomputed).
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { KernelPlan } from '../../src/gpu';
import { buildRandomModel, randomBatch } from '../../src/model/randomModel';
import { nodeModelDir } from '../../src/formats/nodeByteSource';
import { parseModelConfig } from '../../src/model/config';
import { LoraAdapter, defaultLoraConfig } from '../../src/model/lora';
import { loadCausalLM, type LoadedModel } from '../../src/model/load';
import { CausalLM, defaultLoraLinearPath, type LoraLinearPath } from '../../src/model/transformer';
import { Rng } from '../../src/selftest/compare';
import { expectClose } from '../helpers/compare';
import { getTestGpu } from '../helpers/gpu';
import { FIXTURES, readGolden } from './golden';

describe('defaultLoraLinearPath', () => {
  // Which adapters get which plan is tested with acquireGpu (test/gpu/runtime.test.ts).
  it('gives the CPU kernel plan the unfused path and the GPU plan the fused kernel', async () => {
    const gpu = await getTestGpu();
    const as = (kernels: KernelPlan) => defaultLoraLinearPath({ ...gpu, kernels } as typeof gpu);
    expect(as('cpu')).toBe('unfused');
    expect(as('gpu')).toBe('fused');
  });
});

// tiny-gpt2 has biases (fused kernel's bias path vs the base matmul's); tiny-llama has none.
describe.each(['tiny-llama', 'tiny-gpt2'])('%s LoRA paths against the golden file', (name) => {
  const opened: LoadedModel[] = [];
  afterAll(() => {
    for (const m of opened) m.model.destroy();
  });

  it.each(['fused', 'unfused'] as LoraLinearPath[])('%s: LoRA logits, loss and gradients within 1e-4', async (path) => {
    const gpu = await getTestGpu();
    const dir = await nodeModelDir(join(FIXTURES, 'models', name));
    const loaded = await loadCausalLM(gpu, dir, { dtype: 'f32' }).finally(() => dir.close?.());
    opened.push(loaded);
    loaded.model.loraLinearPath = path;
    const golden = await readGolden(name);
    const [B, T] = golden.shape('tokens') as [number, number];
    const adapter = new LoraAdapter(gpu, loaded.config, loaded.model.weights, defaultLoraConfig(loaded.config, {
      r: Number(golden.metadata.rank),
      alpha: Number(golden.metadata.alpha),
    }));
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const n of golden.names) if (n.startsWith('base_model.')) tensors.set(n, { shape: [...golden.shape(n)], data: await golden.f32(n) });
    adapter.loadTensors((n) => tensors.get(n));
    const tokens = Uint32Array.from(await golden.i32('tokens'));
    expectClose(await loaded.model.logits(tokens, B, T, adapter), await golden.f32('lora_logits'), 1e-4, `${name} ${path} LoRA logits`);
    const batch = { B, T, tokens, targets: Uint32Array.from(await golden.i32('targets')), mask: await golden.f32('mask') };
    const trained = batch.mask.reduce((s, m) => s + m, 0);
    const totals = (await loaded.model.forwardBackward(batch, adapter, { gradScale: 1 / trained, accumulate: false }))!;
    const loss = (await golden.f32('loss'))[0]!;
    expect(Math.abs(totals.lossSum / totals.tokens - loss)).toBeLessThan(1e-4 * Math.abs(loss));
    for (const [key, got] of await adapter.readGradients()) expectClose(got, await golden.f32(`grad.${key}`), 1e-4, `${name} ${path} grad ${key}`);
    adapter.destroy();
  });
});

describe('LM head backward over several vocabulary chunks', () => {
  it('gives the loss and LoRA gradients of the one-chunk head (sharded head, 3 chunks)', async () => {
    const gpu = await getTestGpu();
    const config = parseModelConfig({
      model_type: 'llama', vocab_size: 330, hidden_size: 48, intermediate_size: 88, num_hidden_layers: 2,
      num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: false,
    });
    const whole = new CausalLM(gpu, config, await buildRandomModel(gpu, config, { dtype: 'f32', seed: 9 }));
    // 48 f32 per row: 128 rows per shard, so the head is 3 shards = 3 chunks (128, 128, 74 rows).
    const sharded = new CausalLM(gpu, config, await buildRandomModel(gpu, config, { dtype: 'f32', seed: 9, maxBindingBytes: 128 * 192 }));
    expect(sharded.weights.head).toHaveLength(3);
    // Non-zero A and B, so every gradient depends on dL/dhF, the sum over the chunks.
    const rng = new Rng(3);
    const make = (model: CausalLM) => {
      const adapter = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: 4, alpha: 8 }));
      adapter.initialize(1);
      return adapter;
    };
    const a1 = make(whole);
    const values = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [n, t] of await a1.readTensors()) values.set(n, { shape: t.shape, data: rng.f32(t.data.length, -0.2, 0.2) });
    a1.loadTensors((n) => values.get(n));
    const a2 = make(sharded);
    a2.loadTensors((n) => values.get(n));
    const batch = randomBatch(config, 2, 9, 4);
    const t1 = (await whole.forwardBackward(batch, a1, { gradScale: 1 / 18, accumulate: false }))!;
    const t2 = (await sharded.forwardBackward(batch, a2, { gradScale: 1 / 18, accumulate: false }))!;
    expect(Math.abs(t2.lossSum - t1.lossSum)).toBeLessThan(1e-5 * Math.abs(t1.lossSum));
    const g1 = await a1.readGradients();
    const g2 = await a2.readGradients();
    expect(g2.size).toBe(g1.size);
    for (const [key, g] of g1) {
      expect(g.some((x) => x !== 0), key).toBe(true);
      expectClose(g2.get(key)!, g, 1e-5, `grad ${key}`);
    }
    for (const x of [a1, a2]) x.destroy();
    whole.destroy();
    sharded.destroy();
  });
});

describe('LoRA paths with dropout', () => {
  it('fused and unfused give the same loss and LoRA gradients with dropout on (same masks)', async () => {
    const gpu = await getTestGpu();
    const config = parseModelConfig({
      model_type: 'qwen2', vocab_size: 200, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2,
      num_attention_heads: 4, num_key_value_heads: 1, max_position_embeddings: 64, tie_word_embeddings: true,
    });
    const model = new CausalLM(gpu, config, await buildRandomModel(gpu, config, { dtype: 'f32', seed: 5 }));
    const adapter = new LoraAdapter(gpu, config, model.weights, { ...defaultLoraConfig(config, { r: 4, alpha: 8 }), dropout: 0.25 });
    adapter.initialize(2);
    const rng = new Rng(8);
    const values = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [n, t] of await adapter.readTensors()) values.set(n, { shape: t.shape, data: rng.f32(t.data.length, -0.2, 0.2) });
    adapter.loadTensors((n) => values.get(n));
    const batch = randomBatch(config, 2, 7, 6);
    const run = async (path: LoraLinearPath) => {
      model.loraLinearPath = path;
      const totals = (await model.forwardBackward(batch, adapter, { gradScale: 1 / 14, accumulate: false, dropoutSeed: 77 }))!;
      return { loss: totals.lossSum, grads: await adapter.readGradients() };
    };
    const fused = await run('fused');
    const unfused = await run('unfused');
    // Without dropout the loss would differ: the check that the masks are really applied.
    model.loraLinearPath = 'unfused';
    const plain = (await model.forwardBackward(batch, adapter, { gradScale: 1 / 14, accumulate: false }))!.lossSum;
    expect(Math.abs(plain - fused.loss)).toBeGreaterThan(1e-4 * Math.abs(fused.loss));
    expect(Math.abs(unfused.loss - fused.loss)).toBeLessThan(1e-5 * Math.abs(fused.loss));
    for (const [key, g] of fused.grads) expectClose(unfused.grads.get(key)!, g, 1e-5, `grad ${key}`);
    adapter.destroy();
    model.destroy();
  });
});
