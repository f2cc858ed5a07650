import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { writeAdapterFolder } from '../../src/cli/model';
import { validateAxolotlConfig } from '../../src/formats/axolotlSchema';
import { nodeModelDir } from '../../src/formats/nodeByteSource';
import { exportPeftAdapter, importPeftAdapter } from '../../src/formats/peft';
import { bytesSource, readSafetensorsHeader, readTensor } from '../../src/formats/safetensors';
import { loadCausalLM, type LoadedModel } from '../../src/model/load';
import { defaultLoraConfig, LoraAdapter } from '../../src/model/lora';
import { autoLearningRate } from '../../src/train/autoRules';
import { nodeWriteFs, type WriteFs } from '../../src/util/atomicWrite';
import { expectClose, maxRelError } from '../helpers/compare';
import { getTestGpu } from '../helpers/gpu';
import { Rng } from '../helpers/random';
import { runCli } from './run';

const MODELS = join(__dirname, '..', 'fixtures', 'models');
const LLAMA = join(MODELS, 'tiny-llama');
const QWEN2 = join(MODELS, 'tiny-qwen2');
const GPT2 = join(MODELS, 'tiny-gpt2');
const tmp = mkdtempSync(join(tmpdir(), 'whittle-export-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ADAPTER = join(tmp, 'adapter');
const B = 2;
const T = 9;
let tokens: Uint32Array;

async function loadModel(dir: string): Promise<LoadedModel> {
  const folder = await nodeModelDir(dir);
  try {
    return await loadCausalLM(await getTestGpu(), folder, { dtype: 'f32' });
  } finally {
    await folder.close();
  }
}

/** The base with the adapter applied (not merged): the reference for the merged exports. */
let adaptedLogits: Float32Array;
let baseLogits: Float32Array;

beforeAll(async () => {
  ort.env.wasm.numThreads = 1;
  // A rank-4 adapter on every linear layer, with B random (a fresh adapter's B is zero, which
  // would make merged = base and the comparison vacuous).
  const gpu = await getTestGpu();
  const { model, config } = await loadModel(LLAMA);
  const adapter = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: 4, alpha: 8 }));
  adapter.initialize(11);
  const rng = new Rng(12);
  for (const m of adapter.modules.values()) adapter.write(m.b, rng.f32(m.linear.outFeatures * m.r, -0.5, 0.5));
  await writeAdapterFolder(ADAPTER, await exportPeftAdapter(adapter, { baseModelNameOrPath: LLAMA }));
  tokens = Uint32Array.from({ length: B * T }, () => rng.int(config.vocabSize));
  baseLogits = await model.logits(tokens, B, T);
  adaptedLogits = await model.logits(tokens, B, T, adapter);
  adapter.destroy();
  model.destroy();
  // The adapter must matter, or matching the adapted logits would prove nothing.
  expect(maxRelError(baseLogits, adaptedLogits)).toBeGreaterThan(1e-2);
});

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

