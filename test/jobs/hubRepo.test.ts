import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { openModelWeights } from '../../src/formats/hfModelDir';
import { HubRepoError, hubSourceOf, resolveHubRepo, shardsOfIndex } from '../../src/jobs/hubRepo';
import { ModelSourceError, storeModelResolver, type DownloadProgress } from '../../src/jobs/models';
import { MemoryJobStore } from '../../src/jobs/store';
import { MODEL_DIR } from './helpers';
import { startHubServer, type HubServer } from './hubServer';

const SINGLE = 'whittle-test/tiny-llama';
const SHARDED = 'whittle-test/tiny-llama-sharded';
const GATED = 'whittle-gated/tiny-llama';
const NO_TOKENIZER = 'whittle-test/no-tokenizer';
const BIN_ONLY = 'whittle-test/pytorch-only';
const BROKEN_INDEX = 'whittle-test/broken-index';
const TOKEN = 'hf_test_token';

const folder = () => new Map(readdirSync(MODEL_DIR).map((n) => [n, new Uint8Array(readFileSync(join(MODEL_DIR, n)))] as const));

/** Splits a safetensors file in two at a tensor boundary, as sharded checkpoints are saved. */
function shard(file: Uint8Array): { shards: [string, Uint8Array][]; index: Uint8Array } {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__').sort();
  const halves = [names.slice(0, names.length >> 1), names.slice(names.length >> 1)];
  const weightMap: Record<string, string> = {};
  const shards = halves.map((part, i): [string, Uint8Array] => {
    const name = `model-0000${i + 1}-of-00002.safetensors`;
    const h: Record<string, unknown> = {};
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const t of part) {
      const { dtype, shape, data_offsets: [a, b] } = header[t]!;
      h[t] = { dtype, shape, data_offsets: [offset, offset + b - a] };
      chunks.push(file.subarray(8 + n + a, 8 + n + b));
      offset += b - a;
      weightMap[t] = name;
    }
    const json = new TextEncoder().encode(JSON.stringify(h).padEnd(Math.ceil(JSON.stringify(h).length / 8) * 8, ' '));
    const out = new Uint8Array(8 + json.byteLength + offset);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
    out.set(json, 8);
    let at = 8 + json.byteLength;
    for (const c of chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return [name, out];
  });
  return { shards, index: new TextEncoder().encode(JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap })) };
}

let hub: HubServer;
let sharded: Map<string, Uint8Array>;
beforeAll(async () => {
  const base = folder();
  const { shards, index } = shard(base.get('model.safetensors')!);
  sharded = new Map([...base].filter(([n]) => n !== 'model.safetensors'));
  sharded.set('model.safetensors.index.json', index);
  for (const [n, b] of shards) sharded.set(n, b);
  sharded.set('README.md', new TextEncoder().encode('# not downloaded'));
  const withoutTokenizer = new Map([...base].filter(([n]) => n !== 'tokenizer.json'));
  const binOnly = new Map([...base].filter(([n]) => n !== 'model.safetensors'));
  binOnly.set('pytorch_model.bin', new Uint8Array(16));
  const brokenIndex = new Map(sharded);
  brokenIndex.delete('model-00002-of-00002.safetensors');
  hub = await startHubServer(MODEL_DIR, SINGLE, 'main', {
    token: TOKEN,
    repos: {
      [SHARDED]: { files: sharded, redirectLfs: true },
      [GATED]: { files: base, gated: true, redirectLfs: true },
      [NO_TOKENIZER]: { files: withoutTokenizer },
      [BIN_ONLY]: { files: binOnly },
      [BROKEN_INDEX]: { files: brokenIndex },
    },
  });
});
afterAll(() => hub.close());
beforeEach(() => {
  hub.requests.length = 0;
});

