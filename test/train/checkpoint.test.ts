import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensorsHeader, bytesSource, writeSafetensors } from '../../src/formats/safetensors';
import type { LoadedModel } from '../../src/model/load';
import { LoraAdapter, type LoraTensor } from '../../src/model/lora';
import {
  captureCheckpoint,
  checkpointName,
  CheckpointError,
  loadLatestCheckpoint,
  MemoryCheckpointStore,
  parseCheckpoint,
  restoreCheckpoint,
  saveAndPrune,
  serializeCheckpoint,
  type Checkpoint,
  type CheckpointStore,
} from '../../src/train/checkpoint';
import { NodeCheckpointStore } from '../../src/train/checkpointStoreNode';
import { resolveHyperparameters } from '../../src/train/hyperparameters';
import type { StepMetrics } from '../../src/train/metrics';
import { LoraOptimizer } from '../../src/train/optimizer';
import { Trainer, type TrainingEvent } from '../../src/train/trainer';
import { Rng } from '../../src/util/random';
import { getTestGpu } from '../helpers/gpu';
import { openFixtureModel, patternExamples } from '../helpers/model';

let loaded: LoadedModel;
let tmp: string;
beforeAll(async () => {
  loaded = await openFixtureModel('tiny-llama');
  tmp = await mkdtemp(join(tmpdir(), 'whittle-ckpt-'));
});
afterAll(async () => {
  loaded.model.destroy();
  await rm(tmp, { recursive: true, force: true });
});

function metric(step: number, extra: Partial<StepMetrics> = {}): StepMetrics {
  return {
    step,
    epoch: 1,
    trainLoss: 2.5 - step / 10,
    trainAccuracy: 0.25,
    trainTokens: 40,
    learningRate: 1e-4,
    gradNorm: 0.75,
    tokensPerSecond: 1234.5,
    elapsedMs: 100 * step,
    etaMs: null,
    gpuBytes: 1 << 20,
    ...extra,
  };
}

describe('checkpoint file', () => {
  it('round-trips state, hyperparameters, metrics and tensors through one safetensors file', async () => {
    const rng = new Rng(3);
    const hyperparameters = resolveHyperparameters({ seed: 5 }, 40);
    const cp: Checkpoint = {
      name: 'step-00000012',
      state: { step: 12, epoch: 1, batchIndex: 2, totalSteps: 30, seed: 5, elapsedMs: 1234.5, finished: false },
      hyperparameters,
      metrics: [metric(1), metric(2, { validLoss: 2.1, validAccuracy: 0.3, etaMs: 500 }), metric(3, { gradNorm: NaN })],
      tensors: new Map([
        ['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', { shape: [2, 3], data: rng.f32(6) }],
        ['optimizer.base_model.model.model.layers.0.self_attn.q_proj.lora_A.exp_avg_sq', { shape: [2, 3], data: rng.f32(6, 0, 1) }],
      ]),
    };
    const bytes = serializeCheckpoint(cp);
    const header = await readSafetensorsHeader(bytesSource(bytes));
    expect(header.metadata.format).toBe('whittle-checkpoint');
    expect([...header.tensors.values()].every((t) => t.dtype === 'F32')).toBe(true);

    const back = await parseCheckpoint(bytes);
    expect(back.name).toBe(cp.name);
    expect(back.state).toEqual(cp.state);
    expect(back.hyperparameters).toEqual(hyperparameters);
    expect(back.metrics).toEqual(cp.metrics); // NaN survives (written as null, read as NaN)
    expect([...back.tensors.keys()].sort()).toEqual([...cp.tensors.keys()].sort());
    for (const [name, t] of cp.tensors) {
      expect(back.tensors.get(name)!.shape).toEqual(t.shape);
      expect(Array.from(back.tensors.get(name)!.data)).toEqual(Array.from(t.data));
    }
  });

  it('rejects files that are not checkpoints, or of another version', async () => {
    const plain = writeSafetensors([{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) }], { format: 'pt' });
    await expect(parseCheckpoint(plain)).rejects.toThrow(CheckpointError);
    const future = writeSafetensors([], { format: 'whittle-checkpoint', version: '99' });
    await expect(parseCheckpoint(future)).rejects.toThrow(/version 99/);
    const noState = writeSafetensors([], { format: 'whittle-checkpoint', version: '1', hyperparameters: '{}', metrics: '[]' });
    await expect(parseCheckpoint(noState)).rejects.toThrow(/lacks state/);
  });

  it('keeps the kernel plan a job ran, and refuses one that is not a plan', async () => {
    const kernelPlan = { version: 1 as const, family: 'gpu' as const, source: 'tuning' as const, adapterClass: 'discrete' as const, adapter: 'nvidia', matmul: { '512x576x1536': { kernel: 'blocked' as const, wg: 8, bk: 32, splitK: 1, gemvThreads: 64 } } };
    const cp: Checkpoint = { name: 'step-00000001', state: { step: 1, epoch: 0, batchIndex: 1, totalSteps: 4, seed: 1, elapsedMs: 1, finished: false, kernelPlan }, hyperparameters: resolveHyperparameters({ seed: 1 }, 40), metrics: [], tensors: new Map() };
    expect((await parseCheckpoint(serializeCheckpoint(cp))).state.kernelPlan).toEqual(kernelPlan);
    const bad = { ...cp, state: { ...cp.state, kernelPlan: { ...kernelPlan, matmul: { x: { kernel: 'fast' } } } } } as unknown as Checkpoint;
    await expect(parseCheckpoint(serializeCheckpoint(bad))).rejects.toThrow(/state\.kernelPlan is not a kernel plan record/);
  });

  it('names sort in save order', () => {
    const names = [
      checkpointName({ step: 3, epoch: 0, batchIndex: 3 }, false),
      checkpointName({ step: 9, epoch: 1, batchIndex: 0 }, true),
      checkpointName({ step: 12, epoch: 1, batchIndex: 3 }, false),
      checkpointName({ step: 120, epoch: 10, batchIndex: 0 }, true),
    ];
    expect(names).toEqual(['step-00000003', 'step-00000009-epoch-1', 'step-00000012', 'step-00000120-epoch-10']);
    expect([...names].sort()).toEqual(names);
  });
});

