import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { loadHfModelDir } from '../../src/formats/hfModelDir';
import { nodeModelDir } from '../../src/formats/nodeByteSource';
import {
  checkWeightsAgainstConfig,
  countParameters,
  expectedWeights,
  ModelConfigError,
  ModelWeightsError,
  parseModelConfig,
  ropeInverseFrequencies,
  type ModelConfig,
} from '../../src/model/config';

function fixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`../fixtures/hf-configs/${name}.json`, import.meta.url), 'utf8')) as Record<string, unknown>;
}

function configError(json: unknown, field: string, message: RegExp, options = {}): void {
  let err: unknown = null;
  try {
    parseModelConfig(json, options);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ModelConfigError);
  expect((err as ModelConfigError).field).toBe(field);
  expect((err as Error).message).toMatch(message);
}

function weightsError(tensors: { name: string; shape: number[]; dtype?: string }[], config: ModelConfig, message: string | RegExp): void {
  let err: unknown = null;
  try {
    checkWeightsAgainstConfig(tensors, config);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ModelWeightsError);
  if (typeof message === 'string') expect((err as Error).message).toBe(message);
  else expect((err as Error).message).toMatch(message);
}

describe('parseModelConfig on real configs', () => {
  // Parameter counts as published for each model (tied embeddings counted once).
  it('SmolLM2-135M (llama, GQA 9/3, tied)', () => {
    const c = parseModelConfig(fixture('smollm2-135m'));
    expect(c).toMatchObject({
      family: 'llama',
      modelType: 'llama',
      vocabSize: 49152,
      hidden: 576,
      intermediate: 1536,
      layers: 30,
      heads: 9,
      kvHeads: 3,
      headDim: 64,
      normType: 'rms',
      normEps: 1e-5,
      positionEncoding: 'rope',
      ropeTheta: 100000,
      ropeScaling: null,
      maxPositions: 8192,
      slidingWindow: null,
      tieWordEmbeddings: true,
      attentionBias: false,
      attentionOutBias: false,
      mlpBias: false,
      hiddenAct: 'silu',
      conv1dWeights: false,
      bosTokenId: 0,
      eosTokenIds: [0],
      padTokenId: null,
      torchDtype: 'bfloat16',
    });
    expect(countParameters(c)).toBe(134_515_008);
  });

  it('Qwen2.5-0.5B (qwen2: q/k/v biases, no o bias, tied)', () => {
    const c = parseModelConfig(fixture('qwen2.5-0.5b'));
    expect(c).toMatchObject({
      family: 'llama',
      modelType: 'qwen2',
      vocabSize: 151936,
      hidden: 896,
      heads: 14,
      kvHeads: 2,
      headDim: 64,
      normEps: 1e-6,
      ropeTheta: 1_000_000,
      maxPositions: 32768,
      slidingWindow: null,
      attentionBias: true,
      attentionOutBias: false,
      tieWordEmbeddings: true,
      bosTokenId: 151643,
      eosTokenIds: [151643],
    });
    expect(countParameters(c)).toBe(494_032_768);
    const names = expectedWeights(c).map((w) => w.name);
    expect(names).toContain('model.layers.0.self_attn.q_proj.bias');
    expect(names).toContain('model.layers.23.self_attn.v_proj.bias');
    expect(names).not.toContain('model.layers.0.self_attn.o_proj.bias');
    expect(names).not.toContain('lm_head.weight');
  });

  it('Llama-3.2-1B-Instruct (llama3 rope scaling, eos list, head_dim field)', () => {
    const c = parseModelConfig(fixture('llama-3.2-1b-instruct'));
    expect(c).toMatchObject({
      vocabSize: 128256,
      hidden: 2048,
      intermediate: 8192,
      layers: 16,
      heads: 32,
      kvHeads: 8,
      headDim: 64,
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
      maxPositions: 131072,
      bosTokenId: 128000,
      eosTokenIds: [128001, 128008, 128009],
    });
    expect(countParameters(c)).toBe(1_235_814_400);
  });

  it('TinyLlama-1.1B-Chat (untied lm_head)', () => {
    const c = parseModelConfig(fixture('tinyllama-1.1b-chat'));
    expect(c).toMatchObject({ hidden: 2048, intermediate: 5632, layers: 22, heads: 32, kvHeads: 4, tieWordEmbeddings: false, maxPositions: 2048 });
    expect(countParameters(c)).toBe(1_100_048_384);
    expect(expectedWeights(c).at(-1)).toEqual({ name: 'lm_head.weight', shape: [32000, 2048], dims: ['vocab_size', 'hidden_size'] });
  });

  it('GPT-2 124M (Conv1D, learned positions, LayerNorm, gelu_new)', () => {
    const c = parseModelConfig(fixture('gpt2'));
    expect(c).toMatchObject({
      family: 'gpt2',
      modelType: 'gpt2',
      vocabSize: 50257,
      hidden: 768,
      intermediate: 3072,
      layers: 12,
      heads: 12,
      kvHeads: 12,
      headDim: 64,
      normType: 'layer',
      normEps: 1e-5,
      positionEncoding: 'learned',
      ropeTheta: null,
      maxPositions: 1024,
      tieWordEmbeddings: true,
      attentionBias: true,
      attentionOutBias: true,
      mlpBias: true,
      hiddenAct: 'gelu_new',
      conv1dWeights: true,
      bosTokenId: 50256,
      eosTokenIds: [50256],
      torchDtype: null,
    });
    expect(countParameters(c)).toBe(124_439_808);
    const w = expectedWeights(c);
    expect(w.find((x) => x.name === 'h.0.attn.c_attn.weight')!.shape).toEqual([768, 2304]);
    expect(w.find((x) => x.name === 'h.11.mlp.c_proj.weight')!.shape).toEqual([3072, 768]);
    expect(expectedWeights(c, { gpt2Prefix: 'transformer.' })[0]!.name).toBe('transformer.wte.weight');
  });

  it('Mistral: no sliding window (v0.3) is fine; a real window (v0.1) is refused unless allowed', () => {
    const v3 = parseModelConfig(fixture('mistral-7b-v0.3'));
    expect(v3).toMatchObject({ modelType: 'mistral', slidingWindow: null, ropeTheta: 1_000_000, attentionBias: false, vocabSize: 32768 });
    configError(fixture('mistral-7b-v0.1'), 'sliding_window', /sliding_window attention is not supported \(sliding_window 4096 < max_position_embeddings 32768\)/);
    const v1 = parseModelConfig(fixture('mistral-7b-v0.1'), { allowSlidingWindow: true });
    expect(v1.slidingWindow).toBe(4096);
    expect(countParameters(v1)).toBe(7_241_732_096);
    expect(parseModelConfig({ ...fixture('mistral-7b-v0.1'), sliding_window: 32768 }).slidingWindow).toBeNull();
  });

  it('transformers v5 layout: rope_parameters and dtype', () => {
    const json = { ...fixture('llama-3.2-1b-instruct'), dtype: 'float16' } as Record<string, unknown>;
    delete json.torch_dtype;
    delete json.rope_theta;
    json.rope_parameters = { ...(json.rope_scaling as object), rope_theta: 500000 };
    delete json.rope_scaling;
    const c = parseModelConfig(json);
    expect(c.ropeTheta).toBe(500000);
    expect(c.ropeScaling?.factor).toBe(32);
    expect(c.torchDtype).toBe('float16');
    const plain = parseModelConfig({ ...fixture('smollm2-135m'), rope_parameters: { rope_type: 'default', rope_theta: 7 } });
    expect(plain.ropeTheta).toBe(7);
    expect(plain.ropeScaling).toBeNull();
  });
});

