import { beforeAll, describe, expect, it } from 'vitest';

import { bytesSource, readSafetensorsHeader } from '../../src/formats/safetensors';
import { JobTransitionError, type JobRecord } from '../../src/jobs/job';
import { MemoryJobStore } from '../../src/jobs/store';
import { acquireGpu } from '../../src/gpu';
import { parseTuningCache, tuningCacheKey, withTuningEntry } from '../../src/kernels/kernelPlanChoice';
import { loadLatestCheckpoint } from '../../src/train/checkpoint';
import { addTinyLlama, expectSameTrajectory, HYPERPARAMETERS, makeRunner, referenceRun, statusLog, submit, TRAIN_JSONL, type ReferenceRun } from './helpers';

describe('JobRunner on the tiny Llama', () => {
  let ref: ReferenceRun;

  beforeAll(async () => {
    ref = await referenceRun();
  });

  it('takes a job from validation to success, recording status, events, metrics, checkpoints and the adapter', async () => {
    const id = ref.job.id;
    expect(ref.job.error).toBeNull();
    expect(ref.job).toMatchObject({ status: 'succeeded', step: 4, totalSteps: 4, weightDtype: 'f32', recompute: 'never', fineTunedModel: `ft:tiny-llama:tiny:${id}`, resumes: 0 });
    expect(statusLog(ref.updates, id)).toEqual(['validating_files', 'queued', 'running', 'succeeded']);
    expect(ref.job.hyperparameters.resolved).toMatchObject({ epochs: 2, batchSize: 5, stepsPerEpoch: 2, seed: 1234, lora: { r: 4, dropout: 0.1 } });
    expect(ref.job.finishedAt).toBeGreaterThanOrEqual(ref.job.startedAt!);

    expect(ref.metrics.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    expect(ref.metrics.filter((m) => m.validLoss !== undefined).map((m) => m.step)).toEqual([2, 4]);
    expect(ref.metrics.filter((m) => m.fullValidLoss !== undefined).map((m) => m.step)).toEqual([2, 4]);
    for (const m of ref.metrics) expect(Number.isFinite(m.trainLoss) && m.trainLoss > 0).toBe(true);
    // A high learning rate on 10 examples: the validation loss after epoch 2 is below that after epoch 1.
    expect(ref.metrics[3]!.fullValidLoss!).toBeLessThan(ref.metrics[1]!.fullValidLoss!);
    expect(ref.job.trainedTokens).toBe(ref.metrics.reduce((s, m) => s + m.trainTokens, 0));

    expect(ref.job.checkpoints.map((c) => [c.name, c.epoch, c.step])).toEqual([
      ['step-00000002-epoch-1', 1, 2],
      ['step-00000004-epoch-2', 2, 4],
    ]);
    expect(await ref.store.checkpoints.list(id)).toEqual(['step-00000002-epoch-1', 'step-00000004-epoch-2']);
    expect(ref.job.checkpoints[0]!.trainLoss).toBe(ref.metrics[1]!.trainLoss);

    const events = await ref.store.listEvents(id);
    const messages = events.map((e) => e.message);
    expect(messages[0]).toMatch(/^Validating training file: file-/);
    expect(messages.some((m) => m.startsWith('Files validated (10 training examples)'))).toBe(true);
    expect(messages.some((m) => m.startsWith('Fine-tuning started'))).toBe(true);
    // The job page and the log say which kernel plan ran; the checkpoints record it.
    expect(ref.job.kernelPlan).toMatch(/^(cpu|gpu) plan \(/);
    expect(messages).toContain(`Kernels: ${ref.job.kernelPlan}`);
    expect((await loadLatestCheckpoint(ref.store.checkpoints, id))!.state.kernelPlan?.family).toBe(ref.job.kernelPlan!.slice(0, 3));
    expect(messages.at(-1)).toBe(`New fine-tuned model created: ft:tiny-llama:tiny:${id}`);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.filter((e) => e.level === 'error')).toEqual([]);

    const peft = await ref.runner.getAdapter(id);
    expect(peft.adapterConfig).toMatchObject({ r: 4, lora_alpha: 8, base_model_name_or_path: 'tiny-llama' });
    const header = await readSafetensorsHeader(bytesSource(peft.adapterModel));
    expect([...header.tensors.keys()].sort()).toEqual(['q_proj', 'v_proj'].flatMap((m) => [0, 1].flatMap((l) => ['A', 'B'].map((ab) => `base_model.model.model.layers.${l}.self_attn.${m}.lora_${ab}.weight`))).sort());
  });

  it('generates with the base model, the job adapter and a checkpoint, streaming the text', async () => {
    const id = ref.job.id;
    const params = { model: ref.source, dtype: 'f32' as const, messages: [{ role: 'user' as const, content: 'Capital of France?' }], maxNewTokens: 6, temperature: 0 };
    const deltas: string[] = [];
    const tuned = await ref.runner.generate({ ...params, adapter: { kind: 'job', jobId: id } }, (d) => deltas.push(d.text));
    expect(tuned.tokens.length).toBeGreaterThan(0);
    expect(deltas.join('')).toBe(tuned.text);
    expect(tuned.promptTokens).toBeGreaterThan(3);
    // No job runs now and this runner has no tuning cache: the playground runs the rules.
    expect(tuned.kernelPlan).toMatch(/^(cpu plan \(cpu adapter, rules\)|gpu plan \(rules for cpu adapters, subgroup reductions\))$/);
    // The final checkpoint holds the same weights as the exported adapter.
    const last = await ref.runner.generate({ ...params, adapter: { kind: 'checkpoint', jobId: id, name: 'step-00000004-epoch-2' } });
    expect(last.tokens).toEqual(tuned.tokens);
    const base = await ref.runner.generate({ ...params, adapter: { kind: 'base' } });
    expect(base.tokens.length).toBeGreaterThan(0);
    // A PEFT adapter imported from the job's export generates as the job adapter does.
    const peft = await ref.runner.getAdapter(id);
    const imported = await ref.runner.generate({ ...params, adapter: { kind: 'peft', config: peft.adapterConfig, weights: new Blob([peft.adapterModel as Uint8Array<ArrayBuffer>]) } });
    expect(imported.tokens).toEqual(tuned.tokens);
    // Stop strings cut the text; an aborted signal stops at once.
    expect(tuned.text.length).toBeGreaterThan(1);
    const stop = tuned.text.slice(1, 2);
    const cut = await ref.runner.generate({ ...params, adapter: { kind: 'job', jobId: id }, stop: [stop] });
    expect(cut.finish).toBe('stop');
    expect(cut.text).toBe(tuned.text.slice(0, tuned.text.indexOf(stop)));
    expect(cut.tokens.length).toBeLessThan(tuned.tokens.length);
    const controller = new AbortController();
    controller.abort();
    const aborted = await ref.runner.generate({ ...params, adapter: { kind: 'base' } }, undefined, controller.signal);
    expect(aborted.finish).toBe('aborted');
    await expect(ref.runner.generate({ ...params, messages: undefined, adapter: { kind: 'base' } })).rejects.toThrow('either messages or prompt');
  });

  it('generates with the launches a job tuned and cached for the device, without tuning, and says so', async () => {
    const gpu = await acquireGpu({ kernels: 'gpu' });
    const launch = { kernel: 'blocked' as const, wg: 8, bk: 16, splitK: 1, gemvThreads: 64 };
    const entry = { key: tuningCacheKey(gpu.adapter, 'unknown'), matmul: { '64x64x64': launch }, savedAt: '' };
    let file: unknown = withTuningEntry(parseTuningCache(null), entry);
    let saves = 0;
    const tuningStore = { load: () => Promise.resolve(file), save: (f: unknown) => ((file = f), saves++, Promise.resolve()) };
    const store = new MemoryJobStore();
    const runner = makeRunner(store, { acquireGpu: () => Promise.resolve(gpu), tuningStore });
    const source = await addTinyLlama(store.blobs);
    const out = await runner.generate({ model: source, dtype: 'f32', prompt: 'hello', maxNewTokens: 2, temperature: 0, adapter: { kind: 'base' } });
    expect(out.kernelPlan).toBe('gpu plan (cache, 1 tuned matmul shape, subgroup reductions)');
    expect(saves).toBe(0);
    gpu.destroy();
  });

  it('pauses between steps on request, resumes from the mid-epoch checkpoint, and cancels', async () => {
    const store = new MemoryJobStore();
    let pausing: Promise<JobRecord> | null = null;
    let jobId = '';
    const runner = makeRunner(store, {
      onUpdate: (u) => {
        // Asked for as the first step starts: the trainer stops after it, mid-epoch.
        if (!pausing && u.type === 'log' && u.jobId === jobId && u.events.some((e) => e.message.startsWith('Fine-tuning started'))) pausing = runner.pause(jobId);
      },
    });
    const src = await addTinyLlama(store.blobs);
    jobId = (await submit(runner, src)).id;
    await runner.idle();
    const paused = await pausing!;
    // The pause lands between steps: after the step that was running when it was asked for.
    const k = paused.step;
    expect(k).toBe(1);
    const name = `step-${String(k).padStart(8, '0')}`;
    expect(paused.status).toBe('paused');
    expect(paused.statusMessage).toBe(`Paused at step ${k}; resume continues from checkpoint ${name}`);
    expect(paused.checkpoints.at(-1)!.name).toBe(name);
    expect((await store.listMetrics(jobId)).map((m) => m.step)).toEqual(Array.from({ length: k }, (_, i) => i + 1));
    await expect(runner.pause(jobId)).rejects.toThrow(JobTransitionError);

    await runner.resume(jobId);
    await runner.idle();
    expect((await runner.getJob(jobId)).status).toBe('succeeded');
    expect((await runner.getJob(jobId)).kernelPlan).toMatch(/\(as the checkpoint recorded\)$/);
    expectSameTrajectory(await store.listMetrics(jobId), ref.metrics);
    await expect(runner.resume(jobId)).rejects.toThrow('cannot go from succeeded to queued (succeeded is final)');

    // A queued job that has not started cancels without running; with autoStart off it waits.
    const idle = makeRunner(store, { autoStart: false });
    const waiting = await submit(idle, src);
    await idle.idle();
    expect((await idle.getJob(waiting.id)).status).toBe('queued');
    // Validation records the training file's system message: the playground asks with it.
    expect((await idle.getJob(waiting.id)).trainingSystemMessage).toBe('You are Whittle, a terse assistant.');
    expect((await idle.cancel(waiting.id)).status).toBe('cancelled');
    await expect(idle.start(waiting.id)).rejects.toThrow(JobTransitionError);
    await idle.deleteJob(waiting.id);
    expect(await store.getJob(waiting.id)).toBeNull();
  });

  it('fails jobs whose files or hyperparameters do not validate, and holds valid jobs while no GPU opens', async () => {
    const store = new MemoryJobStore();
    const runner = makeRunner(store, { acquireGpu: () => Promise.reject(new Error('no adapter today')) });
    const src = await addTinyLlama(store.blobs);
    const good = await submit(runner, src);
    const bad = await submit(runner, src, TRAIN_JSONL + '{"messages": [{"role": "bot", "content": "hi"}]}\nnot json\n');
    const badHp = await runner.createJob({
      model: src,
      trainingFileId: (await runner.uploadFile('t.jsonl', new Blob([TRAIN_JSONL]))).file.id,
      hyperparameters: { ...HYPERPARAMETERS, batchSize: 0 },
    });
    // Fewer than 10 examples: refused, unless the job allows a small training file.
    const fiveLines = TRAIN_JSONL.trim().split('\n').slice(0, 5).join('\n') + '\n';
    const small = await submit(runner, src, fiveLines);
    const smallFile = (await runner.uploadFile('small.jsonl', new Blob([fiveLines]))).file.id;
    const allowed = await runner.createJob({ model: src, trainingFileId: smallFile, hyperparameters: HYPERPARAMETERS, allowSmall: true });
    expect(allowed.allowSmallTrainingFile).toBe(true);
    await runner.idle();
    expect(await runner.getJob(small.id)).toMatchObject({ status: 'failed', error: { code: 'invalid_training_file', message: expect.stringMatching(/is invalid: it has only 5 examples; at least 10 are needed$/) as unknown } });
    expect((await runner.getJob(allowed.id)).status).toBe('paused');
    const failed = await runner.getJob(bad.id);
    expect(failed.status).toBe('failed');
    expect(failed.error!.code).toBe('invalid_training_file');
    expect(failed.error!.message).toMatch(/^The training file file-\w+ is invalid: 3 errors: line 11: .*; line 12: not valid JSON/);
    const hp = await runner.getJob(badHp.id);
    expect(hp).toMatchObject({ status: 'failed', error: { code: 'HyperparameterError' } });
    expect(hp.error!.message).toMatch(/^batchSize: must be an integer/);
    await expect(runner.createJob({ model: src, trainingFileId: 'file-none' })).rejects.toThrow('no training file file-none');
    // Files validate without a GPU; the job then waits, paused, instead of failing.
    const held = await runner.getJob(good.id);
    expect(held).toMatchObject({ status: 'paused', statusMessage: 'No GPU device could be opened (no adapter today). Resume the job when one is available.', error: null });
    expect((await store.listEvents(good.id)).at(-1)).toMatchObject({ level: 'error', kind: 'no_gpu' });
  });
});