describe('capture and restore on the GPU', () => {
  it('brings back A, B, both AdamW moments and the step count exactly', async () => {
    const gpu = await getTestGpu();
    const hp = resolveHyperparameters({ seed: 1, loraR: 4, targetModules: ['q_proj', 'down_proj'] }, 10, { model: loaded.config });
    const make = () => new LoraAdapter(gpu, loaded.config, loaded.model.weights, hp.lora);
    const source = make();
    const rng = new Rng(11);
    const written = new Map<LoraTensor, Float32Array>();
    for (const m of source.modules.values()) {
      for (const buf of [m.a, m.b, m.expAvgA, m.expAvgSqA, m.expAvgB, m.expAvgSqB]) {
        const data = rng.f32(buf === m.a || buf === m.expAvgA || buf === m.expAvgSqA ? m.r * m.linear.inFeatures : m.linear.outFeatures * m.r);
        source.write(buf, data);
        written.set(buf, data);
      }
    }
    const state = { step: 17, epoch: 2, batchIndex: 1, totalSteps: 40, seed: 1, elapsedMs: 10, finished: false };
    const cp = await captureCheckpoint(gpu, source, { name: 'x', state, hyperparameters: hp, metrics: [] });
    expect(cp.tensors.size).toBe(source.modules.size * 6);

    const target = make();
    target.initialize(99);
    const opt = new LoraOptimizer(gpu, target);
    restoreCheckpoint(gpu, target, opt, await parseCheckpoint(serializeCheckpoint(cp)));
    expect(opt.step).toBe(17);
    const src = [...source.modules.values()];
    const dst = [...target.modules.values()];
    for (let i = 0; i < src.length; i++) {
      const s = src[i]!;
      const d = dst[i]!;
      const pairs: [LoraTensor, LoraTensor][] = [
        [s.a, d.a],
        [s.b, d.b],
        [s.expAvgA, d.expAvgA],
        [s.expAvgSqA, d.expAvgSqA],
        [s.expAvgB, d.expAvgB],
        [s.expAvgSqB, d.expAvgSqB],
      ];
      for (const [from, to] of pairs) {
        const want = written.get(from)!;
        expect(Array.from((await target.readMany([to]))[0]!)).toEqual(Array.from(want));
      }
    }

    // A checkpoint of another rank is refused before anything is written.
    const other = new LoraAdapter(gpu, loaded.config, loaded.model.weights, { ...hp.lora, r: 2 });
    other.initialize(5);
    const before = await other.readTensors();
    const otherOpt = new LoraOptimizer(gpu, other);
    expect(() => restoreCheckpoint(gpu, other, otherOpt, cp)).toThrow(CheckpointError);
    expect(otherOpt.step).toBe(0);
    const after = await other.readTensors();
    for (const [k, v] of before) expect(Array.from(after.get(k)!.data)).toEqual(Array.from(v.data));
    for (const x of [opt, otherOpt, source, target, other]) x.destroy();
  });
});

const stores: [string, () => CheckpointStore][] = [
  ['MemoryCheckpointStore', () => new MemoryCheckpointStore()],
  ['NodeCheckpointStore', () => new NodeCheckpointStore(join(tmp, `store-${Math.random().toString(36).slice(2)}`))],
];

