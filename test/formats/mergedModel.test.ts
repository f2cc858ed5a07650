import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesModelDir, loadHfModelDir, type HfModelFiles } from '../../src/formats/hfModelDir';
import { exportMergedModel, mergeLoraInto, MergeError, readPeftAdapterTensors, toBf16Array, type AdapterTensors } from '../../src/formats/mergedModel';
import { exportPeftAdapter } from '../../src/formats/peft';
import { bytesSource, readSafetensorsHeader } from '../../src/formats/safetensors';
import { bf16BitsToF32Array } from '../../src/util/f16';
import { parseModelConfig } from '../../src/model/config';
import { loadCausalLM, type LoadedModel } from '../../src/model/load';
import { defaultLoraConfig, LoraAdapter, type LoraConfig } from '../../src/model/lora';
import { Rng } from '../../src/util/random';
import { expectClose, maxRelError } from '../helpers/compare';
import { getTestGpu } from '../helpers/gpu';
import { FIXTURES, readGolden } from '../model/golden';

function modelFolder(name: string): Map<string, Uint8Array> {
  const dir = join(FIXTURES, 'models', name);
  return new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
}

/** The base model's files, the golden adapter's tensors and its LoRA config. */
async function fixture(name: string): Promise<{ files: HfModelFiles; folder: Map<string, Uint8Array>; tensors: Map<string, { shape: number[]; data: Float32Array }>; lora: LoraConfig; golden: Awaited<ReturnType<typeof readGolden>> }> {
  const folder = modelFolder(name);
  const files = await loadHfModelDir(bytesModelDir(folder));
  const golden = await readGolden(name);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const n of golden.names) if (n.startsWith('base_model.')) tensors.set(n, { shape: [...golden.shape(n)], data: await golden.f32(n) });
  const lora = defaultLoraConfig(parseModelConfig(files.config), { r: Number(golden.metadata.rank), alpha: Number(golden.metadata.alpha) });
  return { files, folder, tensors, lora, golden };
}

const loaded: LoadedModel[] = [];
afterAll(() => {
  for (const m of loaded) m.model.destroy();
});

async function load(files: Map<string, Uint8Array>): Promise<LoadedModel> {
  const m = await loadCausalLM(await getTestGpu(), bytesModelDir(files), { dtype: 'f32' });
  loaded.push(m);
  return m;
}

/** Logits of the base with the adapter applied unmerged (the engine's own LoRA path). */
async function unmergedLogits(base: LoadedModel, tensors: AdapterTensors, lora: LoraConfig, tokens: Uint32Array, B: number, T: number): Promise<Float32Array> {
  const adapter = new LoraAdapter(await getTestGpu(), base.config, base.model.weights, lora);
  adapter.loadTensors((n) => tensors.get(n) as { shape: number[]; data: Float32Array } | undefined);
  try {
    return await base.model.logits(tokens, B, T, adapter);
  } finally {
    adapter.destroy();
  }
}

