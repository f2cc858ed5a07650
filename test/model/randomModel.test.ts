import { describe, expect, it } from 'vitest';
import { fromF16Array } from '../../src/gpu';
import { countParameters, expectedWeights, parseModelConfig, type ModelConfig } from '../../src/model/config';
import { layerLinears } from '../../src/model/layout';
import { LoraAdapter, defaultLoraConfig } from '../../src/model/lora';
import { CausalLM } from '../../src/model/transformer';
import type { ModelWeights } from '../../src/model/weights';
import { buildRandomModel, randomBatch } from '../../src/model/randomModel';
import { expectClose } from '../helpers/compare';
import { getTestGpu } from '../helpers/gpu';

const LLAMA = parseModelConfig({
  model_type: 'llama', vocab_size: 330, hidden_size: 48, intermediate_size: 88, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: false,
});
const QWEN2 = parseModelConfig({
  model_type: 'qwen2', vocab_size: 330, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 1, max_position_embeddings: 64, tie_word_embeddings: true,
});
const GPT2 = parseModelConfig({ model_type: 'gpt2', vocab_size: 330, n_embd: 48, n_layer: 2, n_head: 4, n_positions: 64 });

function linears(w: ModelWeights) {
  return w.layers.flatMap((l) => layerLinears(l));
}

/** Trains nothing: just the loss of random tokens, which a near-zero model puts at ln(vocab). */
async function meanLoss(config: ModelConfig, weights: ModelWeights) {
  const gpu = await getTestGpu();
  const model = new CausalLM(gpu, config, weights);
  const batch = randomBatch(config, 2, 9, 3);
  const totals = await model.evaluate(batch);
  return { model, batch, loss: totals.lossSum / totals.tokens, tokens: totals.tokens };
}

