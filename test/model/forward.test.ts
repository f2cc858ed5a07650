import { afterAll, describe, expect, it } from 'vitest';
import { LoraAdapter, defaultLoraConfig } from '../../src/model/lora';
import type { LoadedModel } from '../../src/model/load';
import { expectClose } from '../helpers/compare';
import { expectReductionVariant, getTestGpu } from '../helpers/gpu';
import { openFixtureModel } from '../helpers/model';
import { readGolden } from './golden';

const MODELS = ['tiny-llama', 'tiny-qwen2', 'tiny-gpt2'];


/** The adapter the golden file was made with (rank and alpha from its metadata). */
async function goldenAdapter(loaded: LoadedModel, golden: Awaited<ReturnType<typeof readGolden>>): Promise<LoraAdapter> {
  const gpu = await getTestGpu();
  const adapter = new LoraAdapter(gpu, loaded.config, loaded.model.weights, defaultLoraConfig(loaded.config, {
    r: Number(golden.metadata.rank),
    alpha: Number(golden.metadata.alpha),
  }));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const name of golden.names) {
    if (!name.startsWith('base_model.')) continue;
    tensors.set(name, { shape: [...golden.shape(name)], data: await golden.f32(name) });
  }
  adapter.loadTensors((n) => tensors.get(n));
  return adapter;
}

describe.each(MODELS)('%s against the PyTorch golden file', (name) => {
  const opened: LoadedModel[] = [];
  afterAll(() => {
    for (const m of opened) m.model.destroy();
  });

  it('gives the same base and LoRA logits (f32 weights, 1e-4 relative)', async () => {
    const loaded = await openFixtureModel(name);
    opened.push(loaded);
    const golden = await readGolden(name);
    const [B, T] = golden.shape('tokens') as [number, number];
    const tokens = Uint32Array.from(await golden.i32('tokens'));
    expectClose(await loaded.model.logits(tokens, B, T), await golden.f32('base_logits'), 1e-4, `${name} base logits`);
    const adapter = await goldenAdapter(loaded, golden);
    expectClose(await loaded.model.logits(tokens, B, T, adapter), await golden.f32('lora_logits'), 1e-4, `${name} LoRA logits`);
    adapter.destroy();
  });

  it('gives the same masked loss, token accuracy and LoRA gradients, keeping or recomputing activations', async () => {
    const loaded = await openFixtureModel(name);
    opened.push(loaded);
    const golden = await readGolden(name);
    const [B, T] = golden.shape('tokens') as [number, number];
    const batch = {
      B,
      T,
      tokens: Uint32Array.from(await golden.i32('tokens')),
      targets: Uint32Array.from(await golden.i32('targets')),
      mask: await golden.f32('mask'),
    };
    const adapter = await goldenAdapter(loaded, golden);
    const trained = batch.mask.reduce((s, m) => s + m, 0);
    const byPolicy = new Map<string, Map<string, Float32Array>>();
    for (const recompute of ['always', 'never'] as const) {
      loaded.model.recompute = recompute;
      expect(loaded.model.keepsActivations(B, T, adapter)).toBe(recompute === 'never');
      const totals = (await loaded.model.forwardBackward(batch, adapter, { gradScale: 1 / trained, accumulate: false }))!;
      expect(totals.tokens).toBe(trained);
      expect(Math.abs(totals.lossSum / totals.tokens - (await golden.f32('loss'))[0]!)).toBeLessThan(1e-4 * Math.abs((await golden.f32('loss'))[0]!));
      expect(totals.correct / totals.tokens).toBeCloseTo((await golden.f32('token_accuracy'))[0]!, 6);
      const grads = await adapter.readGradients();
      expect(grads.size).toBeGreaterThan(0);
      for (const [key, got] of grads) expectClose(got, await golden.f32(`grad.${key}`), 1e-4, `${name} grad ${key} (recompute ${recompute})`);
      byPolicy.set(recompute, grads);
    }
    // Same kernels on the same inputs: kept activations give the recomputed ones' gradients bit for bit.
    for (const [key, got] of byPolicy.get('never')!) expect(Array.from(got), key).toEqual(Array.from(byPolicy.get('always')!.get(key)!));
    loaded.model.recompute = 'auto';
    adapter.destroy();
  });

  it('stays close with f16 weights (weights rounded to half precision)', async () => {
    const loaded = await openFixtureModel(name, 'f16');
    opened.push(loaded);
    const golden = await readGolden(name);
    const [B, T] = golden.shape('tokens') as [number, number];
    const tokens = Uint32Array.from(await golden.i32('tokens'));
    // The golden logits come from f32 (or bf16) weights: f16 rounding of every weight moves them by
    // about 2^-11 relative per weight, a few 1e-3 after two layers.
    expectClose(await loaded.model.logits(tokens, B, T), await golden.f32('base_logits'), 1e-2, `${name} f16 base logits`);
  });
});

describe('the models above', () => {
  it("ran the norms and the loss with the device plan's reductions (subgroups under the GPU plan)", async () => {
    const norms = ['rmsnorm_fwd', 'rmsnorm_res_fwd', 'rmsnorm_bwd', 'layernorm_fwd', 'layernorm_res_fwd', 'layernorm_bwd'];
    expectReductionVariant(await getTestGpu(), [...norms.map((k) => `norm.${k}`), 'crossentropy.chunk_stats']);
  });
});
