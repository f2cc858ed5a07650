import 'fake-indexeddb/auto';

import { describe, expect, it } from 'vitest';

import { createJobRecord, transition, type FileRecord, type JobRecord } from '../../src/jobs/job';
import { IdbJobStore, openJobStore } from '../../src/jobs/idbStore';
import { OpfsBlobStore } from '../../src/jobs/opfsBlobStore';
import { adapterBlobKey, JobStoreError, MemoryJobStore, type JobStore } from '../../src/jobs/store';
import { loadLatestCheckpoint, saveAndPrune, serializeCheckpoint, type Checkpoint } from '../../src/train/checkpoint';
import type { Hyperparameters } from '../../src/train/hyperparameters';
import type { StepMetrics } from '../../src/train/metrics';
import { FakeDirectoryHandle } from './fakeOpfs';

let dbCount = 0;
const freshName = () => `whittle-test-${process.pid}-${++dbCount}`;

const factories: [string, () => Promise<JobStore>][] = [
  ['memory', () => Promise.resolve(new MemoryJobStore())],
  ['IndexedDB (blobs in IndexedDB)', () => IdbJobStore.open({ name: freshName() })],
  ['IndexedDB + OPFS blobs', () => IdbJobStore.open({ name: freshName(), blobs: new OpfsBlobStore(new FakeDirectoryHandle() as unknown as FileSystemDirectoryHandle) })],
];

function job(id: string, createdAt: number): JobRecord {
  return createJobRecord({
    id,
    baseModel: {
      source: { kind: 'local', name: 'tiny', modelKey: 'local-1', files: ['config.json'] },
      summary: { architecture: 'LlamaForCausalLM', modelType: 'llama', family: 'llama', parameters: 1, layers: 2, hidden: 48, heads: 4, kvHeads: 2, vocabSize: 320, maxPositions: 128, torchDtype: null },
    },
    trainingFile: { id: 'file-a', name: 'train.jsonl', bytes: 3 },
    hyperparameters: { epochs: 2, targetModules: ['q_proj'] },
    now: createdAt,
  });
}

function row(step: number, loss: number): StepMetrics {
  return { step, epoch: 1, trainLoss: loss, trainAccuracy: 0.5, trainTokens: 10, learningRate: 1e-4, gradNorm: 1, tokensPerSecond: 100, elapsedMs: step, etaMs: null, gpuBytes: 0 };
}

function checkpoint(name: string, step: number): Uint8Array {
  const cp: Checkpoint = {
    name,
    state: { step, epoch: 0, batchIndex: step, totalSteps: 10, seed: 1, elapsedMs: 5, finished: false },
    hyperparameters: { epochs: 1 } as Hyperparameters,
    metrics: [row(1, 2)],
    tensors: new Map([['a.lora_A.weight', { shape: [2, 2], data: Float32Array.from([1, 2, 3, step]) }]]),
  };
  return serializeCheckpoint(cp);
}

