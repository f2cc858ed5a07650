import 'fake-indexeddb/auto';

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { loadHfModelDir } from '../../src/formats/hfModelDir';
import type { ModelSource } from '../../src/jobs/job';
import { downloadParts, downloadPrefix, hubModelKey, ModelSourceError, storeModelResolver, type DownloadProgress } from '../../src/jobs/models';
import { IdbJobStore } from '../../src/jobs/idbStore';
import { OpfsBlobStore } from '../../src/jobs/opfsBlobStore';
import { blobBytes, MemoryJobStore, modelBlobKey, type BlobStore, type JobStore } from '../../src/jobs/store';
import { FakeDirectoryHandle } from './fakeOpfs';
import { MODEL_DIR } from './helpers';
import { startHubServer, type HubServer } from './hubServer';

const REPO = 'whittle-test/tiny-llama';
const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const SOURCE: ModelSource = { kind: 'hub', name: REPO, revision: 'main', files: FILES };
const KEY = hubModelKey(REPO, 'main');
/** Small parts so the 276 KiB weights file is stored in many. */
const PART = 16 * 1024;

let dbCount = 0;
const stores: [string, () => Promise<JobStore>][] = [
  ['memory', () => Promise.resolve(new MemoryJobStore())],
  ['IndexedDB + OPFS blobs', () => IdbJobStore.open({ name: `whittle-hub-${process.pid}-${++dbCount}`, blobs: new OpfsBlobStore(new FakeDirectoryHandle() as unknown as FileSystemDirectoryHandle) })],
];

let hub: HubServer;
beforeAll(async () => {
  hub = await startHubServer(MODEL_DIR, REPO);
});
afterAll(() => hub.close());
beforeEach(() => {
  hub.requests.length = 0;
  hub.ignoreRange = false;
});

async function expectStoredOriginals(blobs: BlobStore): Promise<void> {
  for (const f of FILES) {
    const blob = await blobs.get(modelBlobKey(KEY, f));
    expect(blob, f).not.toBeNull();
    expect(Buffer.from(await blobBytes(blob!)).equals(Buffer.from(hub.files.get(f)!)), `${f} byte for byte`).toBe(true);
  }
  expect(await blobs.list(`downloads/${KEY}/`)).toEqual([]);
}

