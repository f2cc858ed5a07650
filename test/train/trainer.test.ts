import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedModel } from '../../src/model/load';
import { LoraAdapter } from '../../src/model/lora';
import { MemoryCheckpointStore } from '../../src/train/checkpoint';
import { resolveHyperparameters, type HyperparameterRequest } from '../../src/train/hyperparameters';
import { parseResultsCsv, resultsCsv, RESULT_COLUMNS } from '../../src/train/metrics';
import { Trainer, TrainingDivergedError, type TrainingEvent } from '../../src/train/trainer';
import { expectClose } from '../helpers/compare';
import { openFixtureModel, patternExamples } from '../helpers/model';

let loaded: LoadedModel;
beforeAll(async () => {
  loaded = await openFixtureModel('tiny-llama');
});
afterAll(() => loaded.model.destroy());

const hyper = (req: HyperparameterRequest, n: number) =>
  resolveHyperparameters({ seed: 7, warmupSteps: 0, loraDropout: 0, maxSeqLen: 32, ...req }, n, { model: loaded.config });

describe('Trainer on tiny-llama (f32)', () => {
  it('lowers the loss in a short run, with metrics, validation, events and a results file', async () => {
    const vocab = loaded.config.vocabSize;
    const train = patternExamples(8, 1, vocab);
    const validation = patternExamples(3, 2, vocab);
    const hp = hyper({ epochs: 4, batchSize: 4, learningRate: 1e-2, schedule: 'linear', warmupSteps: 2, evalEvery: 3 }, train.length);
    const events: TrainingEvent[] = [];
    const store = new MemoryCheckpointStore();
    const trainer = new Trainer({ model: loaded.model, hyperparameters: hp, train, validation, store, jobId: 'short', onEvent: (e) => events.push(e) });
    expect(trainer.totalSteps).toBe(8);
    expect(trainer.stepsPerEpoch).toEqual([2, 2, 2, 2]);
    const result = await trainer.run();
    // The last full validation is the whole validation set under the final adapter.
    const finalEval = (await trainer.evaluateValidation())!;
    trainer.destroy();

    expect(result.status).toBe('completed');
    expect(result.state).toMatchObject({ step: 8, epoch: 4, batchIndex: 0, finished: true });
    const m = result.metrics;
    expect(m.map((x) => x.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(m.map((x) => x.epoch)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
    // Linear schedule with 2 warmup steps over 8: factors 0, 0.5, then (8 - k) / 6 for 0-based step k.
    const wantLr = [0, 0.5, 1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6].map((f) => 1e-2 * f);
    m.forEach((x, k) => expect(x.learningRate).toBeCloseTo(wantLr[k]!, 12));
    for (const x of m) {
      expect(Number.isFinite(x.trainLoss) && Number.isFinite(x.gradNorm) && x.gradNorm > 0).toBe(true);
      expect(x.trainAccuracy).toBeGreaterThanOrEqual(0);
      expect(x.trainAccuracy).toBeLessThanOrEqual(1);
      expect(x.tokensPerSecond).toBeGreaterThan(0);
      expect(x.gpuBytes).toBeGreaterThan(0);
      expect(x.elapsedMs).toBeGreaterThan(0);
    }
    expect(m.map((x) => x.trainTokens).reduce((s, t) => s + t, 0)).toBe(4 * train.reduce((s, e) => s + e.trained.reduce((a, b) => a + b, 0) - e.trained[0]!, 0));
    expect(m.at(-1)!.etaMs).toBe(0);
    // Small validation batches on steps 3 and 6, full passes at every epoch end.
    expect(m.filter((x) => x.validLoss !== undefined).map((x) => x.step)).toEqual([3, 6]);
    expect(m.filter((x) => x.fullValidLoss !== undefined).map((x) => x.step)).toEqual([2, 4, 6, 8]);
    const full = m.filter((x) => x.fullValidLoss !== undefined).map((x) => x.fullValidLoss!);
    expect(full[3]!).toBeLessThan(full[0]! - 1);
    expect(m[7]!.trainLoss).toBeLessThan(m[0]!.trainLoss - 1);
    expect(finalEval.loss).toBe(full[3]);
    expect(finalEval.tokens).toBe(validation.reduce((s, e) => s + e.trained.reduce((a, b) => a + b, 0) - e.trained[0]!, 0));
    const log = events.map((e) => e.message);
    expect(log[0]).toMatch(/^Fine-tuning started: 8 training examples, 3 validation examples, 4 epochs, 8 steps/);
    expect(log).toContain(`Step 1/8: training loss=${m[0]!.trainLoss.toFixed(4)}`);
    expect(log).toContain(`Step 3/8: training loss=${m[2]!.trainLoss.toFixed(4)}, validation loss=${m[2]!.validLoss!.toFixed(4)}`);
    expect(log).toContain('Checkpoint saved at epoch 1 (step 2)');
    expect(log.at(-1)).toMatch(/^The job has successfully completed: 8 steps/);
    expect(events.find((e) => e.message.startsWith('Step 5/'))!.step).toBe(5);
    // Checkpoints at every epoch end, the last three kept.
    expect(await store.list('short')).toEqual(['step-00000004-epoch-2', 'step-00000006-epoch-3', 'step-00000008-epoch-4']);
    expect(result.checkpoint.name).toBe('step-00000008-epoch-4');

    const rows = parseResultsCsv(resultsCsv(m));
    expect(Object.keys(rows[0]!)).toEqual(RESULT_COLUMNS.map(([c]) => c));
    expect(rows.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(rows[2]!.valid_loss).toBe(m[2]!.validLoss);
    expect(rows[0]!.valid_loss).toBeNull();
    expect(rows[1]!.full_valid_mean_token_accuracy).toBe(m[1]!.fullValidAccuracy);
    expect(resultsCsv(m).split('\n')[0]).toBe(
      'step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy,learning_rate,grad_norm,tokens_per_second,full_valid_loss,full_valid_mean_token_accuracy,epoch,elapsed_ms',
    );
  });

  it('accumulating 2 micro-batches of 1 gives the gradient of one batch of 2 (within 1e-5)', async () => {
    const vocab = loaded.config.vocabSize;
    // Different lengths, so the two splits pad differently.
    const train = patternExamples(2, 3, vocab);
    train[1] = { ids: train[1]!.ids.slice(0, 5), trained: train[1]!.trained.slice(0, 5) };
    const run = async (batchSize: number, gradientAccumulation: number) => {
      const hp = hyper({ epochs: 1, batchSize, gradientAccumulation, learningRate: 1e-3, schedule: 'constant' }, train.length);
      const trainer = new Trainer({ model: loaded.model, hyperparameters: hp, train });
      expect(trainer.totalSteps).toBe(1);
      const { metrics } = await trainer.run();
      const grads = await trainer.adapter.readGradients();
      const weights = await trainer.adapter.readTensors();
      trainer.destroy();
      return { m: metrics[0]!, grads, weights };
    };
    const split = await run(1, 2);
    const whole = await run(2, 1);
    expect(split.m.trainTokens).toBe(whole.m.trainTokens);
    expect(Math.abs(split.m.trainLoss - whole.m.trainLoss)).toBeLessThan(1e-5 * whole.m.trainLoss);
    expect(split.m.trainAccuracy).toBe(whole.m.trainAccuracy);
    expect(Math.abs(split.m.gradNorm - whole.m.gradNorm)).toBeLessThan(1e-5 * whole.m.gradNorm);
    for (const [name, g] of whole.grads) expectClose(split.grads.get(name)!, g, 1e-5, `grad ${name}`);
    for (const [name, w] of whole.weights) expectClose(split.weights.get(name)!.data, w.data, 1e-5, `weight ${name}`);
  });

  it('stops with TrainingDivergedError naming the step when the loss blows up (learning rate 1e30)', async () => {
    const train = patternExamples(4, 4, loaded.config.vocabSize);
    const hp = hyper({ epochs: 2, batchSize: 1, learningRate: 1e30, schedule: 'constant', maxGradNorm: 0 }, train.length);
    const events: TrainingEvent[] = [];
    const store = new MemoryCheckpointStore();
    const trainer = new Trainer({ model: loaded.model, hyperparameters: hp, train, store, jobId: 'nan', onEvent: (e) => events.push(e) });
    const err = await trainer.run().catch((e: unknown) => e);
    trainer.destroy();
    expect(err).toBeInstanceOf(TrainingDivergedError);
    const d = err as TrainingDivergedError;
    // The first update is finite (an lr of 1e30 times a unit-sized Adam step); the next loss is not.
    expect(d.step).toBe(2);
    expect(d.quantity).toBe('training loss');
    expect(Number.isFinite(d.value)).toBe(false);
    expect(d.message).toMatch(/^Training diverged at step 2: the training loss is (NaN|Infinity)/);
    // No checkpoint was saved before step 2: none is offered.
    expect(d.message).toMatch(/start the job again \(no checkpoint was saved before it diverged\)\.$/);
    expect(events.at(-1)).toMatchObject({ level: 'error', step: 2 });
    expect(trainer.state.step).toBe(1);
    expect(await store.list('nan')).toEqual([]);
  });

  it('detects a NaN already in the adapter at step 1, before any update', async () => {
    const train = patternExamples(2, 5, loaded.config.vocabSize);
    const hp = hyper({ epochs: 1, batchSize: 2 }, train.length);
    const gpu = loaded.model.gpu;
    const adapter = new LoraAdapter(gpu, loaded.config, loaded.model.weights, hp.lora);
    adapter.initialize(1);
    const first = adapter.modules.values().next().value!;
    adapter.write(first.b, new Float32Array(first.linear.outFeatures * first.r).fill(NaN));
    const trainer = new Trainer({ model: loaded.model, hyperparameters: hp, train, adapter });
    const err = await trainer.run().catch((e: unknown) => e);
    trainer.destroy();
    adapter.destroy();
    expect(err).toBeInstanceOf(TrainingDivergedError);
    expect((err as TrainingDivergedError).step).toBe(1);
    expect((err as TrainingDivergedError).message).toContain('step 1');
  });

  it('cancels between steps mid-epoch, returns a resumable state, and the resumed run matches an uninterrupted one', async () => {
    const train = patternExamples(8, 6, loaded.config.vocabSize);
    const hp = hyper({ epochs: 2, batchSize: 2, learningRate: 5e-3, loraDropout: 0.1 }, train.length);

    const straight = new Trainer({ model: loaded.model, hyperparameters: hp, train });
    const want = await straight.run();
    const wantWeights = await straight.adapter.readTensors();
    straight.destroy();

    const controller = new AbortController();
    const events: TrainingEvent[] = [];
    const first = new Trainer({
      model: loaded.model,
      hyperparameters: hp,
      train,
      onEvent: (e) => events.push(e),
      onStep: (m) => {
        if (m.step === 3) controller.abort('pause');
      },
    });
    const stopped = await first.run(controller.signal);
    expect(stopped.status).toBe('cancelled');
    expect(stopped.reason).toBe('pause');
    expect(stopped.state).toMatchObject({ step: 3, epoch: 0, batchIndex: 3, finished: false });
    expect(stopped.metrics.length).toBe(3);
    expect(stopped.checkpoint.name).toBe('step-00000003');
    expect(events.at(-1)!.message).toMatch(/^Training stopped at step 3\/8; checkpoint step-00000003 saved/);
    // Only the user's pause or cancel stops a run: information, not a warning.
    expect(events.at(-1)!.level).toBe('info');

    // The same trainer continues where it stopped when run again (pause, then resume in place).
    const continued = await first.run();
    const continuedWeights = await first.adapter.readTensors();
    first.destroy();
    expect(continued.status).toBe('completed');
    expect(continued.metrics.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const [name, w] of wantWeights) expectClose(continuedWeights.get(name)!.data, w.data, 1e-6, `continued ${name}`);

    const second = new Trainer({ model: loaded.model, hyperparameters: hp, train });
    const resumed = await second.resume(stopped.checkpoint.bytes);
    const gotWeights = await second.adapter.readTensors();
    second.destroy();
    expect(resumed.status).toBe('completed');
    expect(resumed.metrics.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (let k = 0; k < 8; k++) {
      expect(resumed.metrics[k]!.trainLoss, `step ${k + 1} loss`).toBeCloseTo(want.metrics[k]!.trainLoss, 5);
      expect(resumed.metrics[k]!.learningRate).toBe(want.metrics[k]!.learningRate);
    }
    for (const [name, w] of wantWeights) expectClose(gotWeights.get(name)!.data, w.data, 1e-6, `resumed ${name}`);
  });

  it("resolves the activation policy once, records it in the state, and a restored checkpoint's wins", async () => {
    const train = patternExamples(4, 9, loaded.config.vocabSize);
    const hp = hyper({ epochs: 1, batchSize: 2 }, train.length);
    const model = loaded.model;
    const recomputing = new Trainer({ model, hyperparameters: hp, train, recompute: 'always' });
    expect(recomputing.recompute).toBe('always');
    const done = await recomputing.run();
    expect(done.state.recompute).toBe('always');
    expect(model.recompute).toBe('auto'); // the model's own policy is back after the run
    recomputing.destroy();
    // The tiny model keeps its activations under the default budget: 'auto' resolves to 'never'.
    const resumed = new Trainer({ model, hyperparameters: hp, train });
    expect(resumed.recompute).toBe('never');
    await resumed.restore(done.checkpoint.bytes);
    expect(resumed.recompute).toBe('always');
    expect(resumed.state.recompute).toBe('always');
    resumed.destroy();
  });

  it("takes each step's loss and verdict from one late read, with at most one blocking read per step", async () => {
    const train = patternExamples(8, 4, loaded.config.vocabSize);
    const hp = hyper({ epochs: 1, batchSize: 2 }, train.length);
    const gpu = loaded.model.gpu;
    const blocking: number[] = [];
    let seen = 0;
    gpu.resetCounters();
    const trainer = new Trainer({
      model: loaded.model,
      hyperparameters: hp,
      train,
      onStep: () => {
        blocking.push(gpu.counters.blockingReads - seen);
        seen = gpu.counters.blockingReads;
      },
    });
    const result = await trainer.run();
    trainer.destroy();
    expect(result.metrics.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    for (const m of result.metrics) expect(Number.isFinite(m.trainLoss) && m.trainTokens > 0).toBe(true);
    expect(gpu.counters.lateReads).toBe(4);
    for (const n of blocking) expect(n).toBeLessThanOrEqual(1);
  });
});