describe.each([
  ['llama', LLAMA],
  ['qwen2 (biases, tied head)', QWEN2],
  ['gpt2', GPT2],
] as const)('buildRandomModel: %s', (_name, config) => {
  it('has the module structure loadModelWeights builds and the bytes it reports', async () => {
    const gpu = await getTestGpu();
    const live = gpu.memory().liveBytes;
    const w = await buildRandomModel(gpu, config, { dtype: 'f16', seed: 5 });
    expect(gpu.memory().liveBytes - live).toBe(w.bytes);
    expect(w.layers).toHaveLength(config.layers);
    // Every linear weight (and bias) is a tensor a real checkpoint has, with the real shape.
    const expected = new Map(expectedWeights(config).map((e) => [e.name, e.shape]));
    for (const lin of linears(w)) {
      const shape = expected.get(`${lin.name}.weight`);
      expect(shape, lin.name).toBeDefined();
      const [rows, cols] = config.conv1dWeights ? [shape![1], shape![0]] : [shape![0], shape![1]];
      expect([lin.outFeatures, lin.inFeatures]).toEqual([rows, cols]);
      expect(lin.kind).toBe(lin.name.slice(lin.name.lastIndexOf('.') + 1));
      expect(lin.role).toBeTruthy();
      expect(lin.f16).toBe(true);
      expect(lin.bias !== null).toBe(expected.has(`${lin.name}.bias`));
    }
    const linearCount = [...expected.keys()].filter((n) => /(proj|c_attn|c_fc)\.weight$/.test(n)).length;
    expect(linears(w)).toHaveLength(linearCount);
    expect(w.head === w.embed).toBe(config.tieWordEmbeddings);
    expect(w.positions !== null).toBe(config.family === 'gpt2');
    // bf16/f16 bytes: 2 per weight element, f32 for norms, biases and positions.
    expect(w.bytes).toBeGreaterThanOrEqual(countParameters(config) * 2);
    expect(w.bytes).toBeLessThan(countParameters(config) * 4);
    w.destroy();
    expect(gpu.memory().liveBytes).toBe(live);
  });

  it('fills weights with N(0, std) values (f16 and f32), norm scales with 1, reproducibly', async () => {
    const gpu = await getTestGpu();
    const a = await buildRandomModel(gpu, config, { dtype: 'f16', seed: 11, std: 0.05 });
    const b = await buildRandomModel(gpu, config, { dtype: 'f16', seed: 11, std: 0.05 });
    const c = await buildRandomModel(gpu, config, { dtype: 'f32', seed: 12, std: 0.05 });
    const lin = a.layers[1]!.mlpIn[0]!;
    const n = lin.outFeatures * lin.inFeatures;
    const read16 = async (buf: GPUBuffer) => fromF16Array(new Uint16Array(await gpu.read(buf, 0, n * 2)));
    const wa = await read16(lin.w);
    const wb = await read16(b.layers[1]!.mlpIn[0]!.w);
    const wc = await gpu.readF32(c.layers[1]!.mlpIn[0]!.w, n);
    expect(Array.from(wb)).toEqual(Array.from(wa));
    for (const v of [wa, wc]) {
      let s = 0;
      let s2 = 0;
      for (const x of v) {
        s += x;
        s2 += x * x;
      }
      const mean = s / n;
      const sd = Math.sqrt(s2 / n - mean * mean);
      expect(Math.abs(mean)).toBeLessThan(0.01);
      expect(sd).toBeGreaterThan(0.045);
      expect(sd).toBeLessThan(0.055);
    }
    expect(Array.from(wc.subarray(0, 64))).not.toEqual(Array.from(wa.subarray(0, 64)));
    expect(Array.from(await gpu.readF32(a.finalNorm.w, config.hidden))).toEqual(new Array(config.hidden).fill(1));
    for (const w of [a, b, c]) w.destroy();
  });

  it('runs a forward pass (loss of random tokens ~ ln vocab) and a LoRA training step', async () => {
    const gpu = await getTestGpu();
    const { model, batch, loss, tokens } = await meanLoss(config, await buildRandomModel(gpu, config, { dtype: 'f16', seed: 2 }));
    expect(tokens).toBe(batch.B * batch.T);
    expect(Math.abs(loss - Math.log(config.vocabSize))).toBeLessThan(0.1);
    const adapter = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: 4 }));
    adapter.initialize(1);
    const totals = (await model.forwardBackward(batch, adapter, { gradScale: 1 / tokens, accumulate: false }))!;
    expect(Math.abs(totals.lossSum / totals.tokens - loss)).toBeLessThan(1e-3);
    // B starts at zero, so A's gradients are zero; B's must be non-zero and finite.
    let nonZero = 0;
    for (const [key, g] of await adapter.readGradients()) {
      for (const x of g) expect(Number.isFinite(x), key).toBe(true);
      if (key.endsWith('lora_B.weight')) nonZero += g.some((x) => x !== 0) ? 1 : 0;
    }
    expect(nonZero).toBe(adapter.modules.size);
    adapter.destroy();
    model.destroy();
  });
});

describe('buildRandomModel embedding shards', () => {
  it('shards the table under a lower binding limit and computes the same logits', async () => {
    const gpu = await getTestGpu();
    const config = LLAMA;
    const whole = await buildRandomModel(gpu, config, { dtype: 'f32', seed: 9 });
    // 48 f32 per row = 192 bytes; 128 rows per shard -> 3 shards for 330 rows.
    const sharded = await buildRandomModel(gpu, config, { dtype: 'f32', seed: 9, maxBindingBytes: 128 * 192 });
    expect(whole.embed).toHaveLength(1);
    expect(sharded.embed.map((s) => [s.rowStart, s.rowCount])).toEqual([[0, 128], [128, 128], [256, 74]]);
    expect(sharded.head).toHaveLength(3);
    const tokens = randomBatch(config, 1, 7, 4).tokens;
    const m1 = new CausalLM(gpu, config, whole);
    const m2 = new CausalLM(gpu, config, sharded);
    expectClose(await m2.logits(tokens, 1, 7), await m1.logits(tokens, 1, 7), 1e-6, 'sharded logits');
    m1.destroy();
    m2.destroy();
  });
});