describe('parseModelConfig errors name the field', () => {
  const smol = () => fixture('smollm2-135m');
  it('refuses what the engine does not implement', () => {
    configError('x', undefined as unknown as string, /not a JSON object/);
    configError({ ...smol(), model_type: 'gemma' }, 'model_type', /model_type "gemma" is not supported/);
    configError({ ...smol(), model_type: undefined }, 'model_type', /missing model_type/);
    configError({ ...smol(), hidden_act: 'gelu' }, 'hidden_act', /hidden_act "gelu" is not supported for llama/);
    configError({ ...smol(), rope_scaling: { type: 'linear', factor: 2 } }, 'rope_scaling', /rope_scaling type "linear" is not supported/);
    configError({ ...smol(), rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'rope_scaling', /"yarn"/);
    configError({ ...smol(), rope_scaling: 3 }, 'rope_scaling', /expected an object or null/);
    configError(
      { ...smol(), rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 } },
      'original_max_position_embeddings',
      /rope_scaling is missing original_max_position_embeddings/,
    );
    configError({ ...smol(), num_key_value_heads: 4 }, 'num_key_value_heads', /num_attention_heads \(9\) is not a multiple of num_key_value_heads \(4\)/);
    configError({ ...smol(), num_attention_heads: 7, num_key_value_heads: 7 }, 'head_dim', /hidden_size \(576\) is not divisible by num_attention_heads \(7\)/);
    configError({ ...smol(), hidden_size: undefined }, 'hidden_size', /config.json is missing hidden_size/);
    configError({ ...smol(), num_hidden_layers: 2.5 }, 'num_hidden_layers', /num_hidden_layers is 2.5; expected an integer >= 1/);
    configError({ ...smol(), rms_norm_eps: -1 }, 'rms_norm_eps', /expected a positive number/);
    configError({ ...smol(), tie_word_embeddings: 'yes' }, 'tie_word_embeddings', /expected true or false/);
    configError({ ...smol(), eos_token_id: [1, 'x'] }, 'eos_token_id', /expected token ids/);
    configError({ ...smol(), partial_rotary_factor: 0.5 }, 'partial_rotary_factor', /not supported/);
    configError({ ...fixture('qwen2.5-0.5b'), use_sliding_window: true, sliding_window: 4096, max_window_layers: 21 }, 'use_sliding_window', /max_window_layers/);
    configError({ ...fixture('gpt2'), activation_function: 'relu' }, 'activation_function', /activation_function "relu" is not supported/);
    configError({ ...fixture('gpt2'), n_head: 7 }, 'n_head', /n_embd \(768\) is not divisible by n_head \(7\)/);
    configError({ ...fixture('gpt2'), scale_attn_by_inverse_layer_idx: true }, 'scale_attn_by_inverse_layer_idx', /not supported/);
  });

  it('accepts gelu variants for gpt2 and maps them', () => {
    expect(parseModelConfig({ ...fixture('gpt2'), activation_function: 'gelu_pytorch_tanh' }).hiddenAct).toBe('gelu_new');
    expect(parseModelConfig({ ...fixture('gpt2'), activation_function: 'gelu' }).hiddenAct).toBe('gelu');
    expect(parseModelConfig({ ...fixture('gpt2'), n_inner: 1000 }).intermediate).toBe(1000);
  });
});