describe.each(factories)('JobStore: %s', (_label, open) => {
  it('keeps job records, lists them newest first and updates them atomically', async () => {
    const store = await open();
    await store.putJob(job('ftjob-old', 100));
    await store.putJob(job('ftjob-new', 200));
    expect((await store.listJobs()).map((j) => j.id)).toEqual(['ftjob-new', 'ftjob-old']);
    expect(await store.getJob('ftjob-none')).toBeNull();

    const got = (await store.getJob('ftjob-old'))!;
    expect(got).toEqual(job('ftjob-old', 100));
    got.hyperparameters.requested.epochs = 99; // a copy: the store must not change with it
    expect((await store.getJob('ftjob-old'))!.hyperparameters.requested.epochs).toBe(2);

    const queued = await store.updateJob('ftjob-old', (j) => transition(j, 'queued', {}, 300));
    expect(queued.status).toBe('queued');
    expect((await store.getJob('ftjob-old'))!).toMatchObject({ status: 'queued', updatedAt: 300 });
    // A throwing update (an illegal transition) leaves the record as it was.
    await expect(store.updateJob('ftjob-old', (j) => transition(j, 'succeeded'))).rejects.toThrow('cannot go from queued to succeeded');
    expect((await store.getJob('ftjob-old'))!.status).toBe('queued');
    await expect(store.updateJob('ftjob-none', (j) => j)).rejects.toThrow(JobStoreError);

    // Concurrent read-modify-writes do not lose each other's changes.
    await Promise.all(Array.from({ length: 10 }, () => store.updateJob('ftjob-new', (j) => ({ ...j, trainedTokens: j.trainedTokens + 1 }))));
    expect((await store.getJob('ftjob-new'))!.trainedTokens).toBe(10);
    store.close();
  });

  it('appends events with per-job sequence numbers and pages through them', async () => {
    const store = await open();
    const a = await store.appendEvents('ftjob-a', [
      { level: 'info', message: 'one', time: 1 },
      { level: 'warning', message: 'two', step: 3, kind: 'trainer', time: 2 },
    ]);
    await store.appendEvents('ftjob-b', [{ level: 'info', message: 'other job', time: 3 }]);
    const more = await Promise.all([store.appendEvents('ftjob-a', [{ level: 'error', message: 'three', time: 4 }]), store.appendEvents('ftjob-a', [{ level: 'info', message: 'four', time: 5 }])]);
    expect(a).toEqual([
      { seq: 1, jobId: 'ftjob-a', time: 1, level: 'info', message: 'one', step: null, kind: 'message' },
      { seq: 2, jobId: 'ftjob-a', time: 2, level: 'warning', message: 'two', step: 3, kind: 'trainer' },
    ]);
    expect(more.flat().map((e) => e.seq).sort()).toEqual([3, 4]);
    const all = await store.listEvents('ftjob-a');
    expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(all.map((e) => e.message).slice(0, 2)).toEqual(['one', 'two']);
    expect((await store.listEvents('ftjob-a', { afterSeq: 2 })).map((e) => e.seq)).toEqual([3, 4]);
    expect((await store.listEvents('ftjob-a', { afterSeq: 1, limit: 2 })).map((e) => e.seq)).toEqual([2, 3]);
    expect((await store.listEvents('ftjob-b')).map((e) => [e.seq, e.message])).toEqual([[1, 'other job']]);
    expect(await store.listEvents('ftjob-none')).toEqual([]);
    store.close();
  });

  it('stores metrics rows by step, replaces them, keeps NaN, and drops rows after a step', async () => {
    const store = await open();
    await store.putMetrics('ftjob-a', [row(3, 0.3), row(1, 0.1), row(2, NaN)]);
    await store.putMetrics('ftjob-b', [row(1, 9)]);
    await store.putMetrics('ftjob-a', [{ ...row(3, 0.33), validLoss: 0.5 }]);
    const rows = await store.listMetrics('ftjob-a');
    expect(rows.map((r) => r.step)).toEqual([1, 2, 3]);
    expect(Number.isNaN(rows[1]!.trainLoss)).toBe(true);
    expect(rows[2]).toMatchObject({ trainLoss: 0.33, validLoss: 0.5 });
    await store.deleteMetricsAfter('ftjob-a', 1);
    expect((await store.listMetrics('ftjob-a')).map((r) => r.step)).toEqual([1]);
    expect((await store.listMetrics('ftjob-b')).map((r) => r.trainLoss)).toEqual([9]);
    await store.deleteMetricsAfter('ftjob-a', 0);
    expect(await store.listMetrics('ftjob-a')).toEqual([]);
    store.close();
  });

  it('keeps uploaded files with their bytes', async () => {
    const store = await open();
    const rec = (id: string, createdAt: number): FileRecord => ({ id, name: `${id}.jsonl`, bytes: 5, createdAt, purpose: 'fine-tune', format: 'chat', examples: 1 });
    await store.putFile(rec('file-1', 1), new TextEncoder().encode('hello'));
    await store.putFile(rec('file-2', 2), new Blob(['world']));
    expect((await store.listFiles()).map((f) => f.id)).toEqual(['file-2', 'file-1']);
    expect(await (await store.readFile('file-1'))!.text()).toBe('hello');
    expect(await (await store.readFile('file-2'))!.text()).toBe('world');
    expect(await store.getFile('file-2')).toEqual(rec('file-2', 2));
    await store.deleteFile('file-1');
    expect(await store.readFile('file-1')).toBeNull();
    expect(await store.getFile('file-1')).toBeNull();
    store.close();
  });

  it('keeps blobs under safe keys and lists and deletes them by folder', async () => {
    const store = await open();
    const b = store.blobs;
    const bytes = Uint8Array.from([1, 2, 3]);
    await b.put('models/m1/config.json', bytes);
    bytes[0] = 9; // the store took a copy
    await b.put('models/m1/model.safetensors', new Blob([Uint8Array.from([4])]));
    await b.put('models/m10/x', new Blob(['x']));
    await b.put('models/m1/config.json', Uint8Array.from([1, 2, 3, 4])); // replace
    expect([...new Uint8Array(await (await b.get('models/m1/config.json'))!.arrayBuffer())]).toEqual([1, 2, 3, 4]);
    expect(await b.list('models/m1/')).toEqual(['models/m1/config.json', 'models/m1/model.safetensors']);
    expect(await b.list('models/')).toEqual(['models/m1/config.json', 'models/m1/model.safetensors', 'models/m10/x']);
    expect(await b.list('nothing/')).toEqual([]);
    expect(await b.get('models/m1/none')).toBeNull();
    expect(await b.get('nothing/at/all')).toBeNull();
    await b.delete('models/m1/none'); // deleting what is not there is fine
    await b.deletePrefix('models/m1/');
    expect(await b.list('models/')).toEqual(['models/m10/x']);
    for (const bad of ['../x', 'a//b', 'a/./b', 'a b', '', 'a/..']) await expect(b.put(bad, bytes)).rejects.toThrow(JobStoreError);
    await expect(b.list('models')).rejects.toThrow('must end with /');
    store.close();
  });

  it('serves the trainer as a CheckpointStore (save, prune, latest)', async () => {
    const store = await open();
    const cps = store.checkpoints;
    for (const step of [1, 2, 3, 4]) await saveAndPrune(cps, 'ftjob-a', `step-0000000${step}`, checkpoint(`step-0000000${step}`, step), 2);
    await cps.save('ftjob-b', 'step-00000009', checkpoint('step-00000009', 9));
    expect(await cps.list('ftjob-a')).toEqual(['step-00000003', 'step-00000004']);
    const latest = (await loadLatestCheckpoint(cps, 'ftjob-a'))!;
    expect(latest.state.step).toBe(4);
    expect([...latest.tensors.get('a.lora_A.weight')!.data]).toEqual([1, 2, 3, 4]);
    expect(await cps.load('ftjob-a', 'step-00000001')).toBeNull();
    expect(await loadLatestCheckpoint(cps, 'ftjob-none')).toBeNull();
    await expect(cps.save('bad/id', 'x', new Uint8Array(1))).rejects.toThrow();
    store.close();
  });

  it('deletes a job with its events, metrics, checkpoints and adapter, and nothing else', async () => {
    const store = await open();
    for (const id of ['ftjob-a', 'ftjob-b']) {
      await store.putJob(job(id, 1));
      await store.appendEvents(id, [{ level: 'info', message: id }]);
      await store.putMetrics(id, [row(1, 1)]);
      await store.checkpoints.save(id, 'step-00000001', checkpoint('step-00000001', 1));
      await store.blobs.put(adapterBlobKey(id), new Uint8Array(4));
    }
    await store.putFile({ id: 'file-a', name: 'a', bytes: 1, createdAt: 1, purpose: 'fine-tune', format: null, examples: null }, new Uint8Array(1));
    await store.deleteJob('ftjob-a');
    expect(await store.getJob('ftjob-a')).toBeNull();
    expect(await store.listEvents('ftjob-a')).toEqual([]);
    expect(await store.listMetrics('ftjob-a')).toEqual([]);
    expect(await store.checkpoints.list('ftjob-a')).toEqual([]);
    expect(await store.blobs.get(adapterBlobKey('ftjob-a'))).toBeNull();
    expect((await store.getJob('ftjob-b'))!.id).toBe('ftjob-b');
    expect(await store.listEvents('ftjob-b')).toHaveLength(1);
    expect(await store.listMetrics('ftjob-b')).toHaveLength(1);
    expect(await store.checkpoints.list('ftjob-b')).toEqual(['step-00000001']);
    expect(await store.blobs.get(adapterBlobKey('ftjob-b'))).not.toBeNull();
    expect(await store.readFile('file-a')).not.toBeNull();
    store.close();
  });
});

