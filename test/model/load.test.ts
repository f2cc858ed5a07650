import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bytesModelDir } from '../../src/formats/hfModelDir';
import { SafetensorsError } from '../../src/formats/safetensors';
import { ModelConfigError, ModelWeightsError } from '../../src/model/config';
import { loadCausalLM } from '../../src/model/load';
import { LoraAdapter, LoraConfigError, defaultLoraConfig } from '../../src/model/lora';
import { expectClose } from '../helpers/compare';
import { getTestGpu } from '../helpers/gpu';
import { FIXTURES } from './golden';

function files(name: string): Record<string, Uint8Array> {
  const dir = join(FIXTURES, 'models', name);
  return Object.fromEntries(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
}

function withConfig(name: string, edit: (c: Record<string, unknown>) => void): Record<string, Uint8Array> {
  const f = files(name);
  const config = JSON.parse(new TextDecoder().decode(f['config.json']));
  edit(config);
  f['config.json'] = new TextEncoder().encode(JSON.stringify(config));
  return f;
}

describe('loading bad models fails clearly, before anything is uploaded', () => {
  it('a config that does not match the weights', async () => {
    const gpu = await getTestGpu();
    const dir = bytesModelDir(withConfig('tiny-llama', (c) => (c.hidden_size = 64)));
    await expect(loadCausalLM(gpu, dir)).rejects.toThrow(ModelWeightsError);
    await expect(loadCausalLM(gpu, dir)).rejects.toThrow(/hidden_size 64 but model\.embed_tokens\.weight is \[320, 48\]/);
  });

  it('an unknown architecture, naming the field', async () => {
    const gpu = await getTestGpu();
    const dir = bytesModelDir(withConfig('tiny-llama', (c) => (c.model_type = 'mamba')));
    await expect(loadCausalLM(gpu, dir)).rejects.toThrow(ModelConfigError);
    await expect(loadCausalLM(gpu, dir)).rejects.toThrow(/model_type/);
  });

  it('a truncated weights file', async () => {
    const gpu = await getTestGpu();
    const f = files('tiny-gpt2');
    f['model.safetensors'] = f['model.safetensors']!.subarray(0, 5000);
    await expect(loadCausalLM(gpu, bytesModelDir(f))).rejects.toThrow(SafetensorsError);
  });

  it('a missing config', async () => {
    const gpu = await getTestGpu();
    const f = files('tiny-gpt2');
    delete f['config.json'];
    await expect(loadCausalLM(gpu, bytesModelDir(f))).rejects.toThrow(/config\.json/);
  });
});

describe('LoRA adapters', () => {
  it('start equal to the base model (PEFT init: B = 0) and count their parameters', async () => {
    const gpu = await getTestGpu();
    const { model, config } = await loadCausalLM(gpu, bytesModelDir(files('tiny-qwen2')), { dtype: 'f32' });
    const adapter = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: 4, alpha: 8 }));
    adapter.initialize(1);
    const tokens = Uint32Array.from([1, 50, 99, 7, 300, 2]);
    const base = await model.logits(tokens, 1, 6);
    const adapted = await model.logits(tokens, 1, 6, adapter);
    // Same math through another kernel (the fused LoRA matmul sums in its own order): f32 round-off only.
    expectClose(adapted, base, 1e-6, 'B = 0 adapter vs base');
    // r * (in + out) per module: q 64+64, k 64+16, v 64+16, o 64+64, gate/up 64+96, down 96+64, x2 layers.
    expect(adapter.parameterCount).toBe(2 * 4 * (128 + 80 + 80 + 128 + 160 + 160 + 160));
    const a = (await adapter.readTensors()).get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!;
    const bound = 1 / Math.sqrt(64);
    expect(a.data.every((v) => Math.abs(v) <= bound)).toBe(true);
    expect(new Set(a.data).size).toBeGreaterThan(200); // random, not constant
    adapter.destroy();
    model.destroy();
  });

  it('reject target modules the model does not have', async () => {
    const gpu = await getTestGpu();
    const { model, config } = await loadCausalLM(gpu, bytesModelDir(files('tiny-gpt2')), { dtype: 'f32' });
    expect(() => new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { targetModules: ['q_proj'] }))).toThrow(LoraConfigError);
    expect(() => new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { targetModules: ['q_proj'] }))).toThrow(/c_attn/);
    model.destroy();
  });
});
