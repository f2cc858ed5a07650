import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { bytesModelDir } from '../../src/formats/hfModelDir';
import { readPeftAdapterTensors } from '../../src/formats/mergedModel';
import { nodeModelDir } from '../../src/formats/nodeByteSource';
import { exportPeftAdapter, importPeftAdapter, PeftAdapterError, resolveTargetModules, type PeftExport } from '../../src/formats/peft';
import { bytesSource, readSafetensorsHeader, readTensor, writeSafetensors } from '../../src/formats/safetensors';
import type { Gpu } from '../../src/gpu';
import { loadCausalLM, type LoadedModel } from '../../src/model/load';
import { defaultLoraConfig, LoraAdapter } from '../../src/model/lora';
import { getTestGpu } from '../helpers/gpu';
import { Rng } from '../helpers/random';

const MODELS = join(__dirname, '..', 'fixtures', 'models');

async function load(gpu: Gpu, name: string): Promise<LoadedModel> {
  const dir = await nodeModelDir(join(MODELS, name));
  try {
    return await loadCausalLM(gpu, dir, { dtype: 'f32' });
  } finally {
    await dir.close();
  }
}

/** An adapter with random A and B (B nonzero, so the adapter changes the logits). */
async function randomAdapter(gpu: Gpu, loaded: LoadedModel, seed: number, overrides = {}): Promise<LoraAdapter> {
  const adapter = new LoraAdapter(gpu, loaded.config, loaded.model.weights, defaultLoraConfig(loaded.config, { r: 4, alpha: 8, ...overrides }));
  adapter.initialize(seed);
  const rng = new Rng(seed + 1);
  for (const m of adapter.modules.values()) adapter.write(m.b, rng.f32(m.linear.outFeatures * m.r, -0.2, 0.2));
  return adapter;
}

function withConfig(files: PeftExport, patch: Record<string, unknown>) {
  return { adapterConfig: { ...files.adapterConfig, ...patch }, adapterModel: files.adapterModel };
}

async function tensorsOf(bytes: Uint8Array) {
  const src = bytesSource(bytes);
  const header = await readSafetensorsHeader(src);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, info] of header.tensors) out.set(name, { shape: info.shape, data: await readTensor(src, header, name, { as: 'f32' }) });
  return { header, tensors: out };
}

describe.each(['tiny-llama', 'tiny-qwen2', 'tiny-gpt2'])('%s PEFT round trip', (name) => {
  it('export then import gives identical tensors and identical logits', async () => {
    const gpu = await getTestGpu();
    const loaded = await load(gpu, name);
    const original = await randomAdapter(gpu, loaded, 11);
    const files = await exportPeftAdapter(original, { baseModelNameOrPath: `whittle/${name}` });

    const cfg = files.adapterConfig;
    expect(cfg.peft_type).toBe('LORA');
    expect(cfg.task_type).toBe('CAUSAL_LM');
    expect(cfg.r).toBe(4);
    expect(cfg.lora_alpha).toBe(8);
    expect(cfg.base_model_name_or_path).toBe(`whittle/${name}`);
    expect(cfg.fan_in_fan_out).toBe(name === 'tiny-gpt2');
    expect(cfg.bias).toBe('none');
    expect(cfg.use_dora).toBe(false);
    expect(cfg.rank_pattern).toEqual({});
    // A JSON round trip, as the file goes to disk.
    const onDisk = JSON.parse(JSON.stringify(cfg)) as unknown;

    const { header, tensors } = await tensorsOf(files.adapterModel);
    expect(header.metadata).toEqual({ format: 'pt' });
    const c = loaded.config;
    if (name === 'tiny-gpt2') {
      expect(tensors.get('base_model.model.transformer.h.1.attn.c_attn.lora_A.weight')!.shape).toEqual([4, c.hidden]);
      expect(tensors.get('base_model.model.transformer.h.1.attn.c_attn.lora_B.weight')!.shape).toEqual([3 * c.hidden, 4]);
      expect(tensors.get('base_model.model.transformer.h.0.mlp.c_proj.lora_A.weight')!.shape).toEqual([4, c.intermediate]);
      expect(tensors.size).toBe(c.layers * 4 * 2);
    } else {
      expect(tensors.get('base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight')!.shape).toEqual([c.kvHeads * c.headDim, 4]);
      expect(tensors.get('base_model.model.model.layers.1.mlp.down_proj.lora_A.weight')!.shape).toEqual([4, c.intermediate]);
      expect(tensors.size).toBe(c.layers * 7 * 2);
    }

    const imported = await importPeftAdapter(gpu, loaded.model, { adapterConfig: onDisk, adapterModel: files.adapterModel });
    expect(imported.config).toEqual(original.config);
    const a = await original.readTensors();
    const b = await imported.readTensors();
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [key, t] of a) {
      expect(b.get(key)!.shape).toEqual(t.shape);
      expect(b.get(key)!.data).toEqual(t.data);
      expect(tensors.get(key)!.data).toEqual(t.data);
    }

    const T = 9;
    const tokens = Uint32Array.from({ length: T }, (_, i) => (i * 37 + 5) % c.vocabSize);
    const want = await loaded.model.logits(tokens, 1, T, original);
    const got = await loaded.model.logits(tokens, 1, T, imported);
    expect(got).toEqual(want);
    const base = await loaded.model.logits(tokens, 1, T, null);
    expect(got).not.toEqual(base);

    original.destroy();
    imported.destroy();
    loaded.model.destroy();
  });
});

