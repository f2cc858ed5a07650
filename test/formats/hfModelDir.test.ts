import { describe, expect, it } from 'vitest';

import {
  blobModelDir,
  bytesModelDir,
  filesModelDir,
  loadHfModelDir,
  ModelDirError,
  openModelWeights,
  readModelJson,
} from '../../src/formats/hfModelDir';
import { SafetensorsError, writeSafetensors } from '../../src/formats/safetensors';

const enc = new TextEncoder();
const json = (v: unknown) => enc.encode(JSON.stringify(v));

const shardA = writeSafetensors([{ name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]);
const shardB = writeSafetensors([{ name: 'b', dtype: 'F32', shape: [1], data: new Float32Array([3]) }]);
const index = { metadata: { total_size: 12 }, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } };

describe('Hugging Face model folders', () => {
  it('loads config, tokenizer files, chat_template.jinja and sharded weights', async () => {
    const dir = bytesModelDir({
      'config.json': json({ model_type: 'llama' }),
      'tokenizer.json': json({ model: {} }),
      'tokenizer_config.json': json({ eos_token: '</s>' }),
      'chat_template.jinja': enc.encode('{{ messages[0].content }}'),
      'model.safetensors.index.json': json(index),
      'model-00001-of-00002.safetensors': shardA,
      'model-00002-of-00002.safetensors': shardB,
    });
    const files = await loadHfModelDir(dir);
    expect(files.config).toEqual({ model_type: 'llama' });
    expect(files.tokenizerConfig).toEqual({ eos_token: '</s>' });
    expect(files.generationConfig).toBeNull();
    expect(files.chatTemplate).toBe('{{ messages[0].content }}');
    expect(files.weights.files).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(Array.from(await files.weights.read('b', { as: 'f32' }))).toEqual([3]);
  });

  it('uses model.safetensors when there is no index', async () => {
    const weights = await openModelWeights(bytesModelDir({ 'model.safetensors': shardA, 'adapter_model.safetensors': shardB }));
    expect([...weights.tensors.keys()]).toEqual(['a']);
  });

  it('explains what is missing', async () => {
    const err = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as Error);
    const e1 = await err(loadHfModelDir(bytesModelDir({ 'model.safetensors': shardA })));
    expect(e1).toBeInstanceOf(ModelDirError);
    expect(e1!.message).toBe('the model folder has no config.json');
    const e2 = await err(openModelWeights(bytesModelDir({ 'model.safetensors.index.json': json(index), 'model-00001-of-00002.safetensors': shardA })));
    expect(e2!.message).toMatch(/lists model-00002-of-00002.safetensors but the folder does not have it/);
    const e3 = await err(openModelWeights(bytesModelDir({ 'model-00001-of-00002.safetensors': shardA })));
    expect(e3!.message).toMatch(/sharded weights but no model.safetensors.index.json/);
    const e4 = await err(openModelWeights(bytesModelDir({ 'pytorch_model.bin': new Uint8Array(4) })));
    expect(e4!.message).toMatch(/PyTorch pickle weights/);
    const e5 = await err(readModelJson(bytesModelDir({ 'config.json': enc.encode('{"a":') }), 'config.json'));
    expect(e5!.message).toMatch(/config.json is not valid JSON/);
    const e6 = await err(openModelWeights(bytesModelDir({ 'model.safetensors.index.json': json({ weight_map: 3 }) })));
    expect(e6).toBeInstanceOf(SafetensorsError);
    const e7 = await err(openModelWeights(bytesModelDir({ 'model.safetensors': shardA.subarray(0, 40) })));
    expect(e7!.message).toMatch(/^model.safetensors: header length/);
  });

  it('reads and checks whittle_finetune.json, an optional file', async () => {
    const folder = (extra: Record<string, Uint8Array>) => bytesModelDir({ 'config.json': json({}), 'model.safetensors': shardA, ...extra });
    expect((await loadHfModelDir(folder({}))).finetune).toBeNull();
    const ok = await loadHfModelDir(folder({ 'whittle_finetune.json': json({ learning_rate: 3e-3, lora_r: 16, lora_alpha: 32, epochs: 6, batch_size: 4, target_modules: ['q_proj'] }) }));
    expect(ok.finetune).toEqual({ learningRate: 3e-3, loraR: 16, loraAlpha: 32, epochs: 6, batchSize: 4, targetModules: ['q_proj'] });
    const bad = async (v: unknown) => {
      const e = await loadHfModelDir(folder({ 'whittle_finetune.json': json(v) })).then(() => null, (x: unknown) => x as ModelDirError);
      expect(e).toBeInstanceOf(ModelDirError);
      expect(e!.file).toBe('whittle_finetune.json');
      return e!.message;
    };
    expect(await bad({ lora_r: 8, lora_alpha: 16 })).toBe('whittle_finetune.json: "learning_rate" is required');
    expect(await bad({ learning_rate: '3e-3', lora_r: 8, lora_alpha: 16 })).toBe('whittle_finetune.json: "learning_rate" must be a positive number, got "3e-3"');
    expect(await bad({ learning_rate: 1e-3, lora_r: 8.5, lora_alpha: 16 })).toMatch(/"lora_r" must be a positive integer, got 8.5/);
    expect(await bad({ learning_rate: 1e-3, lora_r: 8, lora_alpha: 16, lr: 1 })).toMatch(/unknown field "lr"/);
    expect(await bad({ learning_rate: 1e-3, lora_r: 8, lora_alpha: 16, target_modules: [] })).toMatch(/"target_modules" must be a non-empty list/);
    expect(await bad([1])).toBe('whittle_finetune.json: must be a JSON object');
  });

  it('reads Blobs and picked folders (webkitRelativePath)', async () => {
    const blobs = blobModelDir(new Map([['model.safetensors', new Blob([shardA.slice()])]]));
    expect(Array.from(await (await openModelWeights(blobs)).read('a', { as: 'f32' }))).toEqual([1, 2]);

    const picked = (name: string, data: Uint8Array) => {
      const file = new File([data.slice()], name.split('/').at(-1)!);
      Object.defineProperty(file, 'webkitRelativePath', { value: name });
      return file;
    };
    const dir = filesModelDir([picked('my-model/config.json', json({ model_type: 'gpt2' })), picked('my-model/model.safetensors', shardB)]);
    expect(dir.fileNames).toEqual(['config.json', 'model.safetensors']);
    const files = await loadHfModelDir(dir);
    expect(files.config).toEqual({ model_type: 'gpt2' });
    expect(Array.from(await files.weights.read('b', { as: 'f32' }))).toEqual([3]);
  });
});