describe('rope inverse frequencies', () => {
  it('default rope: theta^(-2i/d)', () => {
    const c = parseModelConfig(fixture('smollm2-135m'));
    const inv = ropeInverseFrequencies(c);
    expect(inv.length).toBe(32);
    expect(inv[0]).toBe(1);
    expect(inv[1]).toBeCloseTo(100000 ** (-2 / 64), 15);
    expect(inv[31]).toBeCloseTo(100000 ** (-62 / 64), 15);
  });

  it('llama3 scaling keeps high frequencies, divides low ones, blends the middle', () => {
    const c = parseModelConfig(fixture('llama-3.2-1b-instruct'));
    const inv = ropeInverseFrequencies(c);
    const base = (i: number) => 500000 ** (-(2 * i) / 64);
    // Wavelength 2*pi/f < 8192/4 = 2048 for i <= 14: untouched.
    for (let i = 0; i <= 14; i++) expect(inv[i]).toBeCloseTo(base(i), 15);
    // Wavelength > 8192/1 for i >= 18: divided by the factor 32.
    for (let i = 18; i < 32; i++) expect(inv[i]! / (base(i) / 32)).toBeCloseTo(1, 12);
    // In between (i = 15..17) the smooth blend (8192/wavelen - 1)/(4 - 1).
    for (const i of [15, 16, 17]) {
      const wavelen = (2 * Math.PI) / base(i);
      const s = (8192 / wavelen - 1) / 3;
      expect(s).toBeGreaterThan(0);
      expect(s).toBeLessThan(1);
      expect(inv[i]! / ((1 - s) * (base(i) / 32) + s * base(i))).toBeCloseTo(1, 12);
    }
    for (let i = 1; i < 32; i++) expect(inv[i]!).toBeLessThan(inv[i - 1]!);
  });

  it('is refused for learned positions', () => {
    expect(() => ropeInverseFrequencies(parseModelConfig(fixture('gpt2')))).toThrow(ModelConfigError);
  });
});

