// The playground's ONNX Runtime Web engine (src/generation/onnxGeneration.ts) through JobRunner.generate
// with engine 'onnxruntime': the adapter merged, exported to ONNX, run in onnxruntime-web's WASM
// backend in Node, sampled with the engine's TypeScript sampling reference. Greedy output must be
// our WebGPU engine's, token for token, for an imported PEFT adapter, the base model, a job's final
// adapter and a checkpoint.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { beforeAll, describe, expect, it } from 'vitest';

import type { ModelSource } from '../../src/jobs/job';
import { OrtSessionCache, type OrtCausalLM, type OrtModule } from '../../src/generation/onnxGeneration';
import type { GenerateParams, TokenDelta } from '../../src/generation/generationText';
import type { AdapterRef } from '../../src/jobs/adapters';
import type { JobRunner } from '../../src/jobs/runner';
import { MemoryJobStore } from '../../src/jobs/store';
import { addTinyLlama, FIXTURES, makeRunner, TRAIN_JSONL } from '../jobs/helpers';

const ADAPTERS = join(FIXTURES, 'adapters');

function peftRef(name: string): AdapterRef {
  const dir = join(ADAPTERS, name);
  return {
    kind: 'peft',
    config: JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as unknown,
    weights: new Blob([readFileSync(join(dir, 'adapter_model.safetensors'))]),
  };
}

/** Sessions created (each loads ORT and exports the model once). */
let loads = 0;
const loadOrt = (): Promise<OrtModule> => {
  loads++;
  // The Node build, one thread (no worker files needed).
  ort.env.wasm.numThreads = 1;
  return Promise.resolve(ort as unknown as OrtModule);
};

