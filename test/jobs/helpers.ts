// Shared set-up of the runner and protocol tests: the tiny Llama fixture as a local model in a
// store, a small chat dataset, and a store wrapper that simulates a crash.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'vitest';

import type { PeftExport } from '../../src/formats/peft';
import { bytesSource, readSafetensorsHeader, readTensor } from '../../src/formats/safetensors';

import type { JobRecord, JobStatus, ModelSource } from '../../src/jobs/job';
import { importLocalModel, storeModelResolver } from '../../src/jobs/models';
import { JobRunner, type JobRunnerOptions, type RunnerUpdate } from '../../src/jobs/runner';
import { blobCheckpointStore, MemoryJobStore, type BlobStore, type JobStore } from '../../src/jobs/store';
import type { CheckpointStore } from '../../src/train/checkpoint';
import type { HyperparameterRequest } from '../../src/train/hyperparameters';
import type { StepMetrics } from '../../src/train/metrics';
import { expectClose } from '../helpers/compare';
import { getTestGpu } from '../helpers/gpu';

export const FIXTURES = join(__dirname, '..', 'fixtures');
export const MODEL_DIR = join(FIXTURES, 'models', 'tiny-llama');

const chat = readFileSync(join(FIXTURES, 'data', 'chat_valid.jsonl'), 'utf8').trim().split('\n');
/** 10 training examples (2 batches of 5 per epoch), 2 validation examples. */
export const TRAIN_JSONL = chat.slice(0, 10).join('\n') + '\n';
export const VALID_JSONL = chat.slice(10).join('\n') + '\n';

/** 2 epochs x 2 steps; dropout on, so resuming must also replay the dropout masks. */
export const HYPERPARAMETERS: HyperparameterRequest = {
  epochs: 2,
  batchSize: 5,
  learningRate: 2e-2,
  warmupSteps: 0,
  seed: 1234,
  loraR: 4,
  loraAlpha: 8,
  loraDropout: 0.1,
  // Few adapted modules: every checkpoint reads each tensor back, and readbacks dominate here.
  targetModules: ['q_proj', 'v_proj'],
  evalEvery: 2,
};

/** Copies the tiny Llama fixture into the store as a local model. */
export function addTinyLlama(blobs: BlobStore): Promise<ModelSource> {
  const files = new Map(readdirSync(MODEL_DIR).map((n) => [n, new Blob([readFileSync(join(MODEL_DIR, n))])] as const));
  return importLocalModel(blobs, 'tiny-llama', files, 'local-tiny-llama');
}

/** A store whose writes all stop at `crash()`: what a closed tab leaves behind. Reads go on. */
export class CrashableStore implements JobStore {
  crashed = false;
  readonly blobs: BlobStore;
  readonly checkpoints: CheckpointStore;

  constructor(private readonly inner: JobStore) {
    const b = inner.blobs;
    this.blobs = {
      kind: b.kind,
      put: (k, d) => (this.crashed ? Promise.resolve() : b.put(k, d)),
      get: (k) => b.get(k),
      delete: (k) => (this.crashed ? Promise.resolve() : b.delete(k)),
      list: (p) => b.list(p),
      deletePrefix: (p) => (this.crashed ? Promise.resolve() : b.deletePrefix(p)),
    };
    this.checkpoints = blobCheckpointStore(this.blobs);
  }

  crash(): void {
    this.crashed = true;
  }

  putJob: JobStore['putJob'] = (j) => (this.crashed ? Promise.resolve() : this.inner.putJob(j));
  getJob: JobStore['getJob'] = (id) => this.inner.getJob(id);
  listJobs: JobStore['listJobs'] = () => this.inner.listJobs();
  updateJob: JobStore['updateJob'] = async (id, fn) => {
    if (!this.crashed) return this.inner.updateJob(id, fn);
    return fn((await this.inner.getJob(id))!);
  };
  deleteJob: JobStore['deleteJob'] = (id) => (this.crashed ? Promise.resolve() : this.inner.deleteJob(id));
  appendEvents: JobStore['appendEvents'] = async (jobId, events) => {
    if (!this.crashed) return this.inner.appendEvents(jobId, events);
    return events.map((e, i) => ({ seq: -1 - i, jobId, time: e.time ?? 0, level: e.level, message: e.message, step: e.step ?? null, kind: e.kind ?? 'message' }));
  };
  listEvents: JobStore['listEvents'] = (id, o) => this.inner.listEvents(id, o);
  putMetrics: JobStore['putMetrics'] = (id, rows) => (this.crashed ? Promise.resolve() : this.inner.putMetrics(id, rows));
  listMetrics: JobStore['listMetrics'] = (id) => this.inner.listMetrics(id);
  deleteMetricsAfter: JobStore['deleteMetricsAfter'] = (id, step) => (this.crashed ? Promise.resolve() : this.inner.deleteMetricsAfter(id, step));
  putFile: JobStore['putFile'] = (r, d) => (this.crashed ? Promise.resolve() : this.inner.putFile(r, d));
  getFile: JobStore['getFile'] = (id) => this.inner.getFile(id);
  readFile: JobStore['readFile'] = (id) => this.inner.readFile(id);
  listFiles: JobStore['listFiles'] = () => this.inner.listFiles();
  deleteFile: JobStore['deleteFile'] = (id) => (this.crashed ? Promise.resolve() : this.inner.deleteFile(id));
  close(): void {}
}