describe('IndexedDB store', () => {
  it('puts blobs in IndexedDB when there is no OPFS (Node) and keeps everything across a reopen', async () => {
    const name = freshName();
    const store = await openJobStore({ name });
    expect(store.blobs.kind).toBe('indexeddb');
    await store.putJob(job('ftjob-a', 1));
    await store.appendEvents('ftjob-a', [{ level: 'info', message: 'before the reload' }]);
    await store.putMetrics('ftjob-a', [row(1, 0.25)]);
    await store.checkpoints.save('ftjob-a', 'step-00000001', checkpoint('step-00000001', 1));
    store.close();

    const again = await openJobStore({ name });
    expect((await again.getJob('ftjob-a'))!.id).toBe('ftjob-a');
    expect((await again.listEvents('ftjob-a')).map((e) => e.message)).toEqual(['before the reload']);
    expect((await again.listMetrics('ftjob-a'))[0]!.trainLoss).toBe(0.25);
    expect((await loadLatestCheckpoint(again.checkpoints, 'ftjob-a'))!.state.step).toBe(1);
    // New events continue the sequence after a reopen.
    expect((await again.appendEvents('ftjob-a', [{ level: 'info', message: 'after' }]))[0]!.seq).toBe(2);
    again.close();
  });

  it('uses OPFS for blobs when navigator.storage.getDirectory exists', async () => {
    const root = new FakeDirectoryHandle();
    const nav = { storage: { getDirectory: () => Promise.resolve(root) } };
    const had = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true });
    try {
      const store = await openJobStore({ name: freshName() });
      expect(store.blobs.kind).toBe('opfs');
      await store.checkpoints.save('ftjob-a', 'step-00000001', checkpoint('step-00000001', 1));
      // The file sits in the OPFS folder named after the database, one folder per key segment.
      const top = [...root.children.values()][0] as FakeDirectoryHandle;
      const folder = (await (await top.getDirectoryHandle('checkpoints')).getDirectoryHandle('ftjob-a')) as FakeDirectoryHandle;
      expect([...folder.children.keys()]).toEqual(['step-00000001.safetensors']);
      store.close();
    } finally {
      if (had) Object.defineProperty(globalThis, 'navigator', had);
      else delete (globalThis as { navigator?: unknown }).navigator;
    }
  });
});