describe.each(stores)('%s', (_name, makeStore) => {
  it('saves, lists in order, loads, deletes and keeps the last three', async () => {
    const store = makeStore();
    expect(await store.list('job-1')).toEqual([]);
    expect(await store.load('job-1', 'step-00000001')).toBeNull();
    await store.save('job-1', 'step-00000002', Uint8Array.of(2));
    await store.save('job-1', 'step-00000001', Uint8Array.of(1));
    await store.save('job-2', 'step-00000001', Uint8Array.of(9));
    expect(await store.list('job-1')).toEqual(['step-00000001', 'step-00000002']);
    expect(Array.from((await store.load('job-1', 'step-00000002'))!)).toEqual([2]);
    await store.save('job-1', 'step-00000002', Uint8Array.of(22));
    expect(Array.from((await store.load('job-1', 'step-00000002'))!)).toEqual([22]);
    await store.delete('job-1', 'step-00000001');
    await store.delete('job-1', 'step-00000001'); // deleting twice is harmless
    expect(await store.list('job-1')).toEqual(['step-00000002']);

    for (let s = 3; s <= 6; s++) await saveAndPrune(store, 'job-1', checkpointName({ step: s, epoch: 0, batchIndex: 0 }, false), Uint8Array.of(s));
    expect(await store.list('job-1')).toEqual(['step-00000004', 'step-00000005', 'step-00000006']);
    expect(await store.list('job-2')).toEqual(['step-00000001']);
    await expect(store.save('../evil', 'x', Uint8Array.of(0))).rejects.toThrow(CheckpointError);
    await expect(store.save('job', 'a/b', Uint8Array.of(0))).rejects.toThrow(CheckpointError);
    await expect(store.save('job', '..', Uint8Array.of(0))).rejects.toThrow(CheckpointError);
  });
});