describe('whittle export --format merged', () => {
  it('writes a folder whose model gives the adapted logits, sharded when asked, in the dtype asked', async () => {
    const out = join(tmp, 'merged');
    const run = await runCli(['export', LLAMA, '--format', 'merged', '--adapter', ADAPTER, '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/merged export written to .*merged \(\d+ files/);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const merged = await loadModel(out);
    const logits = await merged.model.logits(tokens, B, T);
    merged.model.destroy();
    expectClose(logits, adaptedLogits, 1e-4, 'merged vs base + adapter');

    // 70k parameters in f32 are ~280 KB: 100 KB shards give several, with an index.
    const sharded = join(tmp, 'merged-sharded');
    const run2 = await runCli(['export', LLAMA, '--format', 'merged', '--adapter', ADAPTER, '--out', sharded, '--max-shard-bytes', '100000']);
    expect(run2.code, run2.stderr).toBe(0);
    const shards = readdirSync(sharded).filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThan(2);
    expect(shards).toContain(`model-00001-of-${String(shards.length).padStart(5, '0')}.safetensors`);
    expect(existsSync(join(sharded, 'model.safetensors.index.json'))).toBe(true);
    const fromShards = await loadModel(sharded);
    expect(maxRelError(await fromShards.model.logits(tokens, B, T), logits)).toBe(0);
    fromShards.model.destroy();

    const half = join(tmp, 'merged-f16');
    // Lower case, as the other commands take it.
    const run3 = await runCli(['export', LLAMA, '--format', 'merged', '--adapter', ADAPTER, '--out', half, '--dtype', 'f16']);
    expect(run3.code, run3.stderr).toBe(0);
    expect(readJson(join(half, 'config.json')).torch_dtype).toBe('float16');
    const header = await readSafetensorsHeader(bytesSource(new Uint8Array(readFileSync(join(half, 'model.safetensors')))));
    expect(new Set([...header.tensors.values()].map((t) => t.dtype))).toEqual(new Set(['F16']));

    // A full disk at the weights: the error names the file and size, and no file is left behind.
    const full = join(tmp, 'merged-full-disk');
    const noRoomForWeights: WriteFs = {
      ...nodeWriteFs,
      writeFile: (path, data) =>
        path.includes('model.safetensors') ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })) : nodeWriteFs.writeFile(path, data),
    };
    const failed = await runCli(['export', LLAMA, '--format', 'merged', '--adapter', ADAPTER, '--out', full], { writeFs: noRoomForWeights });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/no space left on the device for .*merged-full-disk\/model\.safetensors: it needs [\d.]+ (KiB|MiB) \(\d+ bytes\)/);
    expect(readdirSync(full)).toEqual([]);
  });
});

describe('whittle export --format onnx', () => {
  it('writes a transformers.js folder whose model.onnx onnxruntime-web runs to the adapted logits', async () => {
    const out = join(tmp, 'onnx');
    const run = await runCli(['export', LLAMA, '--format', 'onnx', '--adapter', ADAPTER, '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(join(out, 'onnx', 'model.onnx'))).toBe(true);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(readdirSync(out).some((f) => f.endsWith('.safetensors'))).toBe(false);
    expect(readJson(join(out, 'config.json'))['transformers.js_config']).toEqual({ dtype: 'fp32' });

    const config = readJson(join(LLAMA, 'config.json')) as { num_hidden_layers: number; num_key_value_heads: number; hidden_size: number; num_attention_heads: number };
    const headDim = config.hidden_size / config.num_attention_heads;
    const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(join(out, 'onnx', 'model.onnx'))));
    const i64 = (f: (b: number, t: number) => number) => new ort.Tensor('int64', BigInt64Array.from({ length: B * T }, (_, i) => BigInt(f(Math.floor(i / T), i % T))), [B, T]);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: i64((b, t) => tokens[b * T + t]!),
      attention_mask: i64(() => 1),
      position_ids: i64((_, t) => t),
    };
    for (let l = 0; l < config.num_hidden_layers; l++) {
      for (const kind of ['key', 'value']) feeds[`past_key_values.${l}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [B, config.num_key_value_heads, 0, headDim]);
    }
    const result = await session.run(feeds);
    expectClose(result.logits!.data as Float32Array, adaptedLogits, 1e-4, 'ONNX vs base + adapter');
    await session.release();
  });
});

describe('whittle export --format peft --zip', () => {
  it('re-exports the adapter as a zip holding the same tensors', async () => {
    const out = join(tmp, 'peft-out');
    const run = await runCli(['export', LLAMA, '--format', 'peft', '--adapter', ADAPTER, '--out', out, '--zip']);
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(out)).toBe(false);
    const files = unzipSync(new Uint8Array(readFileSync(out + '.zip')));
    expect(Object.keys(files).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    // An existing zip is refused, as a non-empty folder is.
    const again = await runCli(['export', LLAMA, '--format', 'peft', '--adapter', ADAPTER, '--out', out, '--zip']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${out}.zip already exists; choose another --out or remove it`);
    const config = JSON.parse(new TextDecoder().decode(files['adapter_config.json'])) as Record<string, unknown>;
    expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, base_model_name_or_path: LLAMA });
    const original = bytesSource(new Uint8Array(readFileSync(join(ADAPTER, 'adapter_model.safetensors'))));
    const copy = bytesSource(files['adapter_model.safetensors']!);
    const [h0, h1] = [await readSafetensorsHeader(original), await readSafetensorsHeader(copy)];
    expect([...h1.tensors.keys()].sort()).toEqual([...h0.tensors.keys()].sort());
    expect(h1.tensors.size).toBe(2 * 2 * 7);
    for (const name of h0.tensors.keys()) {
      expect(maxRelError(await readTensor(copy, h1, name, { as: 'f32' }), await readTensor(original, h0, name, { as: 'f32' })), name).toBe(0);
    }
    // The zipped adapter imports onto the model.
    const dir = join(tmp, 'peft-unzipped');
    mkdirSync(dir);
    for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
    const { model } = await loadModel(LLAMA);
    const folder = await nodeModelDir(dir);
    const adapter = await importPeftAdapter(await getTestGpu(), model, folder);
    await folder.close();
    expectClose(await model.logits(tokens, B, T, adapter), adaptedLogits, 1e-6, 'zipped adapter');
    adapter.destroy();
    model.destroy();
  });
});

