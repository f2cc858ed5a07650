import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEEP_RECORDINGS } from '../../src/gpu';
import { axpby } from '../../src/kernels/elementwise';
import type { LoadedModel } from '../../src/model/load';
import { LoraAdapter, defaultLoraConfig } from '../../src/model/lora';
import type { TokenBatch } from '../../src/model/transformer';
import { DEFAULT_OPTIMIZER, LoraOptimizer } from '../../src/train/optimizer';
import { getTestGpu } from '../helpers/gpu';
import { openFixtureModel } from '../helpers/model';

describe('bind groups and uniforms across recordings', () => {
  it('a repeated recording makes no bind group, a new parameter value makes one', async () => {
    const gpu = await getTestGpu();
    const x = gpu.upload(Float32Array.of(1, 2, 3, 4));
    const y = gpu.upload(Float32Array.of(10, 20, 30, 40));
    const run = (a: number) => {
      const rec = gpu.recorder();
      axpby(gpu, rec, x, y, 4, a, 1);
      rec.submit();
    };
    run(1);
    gpu.resetCounters();
    run(1);
    run(1);
    expect(gpu.counters.bindGroups).toBe(0);
    expect(gpu.counters.dispatches).toBe(2);
    run(2);
    expect(gpu.counters.bindGroups).toBe(1);
    expect(Array.from(await gpu.readF32(y, 4))).toEqual([15, 30, 45, 60]);
    gpu.release(x);
    gpu.release(y);
  });

  it('values that change every recording neither pile up nor read a reused slot stale', async () => {
    const gpu = await getTestGpu();
    gpu.bindings.clear();
    const x = gpu.upload(Float32Array.of(1));
    const y = gpu.upload(Float32Array.of(0));
    let want = 0;
    for (let i = 1; i <= 10 * KEEP_RECORDINGS; i++) {
      const rec = gpu.recorder();
      axpby(gpu, rec, x, y, 1, i, 1);
      rec.submit();
      want += i;
    }
    // Every recording used a fresh value; unused ones are dropped and their slots refilled.
    expect(Array.from(await gpu.readF32(y, 1))).toEqual([want]);
    const stats = gpu.bindings.stats();
    expect(stats.uniformSlots).toBeLessThanOrEqual(KEEP_RECORDINGS + 8);
    expect(stats.bindGroups).toBeLessThanOrEqual(KEEP_RECORDINGS + 8);
    gpu.release(x);
    gpu.release(y);
  });
});

describe('training steps on a cached plan', () => {
  let loaded: LoadedModel;
  beforeAll(async () => {
    loaded = await openFixtureModel('tiny-llama');
  });
  afterAll(() => loaded.model.destroy());

  const batch = (B: number, T: number): TokenBatch => ({
    B,
    T,
    tokens: Uint32Array.from({ length: B * T }, (_, i) => (i * 7) % 50),
    targets: Uint32Array.from({ length: B * T }, (_, i) => (i * 7 + 1) % 50),
    mask: new Float32Array(B * T).fill(1),
  });

  it('repeats a step with no new bind group, and a shape change leaks no buffer', async () => {
    const { model, config } = loaded;
    const gpu = model.gpu;
    const adapter = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: 4 }));
    adapter.initialize(1);
    const opt = new LoraOptimizer(gpu, adapter);
    const step = async (b: TokenBatch) => {
      await model.forwardBackward(b, adapter, { gradScale: 1 / (b.B * b.T), accumulate: false }, false);
      opt.apply(DEFAULT_OPTIMIZER);
      const totals = await model.readStepTotals(b.B, b.T, adapter);
      const verdict = await opt.readVerdict();
      expect(verdict.skipped).toBe(false);
      return totals;
    };
    model.releaseWorkspaces();
    gpu.bindings.clear();
    const before = gpu.memory().liveBytes;
    await step(batch(1, 16));
    gpu.resetCounters();
    const t = await step(batch(1, 16));
    expect(Number.isFinite(t.lossSum)).toBe(true);
    expect(gpu.counters.bindGroups).toBe(0);
    expect(gpu.counters.blockingReads).toBe(1);
    // A longer batch: a new workspace and new bind groups, then back.
    await step(batch(2, 24));
    expect(gpu.counters.bindGroups).toBeGreaterThan(0);
    await step(batch(1, 16));
    // Dropping the workspaces and the cached bindings gives every byte back.
    model.releaseWorkspaces();
    gpu.bindings.clear();
    expect(gpu.memory().liveBytes).toBe(before);
    opt.destroy();
    adapter.destroy();
  });
});
