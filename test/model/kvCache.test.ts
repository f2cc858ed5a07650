import { afterEach, describe, expect, it, vi } from 'vitest';
import { acquireGpu, GpuDeviceLostError, Recorder } from '../../src/gpu';
import { generate, type GenerateOptions } from '../../src/model/generate';
import { buildRandomModel } from '../../src/model/randomModel';
import { CausalLM } from '../../src/model/transformer';
import { openFixtureModel } from '../helpers/model';

// Generation records a token's step (forward pass and sampling) once per KV cache and replays it,
// the per-token values (position, fed ids, draws, penalised ids) in buffers.
describe.each(['tiny-llama', 'tiny-gpt2'])('%s decode steps recorded once and replayed', (name) => {
  afterEach(() => vi.restoreAllMocks());

  const prompts = [
    [5, 17, 42, 100],
    [7, 8, 9, 10],
  ];
  const settings: [string, GenerateOptions][] = [
    ['greedy', { maxNewTokens: 9, eosTokenIds: [] }],
    ['sampled with a repetition penalty', { maxNewTokens: 9, temperature: 1.1, topK: 20, topP: 0.9, repetitionPenalty: 1.3, seed: 3, eosTokenIds: [] }],
    ['sampled from the full vocabulary', { maxNewTokens: 9, temperature: 0.8, seed: 4, eosTokenIds: [] }],
  ];

  it.each(settings)('%s: the tokens of recording every step, no kernel recorded after the first step', async (_, opts) => {
    const { model } = await openFixtureModel(name);
    const gpu = model.gpu;
    try {
      gpu.replay = false;
      const fresh = await generate(model, prompts, null, opts);
      gpu.replay = true;
      const recorded = vi.spyOn(Recorder.prototype, 'dispatch');
      const perStep: { recorded: number; dispatches: number }[] = [];
      let last = { recorded: 0, dispatches: 0 };
      const onToken = () => {
        const now = { recorded: recorded.mock.calls.length, dispatches: gpu.counters.dispatches };
        perStep.push({ recorded: now.recorded - last.recorded, dispatches: now.dispatches - last.dispatches });
        last = now;
      };
      gpu.resetCounters();
      const replayed = await generate(model, prompts, null, { ...opts, onToken });
      expect(replayed.tokens).toEqual(fresh.tokens);
      expect(replayed.tokens[0]).toHaveLength(opts.maxNewTokens);
      // perStep[0]: prefill and first draw; [1]: the first decode step, recorded; then replays.
      const step = perStep[1]!;
      expect(step.recorded).toBe(step.dispatches);
      for (const s of perStep.slice(2)) expect(s).toEqual({ recorded: 0, dispatches: step.dispatches });
      expect(gpu.bindings.stats().pinnedSlots).toBe(0); // the cache's recorded steps went with it
    } finally {
      gpu.replay = true;
      model.destroy();
    }
  });

  it('records the step again after the cached bindings were dropped (as a lost device drops them)', async () => {
    const { model } = await openFixtureModel(name);
    const gpu = model.gpu;
    const opts = settings[1]![1];
    try {
      const want = await generate(model, prompts, null, opts);
      const recorded = vi.spyOn(Recorder.prototype, 'dispatch');
      let before = 0;
      const onToken = (_: unknown, step: number) => {
        if (step === 3) {
          gpu.bindings.clear();
          before = recorded.mock.calls.length;
        }
        if (step === 4) expect(recorded.mock.calls.length).toBeGreaterThan(before);
      };
      const got = await generate(model, prompts, null, { ...opts, onToken });
      expect(got.tokens).toEqual(want.tokens);
    } finally {
      model.destroy();
    }
  });
});

describe('decode steps on a lost device', () => {
  it('fail with the device-lost error', async () => {
    const gpu = await acquireGpu(); // a device of its own: this test destroys it
    const { config } = await openFixtureModel('tiny-llama').then((m) => {
      m.model.destroy();
      return m;
    });
    const model = new CausalLM(gpu, config, await buildRandomModel(gpu, config, { dtype: 'f32', seed: 2 }));
    const onToken = (_: unknown, step: number) => {
      if (step === 2) gpu.device.destroy();
    };
    await expect(generate(model, [[1, 2, 3]], null, { maxNewTokens: 6, eosTokenIds: [], onToken })).rejects.toBeInstanceOf(GpuDeviceLostError);
  });
});
