import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { acquireGpu, GpuDeviceLostError, Recorder, type Gpu } from '../../src/gpu';
import type { LoadedModel } from '../../src/model/load';
import { LoraAdapter, defaultLoraConfig } from '../../src/model/lora';
import { buildRandomModel } from '../../src/model/randomModel';
import { CausalLM, type LossTotals, type TokenBatch } from '../../src/model/transformer';
import { DEFAULT_OPTIMIZER, LoraOptimizer } from '../../src/train/optimizer';
import { dropoutSeedOf } from '../../src/train/microBatches';
import { openFixtureModel } from '../helpers/model';

const batch = (B: number, T: number, salt: number): TokenBatch => ({
  B,
  T,
  tokens: Uint32Array.from({ length: B * T }, (_, i) => (i * 7 + salt) % 50),
  targets: Uint32Array.from({ length: B * T }, (_, i) => (i * 11 + 3 * salt + 1) % 50),
  // Some masked positions, so the trained-token count (and gradScale) differs between batches.
  mask: Float32Array.from({ length: B * T }, (_, i) => ((i + salt) % 5 === 0 ? 0 : 1)),
});

const trained = (b: TokenBatch) => b.mask.reduce((s, m) => s + m, 0);

/** The adapter's gradients, every segment, as raw bits. */
async function gradBits(gpu: Gpu, adapter: LoraAdapter): Promise<Uint32Array[]> {
  const out: Uint32Array[] = [];
  for (const s of adapter.segments) out.push(await gpu.readU32(s.grads, s.n));
  return out;
}

