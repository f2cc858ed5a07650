import 'fake-indexeddb/auto';

import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createJobRecord, transition, type JobRecord, type ModelSource } from '../../src/jobs/job';
import { listCachedModels, ModelCacheError, removeCachedModel } from '../../src/jobs/modelCache';
import { hubModelKey, modelSourceBlobKey, storeModelResolver } from '../../src/jobs/models';
import { IdbJobStore } from '../../src/jobs/idbStore';
import { OpfsBlobStore } from '../../src/jobs/opfsBlobStore';
import { MemoryJobStore, type JobStore } from '../../src/jobs/store';
import { TrainingClient, type ClientEndpoint } from '../../src/worker/client';
import { serveTraining, type HostEndpoint } from '../../src/worker/trainingHost';
import { TrainingWorkerError } from '../../src/worker/trainingProtocol';
import { FakeDirectoryHandle } from './fakeOpfs';
import { addTinyLlama, MODEL_DIR, TRAIN_JSONL } from './helpers';
import { startHubServer, type HubServer } from './hubServer';

const REPO = 'whittle-test/tiny-llama';
const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const HUB: ModelSource = { kind: 'hub', name: REPO, revision: 'main', files: FILES };
const HUB_KEY = hubModelKey(REPO, 'main');
const sizeOf = (f: string) => statSync(join(MODEL_DIR, f)).size;
const TOTAL = FILES.reduce((n, f) => n + sizeOf(f), 0);

let dbCount = 0;
const stores: [string, () => Promise<JobStore>][] = [
  ['memory', () => Promise.resolve(new MemoryJobStore())],
  ['IndexedDB (blobs in IndexedDB)', () => IdbJobStore.open({ name: `whittle-cache-${process.pid}-${++dbCount}` })],
  ['IndexedDB + OPFS blobs', () => IdbJobStore.open({ name: `whittle-cache-${process.pid}-${++dbCount}`, blobs: new OpfsBlobStore(new FakeDirectoryHandle() as unknown as FileSystemDirectoryHandle) })],
];

let hub: HubServer;
let embedded: ModelSource;
beforeAll(async () => {
  hub = await startHubServer(MODEL_DIR, REPO);
  // The same files stand in for the app's embedded model, served over HTTP.
  embedded = { kind: 'embedded', name: 'whittle-wordnet-tiny', url: `${hub.url}/${REPO}/resolve/main/`, files: FILES };
});
afterAll(() => hub.close());

function jobOn(source: ModelSource, id: string): JobRecord {
  return createJobRecord({
    id,
    baseModel: {
      source,
      summary: { architecture: 'LlamaForCausalLM', modelType: 'llama', family: 'llama', parameters: 1, layers: 2, hidden: 48, heads: 4, kvHeads: 2, vocabSize: 320, maxPositions: 128, torchDtype: null },
    },
    trainingFile: { id: 'file-a', name: 'train.jsonl', bytes: 3 },
    hyperparameters: { epochs: 1 },
    now: 1,
  });
}

