import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hubSourceOf } from '../../src/jobs/hubRepo';
import { WEBGPU_DEFAULT_LIMITS } from '../../src/jobs/jobMemory';
import { MemoryJobStore } from '../../src/jobs/store';
import { TrainingClient, type ClientEndpoint } from '../../src/worker/client';
import { serveTraining, type HostEndpoint } from '../../src/worker/trainingHost';
import type { DownloadProgress, TrainingEvent } from '../../src/worker/trainingProtocol';
import { MODEL_DIR } from './helpers';
import { startHubServer, type HubServer } from './hubServer';

const GATED = 'whittle-gated/tiny-llama';
const TOKEN = 'hf_catalog_token';

let hub: HubServer;
let client: TrainingClient;
let close: () => void;
beforeAll(async () => {
  const files = new Map(readdirSync(MODEL_DIR).map((n) => [n, new Uint8Array(readFileSync(join(MODEL_DIR, n)))] as const));
  hub = await startHubServer(MODEL_DIR, 'whittle-test/tiny-llama', 'main', { token: TOKEN, repos: { [GATED]: { files, gated: true, redirectLfs: true } } });
  const channel = new MessageChannel();
  // No GPU: the memory checks use WebGPU's default limits and f32 weights.
  serveTraining(channel.port2 as unknown as HostEndpoint, {
    openStore: () => Promise.resolve(new MemoryJobStore()),
    acquireGpu: () => Promise.reject(new Error('no adapter in this test')),
    hubUrl: hub.url,
    locks: null,
    broadcast: null,
  });
  client = new TrainingClient(channel.port1 as unknown as ClientEndpoint);
  close = () => (channel.port1.close(), channel.port2.close());
  await client.init({ autoStart: false });
});
afterAll(async () => {
  close();
  await hub.close();
});

describe('models before download (worker requests)', () => {
  it('lists the curated models with sizes, licences and a default job memory check against the limits', async () => {
    const list = await client.curatedModels();
    expect(list.map((m) => m.repo)).toHaveLength(6);
    const by = new Map(list.map((m) => [m.repo, m]));
    const smol = by.get('HuggingFaceTB/SmolLM2-135M-Instruct')!;
    expect(smol).toMatchObject({ licence: 'Apache-2.0', gated: false, unsupported: null, parameters: 134_515_008 });
    expect(smol.memory!.limits).toMatchObject({ limitsFrom: 'webgpu-defaults', maxBufferSize: WEBGPU_DEFAULT_LIMITS.maxBufferSize });
    expect(smol.memory!).toMatchObject({ dtype: 'f32', batch: 1, seq: 1024 });
    expect(smol.memory!.problems).toEqual([]);
    // 1.1B parameters in f32 are over the default 2 GiB budget.
    expect(by.get('TinyLlama/TinyLlama-1.1B-Chat-v1.0')!.memory!.problems.map((p) => p.kind)).toContain('total');
    const qwen3 = by.get('Qwen/Qwen3-0.6B')!;
    expect(qwen3.memory).toBeNull();
    expect(qwen3.unsupported).toMatch(/needs per-head q\/k norms/);
    expect(by.get('meta-llama/Llama-3.2-1B-Instruct')!.gated).toBe(true);
    expect('config' in smol).toBe(false);
  });

  it('a gated repo resolves with a token, which the worker then uses for the download (per-file progress events)', async () => {
    await expect(client.resolveHubRepo(GATED)).rejects.toThrow(/gated or private \(HTTP 401\)/);
    const view = await client.resolveHubRepo(GATED, { accessToken: TOKEN });
    expect(view.unsupported).toBeNull();
    expect(view.memory!.problems).toEqual([]);
    expect(view.parameters).toBeGreaterThan(0);
    expect(view.listing.commit).toBe(hub.commitOf(GATED));
    const progress: DownloadProgress[] = [];
    const events: TrainingEvent[] = [];
    const off = client.subscribe((e) => events.push(e));
    const info = await client.inspectModel(hubSourceOf({ ...view.listing, config: null }), (p) => progress.push(p));
    off();
    expect(info.summary.modelType).toBe('llama');
    expect(new Set(progress.map((p) => p.file))).toEqual(new Set([...view.listing.files.map((f) => f.name), '']));
    expect(events.some((e) => e.type === 'download')).toBe(true);
    expect(hub.requests.filter((r) => r.path.includes('/resolve/')).every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });
});