describe('ONNX Runtime Web generation in the runner (tiny Llama)', () => {
  let runner: JobRunner;
  let source: ModelSource;
  // f32 on our engine too: greedy equality is between two f32 computations of one merged model.
  const base = (): Omit<GenerateParams, 'adapter'> => ({ model: source, dtype: 'f32', messages: [{ role: 'user', content: 'Capital of France?' }], maxNewTokens: 10, temperature: 0 });

  async function both(params: GenerateParams) {
    const deltas: TokenDelta[] = [];
    const viaOrt = await runner.generate({ ...params, engine: 'onnxruntime' }, (d) => deltas.push(d));
    const ours = await runner.generate({ ...params, engine: 'whittle' });
    return { viaOrt, ours, deltas };
  }

  beforeAll(async () => {
    const store = new MemoryJobStore();
    runner = makeRunner(store, { loadOrt });
    source = await addTinyLlama(store.blobs);
  });

  it('gives our engine’s greedy tokens and text for an imported PEFT adapter, streaming token by token', async () => {
    const { viaOrt, ours, deltas } = await both({ ...base(), adapter: peftRef('tiny-llama') });
    expect(viaOrt.tokens.length).toBeGreaterThan(3);
    expect(viaOrt.tokens).toEqual(ours.tokens);
    expect(viaOrt.text).toBe(ours.text);
    expect(viaOrt.finish).toBe(ours.finish);
    expect(viaOrt.promptTokens).toBe(ours.promptTokens);
    expect(deltas.map((d) => d.index)).toEqual(viaOrt.tokens.map((_, i) => i));
    expect(deltas.map((d) => d.tokenId)).toEqual(viaOrt.tokens);
    expect(deltas.map((d) => d.text).join('')).toBe(viaOrt.text);
    expect(viaOrt.tokensPerSecond).toBeGreaterThan(0);

    // The base model differs from the adapted one, and ORT agrees with us there too.
    const plain = await both({ ...base(), adapter: { kind: 'base' } });
    expect(plain.viaOrt.tokens).toEqual(plain.ours.tokens);
    expect(plain.viaOrt.tokens).not.toEqual(viaOrt.tokens);
  });

  it('samples with temperature and top-p from the seed as our engine does, and honours stop strings and maxNewTokens', async () => {
    const sampled = { ...base(), adapter: peftRef('tiny-llama'), temperature: 0.9, topP: 0.9, maxNewTokens: 12 };
    const a = await both({ ...sampled, seed: 11 });
    const again = await runner.generate({ ...sampled, seed: 11, engine: 'onnxruntime' });
    const other = await runner.generate({ ...sampled, seed: 12, engine: 'onnxruntime' });
    expect(again.tokens).toEqual(a.viaOrt.tokens);
    // The tiny model's logits are far from the draw boundaries: the same seed, the same draws.
    expect(a.viaOrt.tokens).toEqual(a.ours.tokens);
    expect(other.tokens).not.toEqual(a.viaOrt.tokens);

    const short = await runner.generate({ ...sampled, seed: 11, maxNewTokens: 3, engine: 'onnxruntime' });
    expect(short.tokens).toEqual(a.viaOrt.tokens.slice(0, 3));
    expect(short.finish).toBe('length');
    // A stop string from the sampled text: its first letter after the start (tiny random models
    // also emit bytes that decode to U+FFFD, which the streamer holds back).
    const at = a.ours.text.slice(1).search(/[A-Za-z]/) + 1;
    expect(at, a.ours.text).toBeGreaterThan(0);
    const stopAt = a.ours.text[at]!;
    const cut = await runner.generate({ ...sampled, seed: 11, stop: [stopAt], engine: 'onnxruntime' });
    const ourCut = await runner.generate({ ...sampled, seed: 11, stop: [stopAt], engine: 'whittle' });
    expect(cut.finish).toBe('stop');
    expect(cut.text).toBe(ourCut.text);
    expect(cut.text).toBe(a.ours.text.slice(0, a.ours.text.indexOf(stopAt)));
  });

  it('names the problem when the adapter does not fit the model', async () => {
    const gpt2Adapter = peftRef('tiny-gpt2');
    const err = await runner.generate({ ...base(), adapter: gpt2Adapter, engine: 'onnxruntime' }).then(
      () => new Error('it generated'),
      (e: unknown) => e as Error,
    );
    expect(err.name).toMatch(/PeftAdapterError|MergeError/);
    expect(err.message.length).toBeGreaterThan(10);
    // Our engine refuses the same adapter.
    await expect(runner.generate({ ...base(), adapter: gpt2Adapter, engine: 'whittle' })).rejects.toThrow();
  });

  it('runs a job’s final adapter and its checkpoint as our engine does', async () => {
    const train = await runner.uploadFile('train.jsonl', new Blob([TRAIN_JSONL]), { model: source });
    // One step (10 examples, batch 10), a high learning rate so the adapter moves the outputs.
    const job = await runner.createJob({
      model: source,
      trainingFileId: train.file.id,
      hyperparameters: { epochs: 1, batchSize: 10, learningRate: 5e-2, warmupSteps: 0, seed: 3, loraR: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj', 'up_proj'], maxSeqLen: 64 },
      dtype: 'f32',
    });
    await runner.idle();
    const done = await runner.getJob(job.id);
    expect(done.status).toBe('succeeded');
    const params = base();
    const checkpoint = { kind: 'checkpoint', jobId: job.id, name: done.checkpoints.at(-1)!.name } as const;
    const finals: number[][] = [];
    for (const adapter of [{ kind: 'job', jobId: job.id }, checkpoint] as const) {
      const viaOrt = await runner.generate({ ...params, adapter, engine: 'onnxruntime' });
      const ours = await runner.generate({ ...params, adapter, engine: 'whittle' });
      expect(viaOrt.tokens, adapter.kind).toEqual(ours.tokens);
      expect(viaOrt.text).toBe(ours.text);
      finals.push(viaOrt.tokens);
    }
    // One step, one checkpoint at its end: the final adapter is that checkpoint's.
    expect(finals[1]).toEqual(finals[0]);
    // The session is cached per (model, adapter): running it again needs no new export.
    const before = loads;
    const again = await runner.generate({ ...params, adapter: checkpoint, engine: 'onnxruntime' });
    expect(again.tokens).toEqual(finals[1]);
    expect(loads).toBe(before);
  });

  it('keeps the most recently used sessions and releases the others', async () => {
    const released: string[] = [];
    const fake = (name: string) => ({ release: () => Promise.resolve(void released.push(name)) }) as unknown as OrtCausalLM;
    const cache = new OrtSessionCache(2);
    let created = 0;
    const make = (name: string) => () => Promise.resolve((created++, fake(name)));
    await cache.get('a', make('a'));
    await cache.get('b', make('b'));
    await cache.get('a', make('a'));
    expect(created).toBe(2);
    await cache.get('c', make('c'));
    await Promise.resolve();
    await new Promise((r) => setTimeout(r, 0));
    expect(released).toEqual(['b']);
    expect(cache.keys()).toEqual(['a', 'c']);
    // A failed creation is not cached.
    await expect(cache.get('d', () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    await new Promise((r) => setTimeout(r, 0));
    expect(cache.keys()).not.toContain('d');
    await cache.clear();
    expect(released.sort()).toEqual(['a', 'b', 'c']);
  });
});