describe('PEFT adapter errors', () => {
  let gpu: Gpu;
  let llama: LoadedModel;
  let gpt2: LoadedModel;
  let files: PeftExport;

  beforeAll(async () => {
    gpu = await getTestGpu();
    llama = await load(gpu, 'tiny-llama');
    gpt2 = await load(gpu, 'tiny-gpt2');
    const adapter = await randomAdapter(gpu, llama, 3, { targetModules: ['q_proj', 'v_proj'] });
    files = await exportPeftAdapter(adapter, { baseModelNameOrPath: 'tiny-llama' });
    adapter.destroy();
  });
  afterAll(() => {
    llama.model.destroy();
    gpt2.model.destroy();
  });

  const rejects = async (model: () => LoadedModel, input: Parameters<typeof importPeftAdapter>[2], message: RegExp) => {
    const before = gpu.memory().liveBuffers;
    const err = await importPeftAdapter(gpu, model().model, input).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PeftAdapterError);
    expect((err as Error).message).toMatch(message);
    // A refused adapter leaves no GPU buffers behind.
    expect(gpu.memory().liveBuffers).toBe(before);
  };

  it('refuses other PEFT methods, DoRA, per-module ranks and alphas, trained biases', async () => {
    await rejects(() => llama, withConfig(files, { peft_type: 'IA3' }), /peft_type is "IA3"; only LoRA/);
    await rejects(() => llama, withConfig(files, { use_dora: true }), /DoRA adapters are not supported/);
    await rejects(() => llama, withConfig(files, { rank_pattern: { q_proj: 2 } }), /rank_pattern .*per-module ranks and alphas are not supported/);
    await rejects(() => llama, withConfig(files, { alpha_pattern: { 'model.layers.0.self_attn.q_proj': 4 } }), /alpha_pattern/);
    await rejects(() => llama, withConfig(files, { bias: 'lora_only' }), /bias is "lora_only"/);
    await rejects(() => llama, withConfig(files, { task_type: 'SEQ_CLS' }), /task_type is "SEQ_CLS"/);
    await rejects(() => llama, withConfig(files, { modules_to_save: ['lm_head'] }), /modules_to_save/);
    await rejects(() => llama, withConfig(files, { layers_to_transform: [0] }), /subset of layers/);
  });

  it('refuses target modules the model lacks, and adapters for another base model', async () => {
    await rejects(() => llama, withConfig(files, { target_modules: ['q_proj', 'c_attn'] }), /target_modules c_attn is not in this llama model/);
    // Only one of GPT-2's two c_proj kinds.
    await rejects(() => gpt2, withConfig(files, { target_modules: ['attn.c_proj'] }), /adapts 2 of the 4 c_proj modules/);
    // tiny-llama's q_proj/v_proj exist in GPT-2 under no name.
    await rejects(() => gpt2, files, /q_proj, v_proj are not in this gpt2 model/);
    // tiny-qwen2 has the same module names but hidden 64, not 48.
    const qwen = await load(gpu, 'tiny-qwen2');
    await rejects(() => qwen, files, /is \[4, 48\] but this qwen2 model needs \[4, 64\] .*another base model \(the adapter was trained on tiny-llama\)/);
    qwen.model.destroy();
  });

  it('refuses missing and unexpected tensors', async () => {
    const { tensors } = await tensorsOf(files.adapterModel);
    const rewrite = (keep: (name: string) => boolean, extra: [string, number[]][] = []) =>
      writeSafetensors([
        ...[...tensors].filter(([n]) => keep(n)).map(([n, t]) => ({ name: n, dtype: 'F32' as const, shape: t.shape, data: t.data })),
        ...extra.map(([n, shape]) => ({ name: n, dtype: 'F32' as const, shape, data: new Float32Array(shape[0]! * shape[1]!) })),
      ]);
    const dropped = 'base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight';
    await rejects(() => llama, { adapterConfig: files.adapterConfig, adapterModel: rewrite((n) => n !== dropped) }, /lacks 1 of the 8 tensors .*v_proj\.lora_B\.weight/);
    const stray = 'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight';
    await rejects(() => llama, { adapterConfig: files.adapterConfig, adapterModel: rewrite(() => true, [[stray, [4, 48]]]) }, /has 1 tensor this model has no place for, e.g. .*k_proj/);
    // r in the config disagrees with the tensors: the adapter's own files, not another base model.
    await rejects(() => llama, withConfig(files, { r: 8 }), /lora_A\.weight has rank 4 but adapter_config\.json says r = 8: the adapter's config and its tensors disagree/);
  });

  it('refuses non-finite tensors, naming them', async () => {
    const { tensors } = await tensorsOf(files.adapterModel);
    const poisoned = [...tensors].map(([n, t], i) => {
      const data = Float32Array.from(t.data);
      if (i === 1) data.fill(NaN);
      if (i === 2) data[0] = Infinity;
      return { name: n, dtype: 'F32' as const, shape: t.shape, data };
    });
    const names = [...tensors.keys()];
    const count = tensors.get(names[1]!)!.data.length + 1;
    const message = new RegExp(`holds ${count} non-finite values \\(NaN or infinity\\) in ${names[1]!.replace(/\./g, '\\.')}, ${names[2]!.replace(/\./g, '\\.')};`);
    const adapterModel = writeSafetensors(poisoned);
    await rejects(() => llama, { adapterConfig: files.adapterConfig, adapterModel }, message);
    // The merge path (export --format merged, the ONNX playground) reads adapters without a GPU.
    await expect(readPeftAdapterTensors({ adapterConfig: files.adapterConfig, adapterModel }, llama.config)).rejects.toThrow(message);
  });

  it('reads a folder, and explains a pickle-only one', async () => {
    const enc = new TextEncoder();
    const dir = bytesModelDir({ 'adapter_config.json': enc.encode(JSON.stringify(files.adapterConfig)), 'adapter_model.safetensors': files.adapterModel });
    const adapter = await importPeftAdapter(gpu, llama.model, dir);
    expect(adapter.config.targetModules).toEqual(['q_proj', 'v_proj']);
    adapter.destroy();
    const pickle = bytesModelDir({ 'adapter_config.json': enc.encode(JSON.stringify(files.adapterConfig)), 'adapter_model.bin': new Uint8Array(8) });
    await rejects(() => llama, pickle, /adapter_model\.bin \(PyTorch pickle\) but no adapter_model\.safetensors/);
    await rejects(() => llama, bytesModelDir({ 'adapter_model.safetensors': files.adapterModel }), /no adapter_config\.json/);
  });

  it('resolves PEFT target_modules forms: names, suffixes, regex, all-linear, null', () => {
    const c = llama.config;
    expect(resolveTargetModules(['self_attn.q_proj', 'down_proj'], c)).toEqual(['q_proj', 'down_proj']);
    expect(resolveTargetModules('.*\\.(q_proj|v_proj)', c)).toEqual(['q_proj', 'v_proj']);
    expect(resolveTargetModules('all-linear', c)).toHaveLength(7);
    expect(resolveTargetModules(null, c)).toEqual(['q_proj', 'v_proj']);
    expect(resolveTargetModules(null, gpt2.config)).toEqual(['c_attn']);
    expect(resolveTargetModules(['c_proj'], gpt2.config)).toEqual(['c_proj']);
    expect(() => resolveTargetModules('model\\.layers\\.0\\.self_attn\\.q_proj', c)).toThrow(/adapts 1 of the 2 q_proj modules/);
    expect(() => resolveTargetModules('nothing', c)).toThrow(/matches no module/);
  });
});