describe('whittle export --format cluster', () => {
  it('turns a training run into an Axolotl config that validates, with the job\'s settings and data', async () => {
    const lines = Array.from({ length: 4 }, (_, i) =>
      JSON.stringify({ messages: [{ role: 'user', content: `${i}+1` }, { role: 'assistant', content: `${i + 1}` }] }),
    );
    const data = join(tmp, 'train.jsonl');
    writeFileSync(data, lines.join('\n') + '\n');
    const jobDir = join(tmp, 'job');
    const train = await runCli(['train', LLAMA, data, '--out', jobDir, '--epochs', '1', '--batch-size', '2', '--lora-r', '4', '--learning-rate', '3e-3', '--seed', '9', '--dtype', 'f32', '--allow-small']);
    expect(train.code, train.stderr).toBe(0);
    const hp = (readJson(join(jobDir, 'job.json')) as { hyperparameters: Record<string, unknown> & { lora: { r: number; alpha: number; targetModules: string[] } } }).hyperparameters;

    const out = join(tmp, 'cluster');
    const run = await runCli(['export', LLAMA, '--format', 'cluster', '--job', jobDir, '--out', out, '--base-model', 'org/tiny-llama']);
    expect(run.code, run.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['README.md', 'axolotl.yaml', 'train.jsonl', 'train_trl.py']);
    expect(readFileSync(join(out, 'train.jsonl'), 'utf8')).toBe(readFileSync(data, 'utf8'));
    const yaml = parse(readFileSync(join(out, 'axolotl.yaml'), 'utf8')) as Record<string, unknown>;
    expect(validateAxolotlConfig(yaml)).toEqual([]);
    expect(yaml).toMatchObject({
      base_model: 'org/tiny-llama',
      lora_r: 4,
      lora_alpha: hp.lora.alpha,
      lora_target_modules: hp.lora.targetModules,
      learning_rate: 3e-3,
      micro_batch_size: 2,
      num_epochs: 1,
      seed: 9,
      datasets: [{ path: 'train.jsonl', type: 'chat_template' }],
    });
    expect(readFileSync(join(out, 'train_trl.py'), 'utf8')).toContain('"base_model": "org/tiny-llama"');

    // From flags: the auto values resolve against the file, as whittle train would; zipped.
    const flagsOut = join(tmp, 'cluster-flags');
    const run2 = await runCli(['export', LLAMA, '--format', 'cluster', '--train-file', data, '--epochs', '2', '--lora-r', '8', '--lora-alpha', '16', '--seed', '1', '--out', flagsOut, '--zip']);
    expect(run2.code, run2.stderr).toBe(0);
    const files = unzipSync(new Uint8Array(readFileSync(flagsOut + '.zip')));
    expect(Object.keys(files).sort()).toEqual(['README.md', 'axolotl.yaml', 'train.jsonl', 'train_trl.py']);
    const yaml2 = parse(new TextDecoder().decode(files['axolotl.yaml'])) as Record<string, unknown>;
    expect(validateAxolotlConfig(yaml2)).toEqual([]);
    expect(yaml2).toMatchObject({ base_model: LLAMA, num_epochs: 2, lora_r: 8, lora_alpha: 16, seed: 1, learning_rate: autoLearningRate(48), micro_batch_size: 1 });
    // The width rule: 2e-4 x 4096 / 48 is above the cap, so the tiny Llama gets 1e-2.
    expect(yaml2.learning_rate).toBe(1e-2);
    expect(yaml2.lora_target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);

    const clash = await runCli(['export', LLAMA, '--format', 'cluster', '--job', jobDir, '--lora-r', '8', '--out', join(tmp, 'x')]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(/--lora-r cannot be combined with --job/);
    const notJob = await runCli(['export', LLAMA, '--format', 'cluster', '--job', ADAPTER, '--out', join(tmp, 'x')]);
    expect(notJob.code).toBe(1);
    expect(notJob.stderr).toMatch(/has no job\.json/);
  });
});

describe('whittle export errors', () => {
  it('exits 1 with a clear message for a missing, mismatching or absent adapter and an unknown format', async () => {
    const out = join(tmp, 'never');
    const cases: [string[], RegExp][] = [
      [['--format', 'merged'], /--format merged needs --adapter DIR/],
      [['--format', 'peft'], /--format peft needs --adapter DIR/],
      [['--format', 'merged', '--adapter', join(tmp, 'absent')], /adapter folder .*absent does not exist/],
      [['--format', 'merged', '--adapter', LLAMA], /adapter folder .*tiny-llama has no adapter_config\.json/],
      [['--format', 'zip', '--adapter', ADAPTER], /--format must be one of peft, merged, onnx, cluster, got "zip"/],
      [['--adapter', ADAPTER], /--format is required/],
      [['--format', 'onnx', '--dtype', 'F16'], /--dtype applies to --format merged, not onnx/],
    ];
    for (const [args, message] of cases) {
      const run = await runCli(['export', LLAMA, '--out', out, ...args]);
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr, args.join(' ')).toMatch(message);
    }
    // tiny-qwen2 has other dimensions; GPT-2 other module names. Merging checks without a GPU,
    // the peft re-export by importing.
    const qwen = await runCli(['export', QWEN2, '--format', 'merged', '--adapter', ADAPTER, '--out', out]);
    expect(qwen.code).toBe(1);
    expect(qwen.stderr).toMatch(/the adapter in .*adapter does not fit the model in .*tiny-qwen2: .*lora_A/);
    const gpt2 = await runCli(['export', GPT2, '--format', 'peft', '--adapter', ADAPTER, '--out', out]);
    expect(gpt2.code).toBe(1);
    expect(gpt2.stderr).toMatch(/does not fit the model in .*tiny-gpt2: target_modules .* not in this gpt2 model/);
    expect(existsSync(out)).toBe(false);

    const notEmpty = await runCli(['export', LLAMA, '--format', 'merged', '--adapter', ADAPTER, '--out', ADAPTER]);
    expect(notEmpty.code).toBe(1);
    expect(notEmpty.stderr).toMatch(/is not empty/);

    const help = await runCli(['export', '--help']);
    expect(help.code).toBe(0);
    for (const f of ['--format peft|merged|onnx|cluster', '--adapter DIR', '--zip', '--job DIR', '--max-shard-bytes N', '--opset N']) expect(help.stdout).toContain(f);
    const top = await runCli(['--help']);
    expect(top.stdout).toMatch(/\n {2}export +Write an adapter/);
  });
});