describe('training passes recorded once and replayed', () => {
  let loaded: LoadedModel;
  let adapter: LoraAdapter;
  beforeAll(async () => {
    loaded = await openFixtureModel('tiny-llama');
    adapter = new LoraAdapter(loaded.model.gpu, loaded.config, loaded.model.weights, defaultLoraConfig(loaded.config, { r: 4 }));
    adapter.initialize(3);
  });
  afterAll(() => {
    adapter.destroy();
    loaded.model.destroy();
  });

  /** One optimizer step's passes (two accumulated micro-batches), its gradients and loss totals. */
  async function step(model: CausalLM, micro: readonly TokenBatch[]): Promise<{ grads: Uint32Array[]; totals: LossTotals }> {
    const gradScale = 1 / micro.reduce((s, b) => s + trained(b), 0);
    for (const [i, b] of micro.entries()) await model.forwardBackward(b, adapter, { gradScale, accumulate: i > 0 }, false);
    const last = micro.at(-1)!;
    return { grads: await gradBits(model.gpu, adapter), totals: await model.readStepTotals(last.B, last.T, adapter) };
  }

  it('gives the bits of a recorded pass, with the batch and gradient scale of its own step', async () => {
    const { model } = loaded;
    const gpu = model.gpu;
    const stepA = [batch(2, 16, 1), batch(2, 16, 2)];
    const stepB = [batch(2, 16, 3), batch(2, 16, 4)];
    gpu.replay = false;
    model.releaseWorkspaces();
    const wantA = await step(model, stepA);
    const wantB = await step(model, stepB);
    gpu.replay = true;
    model.releaseWorkspaces();
    // The first step records both plans (overwrite, accumulate); the next ones replay them.
    expect(await step(model, stepB)).toEqual(wantB);
    gpu.resetCounters();
    const gotA = await step(model, stepA);
    expect(gpu.counters.bindGroups).toBe(0);
    const replayedDispatches = gpu.counters.dispatches;
    expect(gotA).toEqual(wantA);
    expect(await step(model, stepB)).toEqual(wantB);
    // The replay runs every dispatch the recording did.
    gpu.replay = false;
    gpu.resetCounters();
    expect(await step(model, stepA)).toEqual(wantA);
    expect(gpu.counters.dispatches).toBe(replayedDispatches);
    gpu.replay = true;
  });

  // With LoRA dropout each micro-batch draws its own masks; their seed is a pass value like the
  // gradient scale, so the passes still replay. The reference is the same run with replay off,
  // every pass recorded from scratch.
  it('replays passes with LoRA dropout: the losses and adapter of recording every pass, nothing recorded after the first step', async () => {
    const { model, config } = loaded;
    const gpu = model.gpu;
    const steps = Array.from({ length: 4 }, (_, s) => [batch(2, 16, 10 + 2 * s), batch(2, 16, 11 + 2 * s)]);
    const recorded = vi.spyOn(Recorder.prototype, 'dispatch');
    // Dispatches recorded into training passes (a replayed pass records none).
    const passDispatches = () => recorded.mock.contexts.filter((r) => (r as Recorder).label === 'train-step').length;

    async function run(seedOf: (step: number, micro: number) => number) {
      const dropped = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: 4, dropout: 0.05 }));
      dropped.initialize(5);
      const optimizer = new LoraOptimizer(gpu, dropped);
      const losses: number[] = [];
      const perStep: { recorded: number; bindGroups: number }[] = [];
      for (const [s, micro] of steps.entries()) {
        recorded.mockClear();
        gpu.resetCounters();
        const gradScale = 1 / micro.reduce((n, b) => n + trained(b), 0);
        for (const [i, b] of micro.entries()) await model.forwardBackward(b, dropped, { gradScale, accumulate: i > 0, dropoutSeed: seedOf(s, i) }, false);
        const last = micro.at(-1)!;
        optimizer.apply({ ...DEFAULT_OPTIMIZER, lr: 1e-2 }, 1e-2, model.stepTotals(last.B, last.T, dropped));
        const totals = (await optimizer.readVerdict()).totals!;
        losses.push(totals.lossSum / totals.tokens);
        perStep.push({ recorded: passDispatches(), bindGroups: gpu.counters.bindGroups });
      }
      const weights = [...(await dropped.readTensors())].map(([name, t]) => [name, Array.from(new Uint32Array(t.data.buffer))]);
      optimizer.destroy();
      dropped.destroy();
      model.releaseWorkspaces();
      return { losses, weights, perStep };
    }

    const seedOf = (s: number, i: number) => dropoutSeedOf(1234, 0, s, i);
    gpu.replay = false;
    const want = await run(seedOf);
    gpu.replay = true;
    const got = await run(seedOf);
    recorded.mockRestore();
    expect(got.losses).toEqual(want.losses);
    expect(got.weights).toEqual(want.weights);
    // Step 1 records both passes (overwrite, accumulate); later steps replay them: no dispatch
    // recorded, no bind group made (the optimizer's dispatches find theirs cached).
    expect(want.perStep.every((c) => c.recorded > 0)).toBe(true);
    expect(got.perStep[0]!.recorded).toBe(want.perStep[0]!.recorded);
    expect(got.perStep.slice(1)).toEqual([{ recorded: 0, bindGroups: 0 }, { recorded: 0, bindGroups: 0 }, { recorded: 0, bindGroups: 0 }]);
    // The masks follow the seeds: other seeds, another trajectory (from step 2: B starts at zero,
    // so the first step's loss does not see the masks).
    const other = await run((s, i) => seedOf(s, i) + 1);
    expect(other.losses[0]).toBe(want.losses[0]);
    for (let s = 1; s < steps.length; s++) expect(other.losses[s]).not.toBe(want.losses[s]);
    expect(other.weights).not.toEqual(want.weights);
  });

  it('records a pass again after the cached bindings were dropped (as a lost device drops them)', async () => {
    const { model } = loaded;
    const gpu = model.gpu;
    const stepA = [batch(2, 16, 5), batch(2, 16, 6)];
    const want = await step(model, stepA);
    gpu.bindings.clear();
    gpu.resetCounters();
    expect(await step(model, stepA)).toEqual(want);
    expect(gpu.counters.bindGroups).toBeGreaterThan(0);
    gpu.resetCounters();
    expect(await step(model, stepA)).toEqual(want);
    expect(gpu.counters.bindGroups).toBe(0);
  });

  it('survives shape changes and evicted workspaces with the right results and no leaked bytes', async () => {
    const { model } = loaded;
    const gpu = model.gpu;
    model.releaseWorkspaces();
    gpu.bindings.clear();
    const before = gpu.memory().liveBytes;
    const shapes = [[1, 16], [2, 8], [1, 24], [3, 8], [1, 16], [2, 8]] as const;
    gpu.replay = false;
    const want: { grads: Uint32Array[]; totals: LossTotals }[] = [];
    for (const [i, [B, T]] of shapes.entries()) want.push(await step(model, [batch(B, T, i)]));
    gpu.replay = true;
    model.releaseWorkspaces();
    // Twice over: the second round replays what is still cached, the evicted shapes record again
    // (MAX_WORKSPACES is 3, so the pool hands their freed buffers to the newer workspaces).
    for (let round = 0; round < 2; round++) {
      for (const [i, [B, T]] of shapes.entries()) expect(await step(model, [batch(B, T, i)])).toEqual(want[i]);
    }
    model.releaseWorkspaces();
    expect(gpu.bindings.stats().pinnedSlots).toBe(0);
    gpu.bindings.clear();
    expect(gpu.memory().liveBytes).toBe(before);
  });

  it('fails a replayed pass on a lost device with the device-lost error', async () => {
    const gpu = await acquireGpu(); // a device of its own: this test destroys it
    const config = loaded.config;
    const model = new CausalLM(gpu, config, await buildRandomModel(gpu, config, { dtype: 'f32', seed: 2 }));
    const own = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: 4 }));
    own.initialize(1);
    const b = batch(1, 16, 0);
    const pass = () => model.forwardBackward(b, own, { gradScale: 1 / trained(b), accumulate: false });
    const first = await pass();
    expect(await pass()).toEqual(first); // replayed
    gpu.device.destroy();
    await expect(pass()).rejects.toBeInstanceOf(GpuDeviceLostError);
    await expect(pass()).rejects.toBeInstanceOf(GpuDeviceLostError);
  });
});