describe('resolving a repo through the Hub API', () => {
  it('lists the model files of a single-file repo with sizes and the commit, small files first', async () => {
    const listing = await resolveHubRepo(SINGLE, { hubUrl: hub.url });
    expect(listing.files.map((f) => f.name)).toEqual(['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']);
    for (const f of listing.files) expect(f.bytes, f.name).toBe(hub.files.get(f.name)!.byteLength);
    expect(listing.bytes).toBe([...hub.files.values()].reduce((n, b) => n + b.byteLength, 0));
    expect(listing.commit).toBe(hub.commitOf(SINGLE));
    expect(listing.shards).toBe(0);
    expect((listing.config as { model_type: string }).model_type).toBe('llama');
    expect(hub.requests.some((r) => r.path === `/api/models/${SINGLE}/tree/main`)).toBe(true);
  });

  it('finds the shards of a sharded checkpoint through its index, downloads them through redirects and loads them', async () => {
    const listing = await resolveHubRepo(SHARDED, { hubUrl: hub.url });
    expect(listing.shards).toBe(2);
    const names = listing.files.map((f) => f.name);
    expect(names).toContain('model.safetensors.index.json');
    expect(names).toContain('model-00001-of-00002.safetensors');
    expect(names).toContain('model-00002-of-00002.safetensors');
    expect(names).not.toContain('README.md');
    // The LFS entry's size, not the pointer's.
    expect(listing.files.find((f) => f.name === 'model-00001-of-00002.safetensors')!.bytes).toBe(sharded.get('model-00001-of-00002.safetensors')!.byteLength);

    const store = new MemoryJobStore();
    const progress: DownloadProgress[] = [];
    hub.requests.length = 0;
    const dir = await storeModelResolver(store.blobs, { hubUrl: hub.url })(hubSourceOf(listing), (p) => progress.push(p));
    // Weights went through the Hub's redirect to the CDN path.
    expect(hub.requests.filter((r) => r.status === 302).map((r) => r.file)).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(hub.requests.filter((r) => r.path.startsWith('/cdn/')).length).toBe(2);
    // Per-file progress for every file, then done.
    expect(new Set(progress.map((p) => p.file))).toEqual(new Set([...names, '']));
    expect(progress.at(-1)).toMatchObject({ filesDone: names.length, files: names.length });
    const weights = await openModelWeights(dir);
    expect(weights.tensors.size).toBeGreaterThan(10);
    store.close();
  });

  it('a gated repo: 401 without a token says to accept the licence and give one; with the token it lists and downloads', async () => {
    const err = await resolveHubRepo(GATED, { hubUrl: hub.url }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubRepoError);
    expect(err).toMatchObject({ status: 401 });
    expect((err as Error).message).toMatch(/gated or private \(HTTP 401\): accept its licence on huggingface.co\/whittle-gated\/tiny-llama, then give a Hugging Face access token/);
    await expect(resolveHubRepo(GATED, { hubUrl: hub.url, accessToken: 'hf_wrong' })).rejects.toThrow(/refused the access token \(HTTP 401\)/);

    const listing = await resolveHubRepo(GATED, { hubUrl: hub.url, accessToken: TOKEN });
    expect(listing.files.map((f) => f.name)).toContain('model.safetensors');
    const store = new MemoryJobStore();
    // The downloader without the token: a clear 401.
    await expect(storeModelResolver(store.blobs, { hubUrl: hub.url })(hubSourceOf(listing))).rejects.toThrow(/HTTP 401.*give a Hugging Face access token/);
    hub.requests.length = 0;
    await storeModelResolver(store.blobs, { hubUrl: hub.url, accessToken: (repo) => (repo === GATED ? TOKEN : null) })(hubSourceOf(listing));
    expect(hub.requests.filter((r) => r.path.includes('/resolve/')).every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    store.close();
  });

  it('a missing repo, revision or file is a 404 with the name', async () => {
    await expect(resolveHubRepo('nobody/nothing', { hubUrl: hub.url })).rejects.toThrow(/nobody\/nothing: no such repo or revision "main" on the Hub \(HTTP 404\)/);
    await expect(resolveHubRepo(SINGLE, { hubUrl: hub.url, revision: 'v9' })).rejects.toThrow(/revision "v9".*HTTP 404/);
    const store = new MemoryJobStore();
    const source = { kind: 'hub' as const, name: SINGLE, revision: 'main', files: ['config.json', 'no-such-file.json'] };
    const err = await storeModelResolver(store.blobs, { hubUrl: hub.url })(source).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelSourceError);
    expect((err as Error).message).toMatch(/no-such-file\.json: HTTP 404 .*does not exist/);
    store.close();
  });

  it('refuses repos that are not a model folder this app can load, naming what is missing', async () => {
    await expect(resolveHubRepo(NO_TOKENIZER, { hubUrl: hub.url })).rejects.toThrow(/has no tokenizer\.json at revision main/);
    await expect(resolveHubRepo(BIN_ONLY, { hubUrl: hub.url })).rejects.toThrow(/no safetensors weights .*pytorch_model\.bin/);
    await expect(resolveHubRepo(BROKEN_INDEX, { hubUrl: hub.url })).rejects.toThrow(/index\.json names model-00002-of-00002\.safetensors, which the repo does not have/);
    expect(() => shardsOfIndex({ weight_map: { a: 'x.bin' } })).toThrow(/not a \.safetensors file/);
    expect(() => shardsOfIndex({})).toThrow(/no weight_map/);
  });
});