describe.each(stores)('model cache (%s)', (_label, open) => {
  it('lists the embedded, local and partly downloaded Hub models with files and sizes', async () => {
    const store = await open();
    expect(await listCachedModels(store)).toEqual([]);
    const local = await addTinyLlama(store.blobs);
    hub.dropOnce('model.safetensors', 50_000);
    await expect(storeModelResolver(store.blobs, { hubUrl: hub.url, partBytes: 8192 })(HUB)).rejects.toThrow(/resumes from there/);

    const list = await listCachedModels(store, { embedded });
    expect(list.map((m) => [m.kind, m.name, m.key])).toEqual([
      ['embedded', 'whittle-wordnet-tiny', null],
      ['local', 'tiny-llama', 'local-tiny-llama'],
      ['hub', REPO, HUB_KEY],
    ]);
    const [emb, loc, hubModel] = list as [NonNullable<(typeof list)[0]>, NonNullable<(typeof list)[0]>, NonNullable<(typeof list)[0]>];
    // Embedded: sizes from HEAD requests; nothing to delete.
    expect(emb.files).toEqual(FILES.map((name) => ({ name, bytes: sizeOf(name), partial: false })));
    expect(emb.bytes).toBe(TOTAL);
    expect(emb.cannotRemove).toMatch(/served with the app.*nothing to delete/);
    // Local: every file, the total, the recorded source.
    expect(loc.files).toEqual(FILES.map((name) => ({ name, bytes: sizeOf(name), partial: false })));
    expect(loc).toMatchObject({ bytes: TOTAL, source: local, missingFiles: [], jobs: [], cannotRemove: null });
    expect(loc.addedAt).toBeGreaterThan(0);
    // Hub: the files that finished, the weights so far (partial), the rest missing.
    expect(hubModel).toMatchObject({ revision: 'main', source: HUB, missingFiles: ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json'] });
    const weights = hubModel.files.find((f) => f.name === 'model.safetensors')!;
    expect(weights.partial).toBe(true);
    expect(weights.bytes).toBeGreaterThan(0);
    expect(weights.bytes).toBeLessThanOrEqual(50_000);
    expect(hubModel.bytes).toBe(sizeOf('config.json') + sizeOf('generation_config.json') + weights.bytes!);
    store.close();
  });

  it('refuses to remove a model an unfinished job uses, removes it once the job ended, and never the embedded one', async () => {
    const store = await open();
    const local = await addTinyLlama(store.blobs);
    await storeModelResolver(store.blobs, { hubUrl: hub.url })(HUB);
    const queued = transition(jobOn(local, 'ftjob-queued'), 'queued', {}, 2);
    await store.putJob(queued);
    await store.putJob(transition(jobOn(HUB, 'ftjob-done'), 'cancelled', {}, 2));

    const listed = await listCachedModels(store);
    const loc = listed.find((m) => m.key === 'local-tiny-llama')!;
    expect(loc.jobs).toEqual([{ id: 'ftjob-queued', status: 'queued' }]);
    expect(loc.cannotRemove).toMatch(/ftjob-queued \(queued\)/);
    expect(listed.find((m) => m.key === HUB_KEY)).toMatchObject({ jobs: [{ id: 'ftjob-done', status: 'cancelled' }], cannotRemove: null, bytes: TOTAL });

    const refused = await removeCachedModel(store, 'local-tiny-llama').then(() => null, (e: unknown) => e);
    expect(refused).toBeInstanceOf(ModelCacheError);
    expect((refused as Error).message).toMatch(/tiny-llama is the base model of job ftjob-queued \(queued\): cancel it/);
    expect(await store.blobs.list('models/local-tiny-llama/')).toHaveLength(FILES.length);
    await expect(removeCachedModel(store, null)).rejects.toThrow(/nothing to delete/);
    await expect(removeCachedModel(store, 'local-nope')).rejects.toThrow(/no cached model local-nope/);

    // Running and paused jobs hold it too; a finished one does not.
    await store.updateJob('ftjob-queued', (j) => transition(j, 'running', {}, 3));
    await expect(removeCachedModel(store, 'local-tiny-llama')).rejects.toThrow(/running/);
    await store.updateJob('ftjob-queued', (j) => transition(j, 'paused', {}, 4));
    await expect(removeCachedModel(store, 'local-tiny-llama')).rejects.toThrow(/paused/);
    await store.updateJob('ftjob-queued', (j) => transition(j, 'cancelled', {}, 5));

    expect(await removeCachedModel(store, 'local-tiny-llama')).toEqual({ key: 'local-tiny-llama', bytes: TOTAL, files: FILES.length });
    expect(await store.blobs.list('models/local-tiny-llama/')).toEqual([]);
    expect(await store.blobs.get(modelSourceBlobKey('local-tiny-llama'))).toBeNull();
    expect((await listCachedModels(store)).map((m) => m.key)).toEqual([HUB_KEY]);
    // The Hub model's blobs were not touched.
    expect(await store.blobs.list(`models/${HUB_KEY}/`)).toHaveLength(FILES.length);
    store.close();
  });
});

describe('list-models, delete-model and preview-examples over the protocol (no GPU needed)', () => {
  it('lists, deletes (a later use downloads again) and previews tokens', async () => {
    const store = new MemoryJobStore();
    const channel = new MessageChannel();
    serveTraining(channel.port2 as unknown as HostEndpoint, {
      openStore: () => Promise.resolve(store),
      acquireGpu: () => Promise.reject(new Error('no GPU in this test')),
      openModel: (s) => storeModelResolver(s.blobs, { hubUrl: hub.url }),
      locks: null,
      broadcast: null,
    });
    const client = new TrainingClient(channel.port1 as unknown as ClientEndpoint);
    try {
      await client.init({ autoStart: false });
      hub.requests.length = 0;
      await client.inspectModel(HUB);
      expect(hub.requests.filter((r) => r.method === 'GET')).toHaveLength(FILES.length);

      const list = await client.listModels(embedded);
      expect(list.map((m) => [m.name, m.bytes])).toEqual([
        ['whittle-wordnet-tiny', TOTAL],
        [REPO, TOTAL],
      ]);
      const deleteEmbedded = await client.deleteModel(null).then(() => null, (e: unknown) => e);
      expect(deleteEmbedded).toBeInstanceOf(TrainingWorkerError);
      expect((deleteEmbedded as TrainingWorkerError).name).toBe('ModelCacheError');
      expect(await client.deleteModel(HUB_KEY)).toEqual({ key: HUB_KEY, bytes: TOTAL, files: FILES.length });
      expect((await client.listModels()).map((m) => m.key)).toEqual([]);

      // Removed means gone: using it again downloads it again.
      hub.requests.length = 0;
      await client.inspectModel(HUB);
      expect(hub.requests.filter((r) => r.method === 'GET').map((r) => r.file)).toEqual(FILES);

      const preview = await client.previewExamples({ file: new Blob([TRAIN_JSONL]), model: HUB, count: 2, maxSeqLen: 20 });
      expect(preview.format).toBe('chat');
      expect(preview.maxSeqLen).toBe(20);
      expect(preview.examples).toHaveLength(2);
      for (const ex of preview.examples) {
        expect(ex.kept).toBeLessThanOrEqual(20);
        expect(ex.tokens.slice(ex.kept).every((t) => !t.trained)).toBe(true);
      }
      const full = await client.previewExamples({ file: new Blob([readFileSync(join(MODEL_DIR, '..', '..', 'data', 'chat_valid.jsonl'))]), model: HUB });
      expect(full.examples).toHaveLength(3);
      expect(full.examples.every((e) => !e.truncated && e.trainedTokens > 0)).toBe(true);
    } finally {
      client.close();
      channel.port1.close();
      channel.port2.close();
    }
  });
});