describe.each(stores)('resumable Hub download (%s)', (_label, open) => {
  it('keeps finished files and the bytes so far when the connection drops, then resumes with a Range request', async () => {
    const store = await open();
    const resolve = storeModelResolver(store.blobs, { hubUrl: hub.url, partBytes: PART });
    const size = hub.files.get('model.safetensors')!.byteLength;
    const dropAt = 100_000;
    hub.dropOnce('model.safetensors', dropAt);

    const err: unknown = await resolve(SOURCE).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ModelSourceError);
    expect((err as Error).message).toMatch(/resumes from there/);
    // Files before it completed and are stored; the weights are not, but their first bytes are.
    expect(await store.blobs.get(modelBlobKey(KEY, 'config.json'))).not.toBeNull();
    expect(await store.blobs.get(modelBlobKey(KEY, 'generation_config.json'))).not.toBeNull();
    expect(await store.blobs.get(modelBlobKey(KEY, 'model.safetensors'))).toBeNull();
    const stored = await downloadParts(store.blobs, KEY, 'model.safetensors');
    expect(stored.bytes).toBeGreaterThan(0);
    expect(stored.bytes).toBeLessThanOrEqual(dropAt);
    expect(stored.keys.length).toBeGreaterThan(1);
    const partial = new Uint8Array(await new Blob(stored.blobs).arrayBuffer());
    expect(Buffer.from(partial).equals(Buffer.from(hub.files.get('model.safetensors')!.subarray(0, stored.bytes)))).toBe(true);

    hub.requests.length = 0;
    const progress: DownloadProgress[] = [];
    const dir = await resolve(SOURCE, (p) => progress.push(p));
    // Only the missing files were asked for, the weights from the stored offset.
    expect(hub.requests.map((r) => r.file)).toEqual(['model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(hub.requests[0]).toMatchObject({ range: `bytes=${stored.bytes}-`, status: 206 });
    expect(hub.requests[1]!.range).toBeNull();
    const weights = progress.filter((p) => p.file === 'model.safetensors');
    expect(weights[0]).toMatchObject({ loaded: stored.bytes, total: size, resumedFrom: stored.bytes, filesDone: 2, files: 5 });
    expect(weights.at(-1)).toMatchObject({ loaded: size, total: size });
    expect(progress.at(-1)).toMatchObject({ filesDone: 5, files: 5 });

    await expectStoredOriginals(store.blobs);
    const files = await loadHfModelDir(dir);
    expect((files.config as { hidden_size?: number }).hidden_size).toBe(48);
    // Everything is cached now: no more requests.
    hub.requests.length = 0;
    await resolve(SOURCE);
    expect(hub.requests).toEqual([]);
    store.close();
  });

  it('after a tab closes mid-file, a new page resumes from the last stored part', async () => {
    const store = await open();
    // The first page's store: writes stop when the tab "closes".
    let closed = false;
    const b = store.blobs;
    const firstTab: BlobStore = {
      kind: b.kind,
      put: (k, d) => (closed ? Promise.resolve() : b.put(k, d)),
      get: (k) => b.get(k),
      delete: (k) => (closed ? Promise.resolve() : b.delete(k)),
      list: (p) => b.list(p),
      deletePrefix: (p) => (closed ? Promise.resolve() : b.deletePrefix(p)),
    };
    const stallAt = 5 * PART + 1000;
    hub.stallOnce('model.safetensors', stallAt);
    const abandoned = storeModelResolver(firstTab, { hubUrl: hub.url, partBytes: PART })(SOURCE).catch(() => null);
    // Wait until the first page has stored what it will before the stall (whole parts only:
    // bytes still buffered in memory, if any, are lost with the tab).
    let stored = await downloadParts(b, KEY, 'model.safetensors');
    for (let still = 0, t0 = Date.now(); still < 10 && Date.now() - t0 < 10_000; ) {
      await new Promise((r) => setTimeout(r, 20));
      const now = await downloadParts(b, KEY, 'model.safetensors');
      still = now.bytes === stored.bytes && now.bytes > 0 ? still + 1 : 0;
      stored = now;
    }
    closed = true;
    expect(stored.bytes).toBeGreaterThanOrEqual(4 * PART);
    expect(stored.bytes).toBeLessThanOrEqual(stallAt);

    hub.requests.length = 0;
    await storeModelResolver(store.blobs, { hubUrl: hub.url, partBytes: PART })(SOURCE);
    expect(hub.requests[0]).toMatchObject({ file: 'model.safetensors', range: `bytes=${stored.bytes}-`, status: 206 });
    await expectStoredOriginals(store.blobs);
    hub.dropConnections();
    await abandoned;
    store.close();
  });

  it('starts over when the server ignores Range or the file changed', async () => {
    const store = await open();
    const resolve = storeModelResolver(store.blobs, { hubUrl: hub.url, partBytes: PART });
    hub.dropOnce('model.safetensors', 60_000);
    await expect(resolve(SOURCE)).rejects.toThrow(ModelSourceError);
    expect((await downloadParts(store.blobs, KEY, 'model.safetensors')).bytes).toBeGreaterThan(0);

    // No Range support: the 200 response is the whole file, used from its first byte.
    hub.ignoreRange = true;
    hub.dropOnce('model.safetensors', 40_000);
    await expect(resolve(SOURCE)).rejects.toThrow(ModelSourceError);
    const afterRestart = await downloadParts(store.blobs, KEY, 'model.safetensors');
    expect(afterRestart.bytes).toBeLessThanOrEqual(40_000);
    const head = new Uint8Array(await new Blob(afterRestart.blobs).arrayBuffer());
    expect(Buffer.from(head).equals(Buffer.from(hub.files.get('model.safetensors')!.subarray(0, afterRestart.bytes)))).toBe(true);

    // A new ETag: the stored bytes belong to another version, so the range answer is refused.
    hub.ignoreRange = false;
    hub.etags.set('model.safetensors', '"model.safetensors-v2"');
    hub.requests.length = 0;
    await resolve(SOURCE);
    const weights = hub.requests.filter((r) => r.file === 'model.safetensors');
    expect(weights.map((r) => [r.range, r.status])).toEqual([
      [`bytes=${afterRestart.bytes}-`, 206],
      [null, 200],
    ]);
    hub.etags.set('model.safetensors', '"model.safetensors-v1"');
    await expectStoredOriginals(store.blobs);
    expect(await store.blobs.list(downloadPrefix(KEY, 'model.safetensors'))).toEqual([]);
    store.close();
  });

  it('starts over when the stored bytes run past the file (416), e.g. parts left without their metadata', async () => {
    const store = await open();
    const weights = hub.files.get('model.safetensors')!;
    // More bytes than the file has, and no meta.json saying how big it was.
    await store.blobs.put(`${downloadPrefix(KEY, 'model.safetensors')}part-00000000`, new Uint8Array(weights.byteLength + 10).fill(7));
    hub.requests.length = 0;
    await storeModelResolver(store.blobs, { hubUrl: hub.url, partBytes: PART })(SOURCE);
    expect(hub.requests.filter((r) => r.file === 'model.safetensors').map((r) => [r.range, r.status])).toEqual([
      [`bytes=${weights.byteLength + 10}-`, 416],
      [null, 200],
    ]);
    await expectStoredOriginals(store.blobs);
    store.close();
  });
});