describe('resume', () => {
  it('a run stopped after epoch 1 and resumed from its stored checkpoint ends bit-identical to an uninterrupted run', async () => {
    const train = patternExamples(4, 21, loaded.config.vocabSize);
    const validation = patternExamples(2, 22, loaded.config.vocabSize);
    // Dropout, accumulation over micro-batches of 1 and a cosine schedule: every piece of state matters.
    const hp = resolveHyperparameters(
      { epochs: 3, batchSize: 1, gradientAccumulation: 2, learningRate: 5e-3, schedule: 'cosine', warmupSteps: 1, loraDropout: 0.1, weightDecay: 0.01, maxSeqLen: 32, seed: 77, evalEvery: 2 },
      train.length,
      { model: loaded.config },
    );

    const straightStore = new NodeCheckpointStore(join(tmp, 'straight'));
    const straight = new Trainer({
      model: loaded.model,
      hyperparameters: hp,
      train,
      validation,
      store: straightStore,
      jobId: 'j',
      onStep: (m) => {
        if (m.step === 1) straight.requestCheckpoint();
      },
    });
    expect(straight.totalSteps).toBe(6);
    const want = await straight.run();
    const wantFile = await parseCheckpoint((await straight.snapshot()).bytes);
    straight.destroy();
    // On-demand at step 1, then every epoch; the last three kept.
    expect(await straightStore.list('j')).toEqual(['step-00000002-epoch-1', 'step-00000004-epoch-2', 'step-00000006-epoch-3']);
    expect((await readdir(join(tmp, 'straight', 'j'))).sort()).toEqual([
      'step-00000002-epoch-1.safetensors',
      'step-00000004-epoch-2.safetensors',
      'step-00000006-epoch-3.safetensors',
    ]);

    const store = new NodeCheckpointStore(join(tmp, 'interrupted'));
    const controller = new AbortController();
    const onEvent = (e: TrainingEvent) => {
      if (e.message.startsWith('Checkpoint saved at epoch 1')) controller.abort('cancel');
    };
    const first = new Trainer({ model: loaded.model, hyperparameters: hp, train, validation, store, jobId: 'j', onEvent });
    const stopped = await first.run(controller.signal);
    first.destroy();
    expect(stopped.status).toBe('cancelled');
    expect(stopped.state).toMatchObject({ step: 2, epoch: 1, batchIndex: 0, finished: false });
    // Stopping right after the epoch checkpoint reuses it instead of writing the same state again.
    expect(stopped.checkpoint.name).toBe('step-00000002-epoch-1');
    expect(await store.list('j')).toEqual(['step-00000002-epoch-1']);

    // As after a page reload: only the store and the job's record survive.
    const latest = (await loadLatestCheckpoint(store, 'j'))!;
    expect(latest.state.step).toBe(2);
    const second = new Trainer({ model: loaded.model, hyperparameters: latest.hyperparameters, train, validation, store, jobId: 'j' });
    const resumed = await second.resume(latest);
    const gotFile = await parseCheckpoint((await second.snapshot()).bytes);
    second.destroy();

    expect(resumed.status).toBe('completed');
    expect(resumed.state).toEqual({ ...want.state, elapsedMs: resumed.state.elapsedMs });
    expect(resumed.metrics.map((m) => m.step)).toEqual(want.metrics.map((m) => m.step));
    for (const [k, m] of want.metrics.entries()) {
      const r = resumed.metrics[k]!;
      expect([r.trainLoss, r.gradNorm, r.learningRate, r.validLoss, r.fullValidLoss], `step ${m.step}`).toEqual([m.trainLoss, m.gradNorm, m.learningRate, m.validLoss, m.fullValidLoss]);
    }
    // Adapter and AdamW moments, bit for bit.
    expect(gotFile.tensors.size).toBe(wantFile.tensors.size);
    for (const [name, t] of wantFile.tensors) expect(Array.from(gotFile.tensors.get(name)!.data), name).toEqual(Array.from(t.data));
    expect(await store.list('j')).toEqual(['step-00000002-epoch-1', 'step-00000004-epoch-2', 'step-00000006-epoch-3']);
  });

  it('a step skipped for a non-finite gradient is recorded, and the resumed job still ends bit-identical', async () => {
    const train = patternExamples(4, 31, loaded.config.vocabSize);
    const hp = resolveHyperparameters(
      { epochs: 2, batchSize: 2, learningRate: 5e-3, schedule: 'cosine', warmupSteps: 1, weightDecay: 0.01, maxSeqLen: 32, seed: 5 },
      train.length,
      { model: loaded.config },
    );
    // Fault injection: during step 2 one gradient is overwritten with NaN after the backward
    // pass, before the optimizer step (writes are ordered between the two submits).
    const injectAtStep2 = (t: Trainer) => {
      const apply = t.optimizer.apply.bind(t.optimizer);
      t.optimizer.apply = (settings, lr, lossTotals) => {
        if (t.state.step === 1) {
          const m = t.adapter.modules.values().next().value!;
          t.adapter.write(m.gradA, new Float32Array(m.gradA.n).fill(NaN));
        }
        apply(settings, lr, lossTotals);
      };
    };
    const events: TrainingEvent[] = [];
    const straight = new Trainer({ model: loaded.model, hyperparameters: hp, train, onEvent: (e) => events.push(e) });
    injectAtStep2(straight);
    const want = await straight.run();
    const wantFile = await parseCheckpoint((await straight.snapshot()).bytes);
    straight.destroy();
    expect(want.metrics.map((m) => m.skipped ?? false)).toEqual([false, true, false, false]);
    expect(Number.isFinite(want.metrics[1]!.gradNorm)).toBe(false);
    expect(Number.isFinite(want.metrics[1]!.trainLoss)).toBe(true);
    expect(events.some((e) => e.level === 'warning' && e.message.startsWith('Step 2 skipped'))).toBe(true);
    // Four steps, three AdamW updates.
    expect(want.state).toMatchObject({ step: 4, optimizerStep: 3, finished: true });

    const store = new MemoryCheckpointStore();
    const controller = new AbortController();
    const first = new Trainer({
      model: loaded.model,
      hyperparameters: hp,
      train,
      store,
      jobId: 's',
      onEvent: (e) => {
        if (e.message.startsWith('Checkpoint saved at epoch 1')) controller.abort('cancel');
      },
    });
    injectAtStep2(first);
    const stopped = await first.run(controller.signal);
    first.destroy();
    expect(stopped.state).toMatchObject({ step: 2, optimizerStep: 1 });
    const second = new Trainer({ model: loaded.model, hyperparameters: hp, train, store, jobId: 's' });
    const resumed = await second.resume(stopped.checkpoint.bytes);
    const gotFile = await parseCheckpoint((await second.snapshot()).bytes);
    second.destroy();
    expect(resumed.metrics.map((m) => m.trainLoss)).toEqual(want.metrics.map((m) => m.trainLoss));
    expect(resumed.state.optimizerStep).toBe(3);
    for (const [name, t] of wantFile.tensors) expect(Array.from(gotFile.tensors.get(name)!.data), name).toEqual(Array.from(t.data));
  });

  it('refuses a checkpoint of a job with other hyperparameters', async () => {
    const train = patternExamples(2, 23, loaded.config.vocabSize);
    const hp = resolveHyperparameters({ epochs: 1, batchSize: 2, maxSeqLen: 32, seed: 1 }, train.length, { model: loaded.config });
    const a = new Trainer({ model: loaded.model, hyperparameters: hp, train });
    const snap = await a.snapshot();
    a.destroy();
    const b = new Trainer({ model: loaded.model, hyperparameters: { ...hp, learningRate: hp.learningRate * 2 }, train });
    await expect(b.restore(snap.bytes)).rejects.toThrow(/other hyperparameters/);
    b.destroy();
  });
});
