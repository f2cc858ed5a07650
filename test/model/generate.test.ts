import { describe, expect, it } from 'vitest';
import { generate } from '../../src/model/generate';
import { LoraAdapter, defaultLoraConfig } from '../../src/model/lora';
import { getTestGpu } from '../helpers/gpu';
import { openFixtureModel } from '../helpers/model';
import { readGolden } from './golden';

describe.each(['tiny-llama', 'tiny-qwen2', 'tiny-gpt2'])('%s generation', (name) => {
  it('is token-identical to PyTorch greedy decoding, with and without the adapter', async () => {
    const gpu = await getTestGpu();
    const { model, config } = await openFixtureModel(name);
    const golden = await readGolden(name);
    const [B, total] = golden.shape('greedy_base') as [number, number];
    const prompt = 5;
    const want = async (key: string) => {
      const flat = await golden.i32(key);
      return Array.from({ length: B }, (_, b) => Array.from(flat.subarray(b * total, (b + 1) * total)));
    };
    const base = await want('greedy_base');
    const prompts = base.map((row) => row.slice(0, prompt));
    const opts = { maxNewTokens: total - prompt, eosTokenIds: [] };
    const got = await generate(model, prompts, null, opts);
    expect(got.tokens).toEqual(base.map((row) => row.slice(prompt)));
    expect(got.finish).toEqual(prompts.map(() => 'length'));

    const adapter = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: Number(golden.metadata.rank), alpha: Number(golden.metadata.alpha) }));
    const init = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const n of golden.names) if (n.startsWith('base_model.')) init.set(n, { shape: [...golden.shape(n)], data: await golden.f32(n) });
    adapter.loadTensors((n) => init.get(n));
    const lora = await want('greedy_lora');
    const gotLora = await generate(model, prompts, adapter, opts);
    expect(gotLora.tokens).toEqual(lora.map((row) => row.slice(prompt)));
    adapter.destroy();
    model.destroy();
  });
});

describe('sampling options', () => {
  it('is reproducible for a seed, stops at EOS and on request', async () => {
    const { model } = await openFixtureModel('tiny-llama');
    const prompt = [[5, 17, 42, 100]];
    const opts = { maxNewTokens: 12, temperature: 1.2, topK: 20, topP: 0.9, repetitionPenalty: 1.3, seed: 7, eosTokenIds: [] };
    const a = await generate(model, prompt, null, opts);
    const b = await generate(model, prompt, null, opts);
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens[0]).toHaveLength(12);
    const c = await generate(model, prompt, null, { ...opts, seed: 8 });
    expect(c.tokens).not.toEqual(a.tokens);
    // The first sampled token as EOS ends the sequence without emitting it.
    const first = a.tokens[0]![0]!;
    const d = await generate(model, prompt, null, { ...opts, eosTokenIds: [first] });
    expect(d.tokens[0]).toEqual([]);
    expect(d.finish[0]).toBe('eos');
    let calls = 0;
    const e = await generate(model, prompt, null, { ...opts, onToken: () => ++calls === 3 });
    expect(e.tokens[0]).toEqual(a.tokens[0]!.slice(0, 3));
    expect(e.finish[0]).toBe('stopped');
    // A prompt that leaves fewer positions than maxNewTokens ends with the context, saying so.
    const long = [Array.from({ length: model.config.maxPositions - 3 }, (_, i) => 5 + (i % 50))];
    const f = await generate(model, long, null, { ...opts, maxNewTokens: 10 });
    expect(f.tokens[0]).toHaveLength(3);
    expect(f.finish[0]).toBe('context');
    model.destroy();
  });
});