describe('checkWeightsAgainstConfig', () => {
  const smol = parseModelConfig(fixture('smollm2-135m'));
  const full = () => expectedWeights(smol).map((w) => ({ name: w.name, shape: [...w.shape], dtype: 'BF16' }));

  it('accepts exactly the expected tensors, listing harmless extras', () => {
    const tensors = [
      ...full(),
      { name: 'lm_head.weight', shape: [49152, 576] },
      { name: 'model.layers.0.self_attn.rotary_emb.inv_freq', shape: [32] },
    ];
    const check = checkWeightsAgainstConfig(tensors, smol);
    expect(check.prefix).toBe('');
    expect(check.unused).toEqual(['lm_head.weight', 'model.layers.0.self_attn.rotary_emb.inv_freq']);
    expect(check.expected.length).toBe(2 + 30 * 9);
    // Map input works too.
    expect(checkWeightsAgainstConfig(new Map(full().map((t) => [t.name, t])), smol).unused).toEqual([]);
  });

  it('names the config field behind a shape mismatch', () => {
    const t = full();
    t.find((x) => x.name === 'model.layers.0.self_attn.q_proj.weight')!.shape = [512, 576];
    weightsError(t, smol, 'config says num_attention_heads×head_dim 576 but model.layers.0.self_attn.q_proj.weight is [512, 576]');
    const u = full();
    u.find((x) => x.name === 'model.layers.3.mlp.down_proj.weight')!.shape = [576, 1024];
    weightsError(u, smol, 'config says intermediate_size 1536 but model.layers.3.mlp.down_proj.weight is [576, 1024]');
    const v = full();
    v.find((x) => x.name === 'model.norm.weight')!.shape = [576, 1];
    weightsError(v, smol, 'config says shape [576] but model.norm.weight is [576, 1]');
    const small = parseModelConfig({ ...fixture('smollm2-135m'), hidden_size: 512, num_attention_heads: 8, num_key_value_heads: 2 });
    weightsError(full(), small, 'config says hidden_size 512 but model.embed_tokens.weight is [49152, 576]');
  });

  it('reports missing, surplus and unsupported tensors', () => {
    weightsError(full().filter((t) => t.name !== 'model.layers.7.mlp.up_proj.weight'), smol, /the weights lack model.layers.7.mlp.up_proj.weight \[1536, 576\]/);
    weightsError([...full(), { name: 'model.layers.30.input_layernorm.weight', shape: [576] }], smol, /config says num_hidden_layers 30 but the weights have model.layers.30/);
    weightsError([...full(), { name: 'model.layers.2.self_attn.k_proj.bias', shape: [192] }], smol, /have model.layers.2.self_attn.k_proj.bias but the config does not enable that bias/);
    const int8 = full();
    int8[5]!.dtype = 'I8';
    weightsError(int8, smol, /dtype I8; only F32, F16 and BF16/);
    const qwen = parseModelConfig(fixture('qwen2.5-0.5b'));
    const noBias = expectedWeights(qwen).filter((w) => w.name !== 'model.layers.0.self_attn.q_proj.bias');
    weightsError(noBias, qwen, 'config implies model.layers.0.self_attn.q_proj.bias (a bias) but the weights do not have it');
    const untied = parseModelConfig(fixture('tinyllama-1.1b-chat'));
    weightsError(expectedWeights(untied).slice(0, -1), untied, /lack lm_head.weight \[32000, 2048\]/);
  });

  it('finds gpt2 weights with or without the transformer. prefix and ignores attn.bias buffers', () => {
    const gpt2 = parseModelConfig(fixture('gpt2'));
    const plain = expectedWeights(gpt2).map((w) => ({ name: w.name, shape: w.shape }));
    const withBuffers = [...plain, { name: 'h.0.attn.bias', shape: [1, 1, 1024, 1024] }];
    expect(checkWeightsAgainstConfig(withBuffers, gpt2)).toMatchObject({ prefix: '', unused: ['h.0.attn.bias'] });
    const prefixed = plain.map((w) => ({ ...w, name: `transformer.${w.name}` }));
    expect(checkWeightsAgainstConfig(prefixed, gpt2).prefix).toBe('transformer.');
    weightsError(prefixed.map((w) => (w.name.endsWith('h.0.attn.c_attn.weight') ? { ...w, shape: [2304, 768] } : w)), gpt2, 'config says n_embd 768 but transformer.h.0.attn.c_attn.weight is [2304, 768]');
    weightsError([...plain, { name: 'h.12.ln_1.weight', shape: [768] }], gpt2, /config says n_layer 12 but the weights have h.12.ln_1.weight/);
  });
});

describe('the committed tiny models (written by scripts/make_golden.py)', () => {
  for (const name of ['tiny-llama', 'tiny-qwen2', 'tiny-gpt2']) {
    it(`${name}: config parses and its safetensors match it`, async () => {
      const dir = await nodeModelDir(new URL(`../fixtures/models/${name}`, import.meta.url).pathname);
      try {
        const files = await loadHfModelDir(dir);
        const config = parseModelConfig(files.config);
        expect(files.tokenizerJson).not.toBeNull();
        expect(files.tokenizerConfig).not.toBeNull();
        expect(files.generationConfig).not.toBeNull();
        const shapes = [...files.weights.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype }));
        const check = checkWeightsAgainstConfig(shapes, config);
        expect(check.unused).toEqual([]);
        for (const w of check.expected) {
          const data = await files.weights.read(w.name, { as: 'f32' });
          expect(data.length).toBe(w.shape.reduce((a, b) => a * b, 1));
          expect(data.every(Number.isFinite)).toBe(true);
        }
        if (name === 'tiny-llama') expect(config.ropeScaling).toMatchObject({ type: 'llama3', factor: 8, originalMaxPositions: 16 });
        if (name === 'tiny-qwen2') expect(config).toMatchObject({ attentionBias: true, tieWordEmbeddings: true, torchDtype: 'bfloat16', bosTokenId: null });
      } finally {
        await dir.close();
      }
    });
  }
});