describe.each([
  ['tiny-llama', undefined],
  ['tiny-qwen2', 'F32'],
  ['tiny-gpt2', undefined],
] as const)('%s merged', (name, dtype) => {
  it('loads as a plain model whose logits equal base + adapter unmerged (f32, 1e-4) and PyTorch LoRA logits', async () => {
    const { files, folder, tensors, lora, golden } = await fixture(name);
    const config = parseModelConfig(files.config);
    const merged = await exportMergedModel(files, tensors, lora, config, dtype ? { dtype } : {});
    expect([...merged.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const [B, T] = golden.shape('tokens') as [number, number];
    const tokens = Uint32Array.from(await golden.i32('tokens'));
    const base = await load(folder);
    const want = await unmergedLogits(base, tensors, lora, tokens, B, T);
    const m = await load(merged);
    const got = await m.model.logits(tokens, B, T);
    expectClose(got, want, 1e-4, `${name} merged vs unmerged`);
    expectClose(got, await golden.f32('lora_logits'), 1e-4, `${name} merged vs PyTorch`);
    // The merge must actually change the model.
    expect(maxRelError(await base.model.logits(tokens, B, T), want)).toBeGreaterThan(1e-2);
    expect(m.files.tokenizerJson).toEqual(files.tokenizerJson);
    expect(m.files.generationConfig).toEqual(files.generationConfig);
  });
});

describe('merged model files', () => {
  it('shards over maxShardBytes with an index that loads and gives the same logits', async () => {
    const { files, tensors, lora, golden } = await fixture('tiny-llama');
    const config = parseModelConfig(files.config);
    const single = await exportMergedModel(files, tensors, lora, config);
    const maxShardBytes = 40_000;
    const sharded = await exportMergedModel(files, tensors, lora, config, { maxShardBytes });
    const shardNames = [...sharded.keys()].filter((n) => n.endsWith('.safetensors')).sort();
    expect(shardNames.length).toBeGreaterThan(2);
    shardNames.forEach((n, i) => expect(n).toBe(`model-${String(i + 1).padStart(5, '0')}-of-${String(shardNames.length).padStart(5, '0')}.safetensors`));
    expect(sharded.has('model.safetensors')).toBe(false);
    const index = JSON.parse(new TextDecoder().decode(sharded.get('model.safetensors.index.json')!)) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    let total = 0;
    const mapped = new Set<string>();
    for (const n of shardNames) {
      const header = await readSafetensorsHeader(bytesSource(sharded.get(n)!));
      let bytes = 0;
      for (const t of header.tensors.values()) {
        bytes += t.byteLength;
        expect(index.weight_map[t.name]).toBe(n);
        mapped.add(t.name);
      }
      // A shard exceeds the limit only when it holds one tensor bigger than the limit.
      if (header.tensors.size > 1) expect(bytes).toBeLessThanOrEqual(maxShardBytes);
      total += bytes;
    }
    expect(index.metadata.total_size).toBe(total);
    expect(mapped).toEqual(new Set(files.weights.tensors.keys()));
    expect(Object.keys(index.weight_map).length).toBe(files.weights.tensors.size);

    const [B, T] = golden.shape('tokens') as [number, number];
    const tokens = Uint32Array.from(await golden.i32('tokens'));
    const a = await load(single);
    const b = await load(sharded);
    expectClose(await b.model.logits(tokens, B, T), await a.model.logits(tokens, B, T), 1e-6, 'sharded vs single file');
  });

  it('changes exactly the targeted weights and copies every other tensor bit for bit', async () => {
    const { files, tensors, lora } = await fixture('tiny-gpt2');
    const config = parseModelConfig(files.config);
    const only = { ...lora, targetModules: ['c_attn'] };
    const subset = new Map([...tensors].filter(([k]) => k.includes('.c_attn.')));
    const merged = await exportMergedModel(files, subset, only, config);
    const out = await loadHfModelDir(bytesModelDir(merged));
    for (const name of files.weights.tensors.keys()) {
      const before = await files.weights.read(name, { as: 'raw' });
      const after = await out.weights.read(name, { as: 'raw' });
      expect(out.weights.tensors.get(name)!.dtype).toBe(files.weights.tensors.get(name)!.dtype);
      if (name.endsWith('c_attn.weight')) expect(Buffer.compare(before, after)).not.toBe(0);
      else expect(Buffer.compare(before, after), name).toBe(0);
    }
    expect(out.config).toEqual(files.config);
  });

  it('keeps a bf16 base in bf16 by default (logits within bf16 rounding) and converts on request', async () => {
    const { files, tensors, lora, golden } = await fixture('tiny-qwen2');
    const config = parseModelConfig(files.config);
    const merged = await exportMergedModel(files, tensors, lora, config);
    const out = await loadHfModelDir(bytesModelDir(merged));
    for (const [n, t] of out.weights.tensors) expect(t.dtype, n).toBe(files.weights.tensors.get(n)!.dtype);
    expect((out.config as { torch_dtype: string }).torch_dtype).toBe('bfloat16');
    const [B, T] = golden.shape('tokens') as [number, number];
    const tokens = Uint32Array.from(await golden.i32('tokens'));
    const m = await load(merged);
    expectClose(await m.model.logits(tokens, B, T), await golden.f32('lora_logits'), 3e-2, 'bf16 merged vs PyTorch');

    const f16 = await exportMergedModel(files, tensors, lora, config, { dtype: 'F16' });
    const f16Files = await loadHfModelDir(bytesModelDir(f16));
    for (const t of f16Files.weights.tensors.values()) expect(t.dtype).toBe('F16');
    expect((f16Files.config as { torch_dtype: string }).torch_dtype).toBe('float16');
  });

  it('merges a PEFT adapter read from its files the same as one read from the GPU', async () => {
    const { files, folder, tensors, lora } = await fixture('tiny-qwen2');
    const config = parseModelConfig(files.config);
    const base = await load(folder);
    const adapter = new LoraAdapter(await getTestGpu(), base.config, base.model.weights, { ...lora, useRslora: true });
    adapter.loadTensors((n) => tensors.get(n));
    try {
      const peft = await exportPeftAdapter(adapter, { baseModelNameOrPath: 'tiny-qwen2' });
      const read = await readPeftAdapterTensors({ adapterConfig: JSON.parse(JSON.stringify(peft.adapterConfig)), adapterModel: peft.adapterModel }, config);
      expect({ ...read.lora, targetModules: [...read.lora.targetModules].sort() }).toEqual({ ...lora, useRslora: true, targetModules: [...lora.targetModules].sort() });
      const viaFiles = await exportMergedModel(files, read.tensors, read.lora, config);
      const viaGpu = await exportMergedModel(files, await adapter.readTensors(), adapter.config, config);
      expect(Buffer.compare(viaFiles.get('model.safetensors')!, viaGpu.get('model.safetensors')!)).toBe(0);
    } finally {
      adapter.destroy();
    }
  });

  it('refuses an adapter that does not fit the model', async () => {
    const { files, tensors, lora } = await fixture('tiny-llama');
    const config = parseModelConfig(files.config);
    const missing = new Map(tensors);
    const dropped = [...missing.keys()].find((k) => k.includes('layers.1.mlp.down_proj.lora_B'))!;
    missing.delete(dropped);
    await expect(exportMergedModel(files, missing, lora, config)).rejects.toThrow(MergeError);
    await expect(exportMergedModel(files, missing, lora, config)).rejects.toThrow(`the adapter lacks ${dropped}`);
    const extra = new Map(tensors);
    extra.set('base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight', { shape: [4, 48], data: new Float32Array(4 * 48) });
    await expect(exportMergedModel(files, extra, lora, config)).rejects.toThrow(/layers\.7\.self_attn\.q_proj.*matches no targeted weight/);
    await expect(exportMergedModel(files, tensors, { ...lora, targetModules: [...lora.targetModules, 'c_attn'] }, config)).rejects.toThrow(
      'target_modules c_attn match no weight of this llama model',
    );
    const wrongShape = new Map(tensors);
    const key = [...wrongShape.keys()].find((k) => k.includes('layers.0.self_attn.k_proj.lora_B'))!;
    wrongShape.set(key, { shape: [48, 4], data: new Float32Array(48 * 4) });
    await expect(exportMergedModel(files, wrongShape, lora, config)).rejects.toThrow(/k_proj: lora_A \[4, 48\] and lora_B \[48, 4\] do not fit/);
  });
});

describe('merge arithmetic', () => {
  it('mergeLoraInto equals W + s·B·A (Linear) and W + s·(B·A)ᵀ (Conv1D) computed naively in f64', () => {
    const rng = new Rng(7);
    for (const [outF, inF, r] of [[7, 5, 3], [33, 17, 1], [12, 40, 8]] as const) {
      const a = rng.f32(r * inF, -1, 1);
      const b = rng.f32(outF * r, -1, 1);
      const s = 1.75;
      for (const conv1d of [false, true]) {
        const w = rng.f32(outF * inF, -1, 1);
        const want = new Float64Array(outF * inF);
        for (let o = 0; o < outF; o++) {
          for (let i = 0; i < inF; i++) {
            let d = 0;
            for (let k = 0; k < r; k++) d += b[o * r + k]! * a[k * inF + i]!;
            const at = conv1d ? i * outF + o : o * inF + i;
            want[at] = w[at]! + s * d;
          }
        }
        mergeLoraInto(w, a, b, outF, inF, r, s, conv1d);
        expectClose(w, want, 1e-6, `merge ${outF}x${inF} r${r} conv1d=${conv1d}`);
      }
    }
  });

  it('toBf16Array rounds to nearest even and keeps NaN and infinities', () => {
    const f = new Float32Array([1, -2.5, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, Infinity, -Infinity, NaN, 3.389e38, 3.4e38]);
    const back = bf16BitsToF32Array(toBf16Array(f));
    expect([...back.slice(0, 7)]).toEqual([1, -2.5, 1, 1 + 2 ** -6, 1 + 2 ** -7, Infinity, -Infinity]);
    expect(back[7]).toBeNaN();
    expect(back[8]).toBe((2 - 2 ** -7) * 2 ** 127); // the largest bf16
    expect(back[9]).toBe(Infinity); // past it, as torch rounds
  });
});