/** Every batch padded to maxSeqLen: one training shape, so few scratch buffers and pipelines. */
export const BATCHING: JobRunnerOptions['batching'] = { padMultiple: 128 };

export function makeRunner(store: JobStore, options: Partial<JobRunnerOptions> = {}): JobRunner {
  return new JobRunner({ store, acquireGpu: getTestGpu, openModel: storeModelResolver(store.blobs), batching: BATCHING, ...options });
}

/** Uploads the dataset and creates the standard job (f32 weights, suffix "tiny"). */
export async function submit(runner: JobRunner, source: ModelSource, trainJsonl = TRAIN_JSONL): Promise<JobRecord> {
  const train = await runner.uploadFile('train.jsonl', new Blob([trainJsonl]), { model: source });
  const valid = await runner.uploadFile('valid.jsonl', new Blob([VALID_JSONL]));
  return runner.createJob({ model: source, trainingFileId: train.file.id, validationFileId: valid.file.id, hyperparameters: HYPERPARAMETERS, dtype: 'f32', suffix: 'tiny' });
}

export interface ReferenceRun {
  store: MemoryJobStore;
  runner: JobRunner;
  source: ModelSource;
  job: JobRecord;
  metrics: StepMetrics[];
  updates: RunnerUpdate[];
}

/** The standard job run without interruption on the shared test device. */
export async function referenceRun(): Promise<ReferenceRun> {
  const store = new MemoryJobStore();
  const updates: RunnerUpdate[] = [];
  const runner = makeRunner(store, { onUpdate: (u) => updates.push(u) });
  const source = await addTinyLlama(store.blobs);
  const created = await submit(runner, source);
  expect(created.status).toBe('validating_files');
  await runner.idle();
  const job = await runner.getJob(created.id);
  return { store, runner, source, job, metrics: await store.listMetrics(job.id), updates };
}

/** Resumed runs must replay the uninterrupted run: same losses (1e-5) at every step. */
export function expectSameTrajectory(got: StepMetrics[], want: StepMetrics[]): void {
  expect(got.map((m) => m.step)).toEqual(want.map((m) => m.step));
  const keys = ['trainLoss', 'trainAccuracy', 'gradNorm', 'learningRate', 'validLoss', 'fullValidLoss'] as const;
  for (const [i, w] of want.entries()) {
    for (const k of keys) {
      const a = got[i]![k];
      const b = w[k];
      if (b === undefined) {
        expect(a, `step ${w.step} ${k}`).toBeUndefined();
        continue;
      }
      expect(Math.abs(a! - b), `step ${w.step} ${k}: ${a} vs ${b}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(b)));
    }
  }
}

/** A runner's status sequence for one job. */
export function statusLog(updates: readonly RunnerUpdate[], id: string): JobStatus[] {
  const out: JobStatus[] = [];
  for (const u of updates) if (u.type === 'job' && u.job.id === id && out.at(-1) !== u.job.status) out.push(u.job.status);
  return out;
}

/** Same tensor names and shapes, values within 1e-5 of the largest magnitude. */
export async function expectSameAdapter(got: PeftExport, want: PeftExport): Promise<void> {
  const read = async (p: PeftExport) => {
    const src = bytesSource(p.adapterModel);
    const header = await readSafetensorsHeader(src);
    const out = new Map<string, Float32Array>();
    for (const name of header.tensors.keys()) out.set(name, await readTensor(src, header, name, { as: 'f32' }));
    return out;
  };
  const [a, b] = await Promise.all([read(got), read(want)]);
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, values] of b) expectClose(a.get(name)!, values, 1e-5, name);
}
