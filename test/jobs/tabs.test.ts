import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';

import { afterAll, describe, expect, it } from 'vitest';

import { MemoryJobStore } from '../../src/jobs/store';
import { TrainingClient, type ClientEndpoint } from '../../src/worker/client';
import { BROADCAST_NAME, serveTraining, type HostEndpoint, type TrainingHost } from '../../src/worker/trainingHost';
import type { JobRecord, JobStatus, TrainingEvent } from '../../src/worker/trainingProtocol';
import { getTestGpu } from '../helpers/gpu';
import { BATCHING, HYPERPARAMETERS, MODEL_DIR, TRAIN_JSONL } from './helpers';

/** navigator.locks for one exclusive lock: enough for the runner lock. */
class FakeLocks {
  holder: object | null = null;
  private readonly waiting: (() => void)[] = [];

  request(_name: string, a: LockOptions | LockGrantedCallback<unknown>, b?: LockGrantedCallback<unknown>): Promise<unknown> {
    const options = typeof a === 'function' ? {} : a;
    const callback = (typeof a === 'function' ? a : b)!;
    const grant = () => {
      const lock = { name: 'whittle-job-runner', mode: 'exclusive' } as Lock;
      this.holder = lock;
      return Promise.resolve(callback(lock));
    };
    if (this.holder === null) return grant();
    if (options.ifAvailable) return Promise.resolve(callback(null));
    return new Promise((resolve) => this.waiting.push(() => resolve(grant())));
  }

  /** The holding tab closed. */
  release(): void {
    this.holder = null;
    this.waiting.shift()?.();
  }
}

const hosts: TrainingHost[] = [];
const ports: { close(): void }[] = [];

afterAll(() => {
  for (const h of hosts) h.close();
  for (const p of ports) p.close();
});

/** One tab: a page client and its worker host, sharing the store (IndexedDB is per origin) and the locks. */
function tab(store: MemoryJobStore, locks: FakeLocks) {
  const channel = new MessageChannel();
  ports.push(channel.port1, channel.port2);
  const host = serveTraining(channel.port2 as unknown as HostEndpoint, {
    openStore: () => Promise.resolve(store),
    acquireGpu: getTestGpu,
    runner: { batching: BATCHING },
    locks,
    broadcast: new BroadcastChannel(BROADCAST_NAME) as never,
  });
  hosts.push(host);
  const client = new TrainingClient(channel.port1 as unknown as ClientEndpoint);
  const events: TrainingEvent[] = [];
  client.subscribe((e) => events.push(e));
  /** The job's statuses in the order this tab's page saw them (repeats folded). */
  const statusOf = (id: string): JobStatus[] =>
    events.flatMap((e) => (e.type === 'status' && e.job.id === id ? [e.job.status] : [])).filter((s, i, all) => s !== all[i - 1]);
  const reached = (id: string, status: JobStatus) =>
    new Promise<JobRecord>((resolve) => {
      client.subscribe((e) => {
        if (e.type === 'status' && e.job.id === id && e.job.status === status) resolve(e.job);
      });
    });
  return { client, host, events, statusOf, reached };
}

describe('several tabs', () => {
  it('runs jobs in one tab only, shows them live in the others, and hands over when that tab closes', async () => {
    const store = new MemoryJobStore();
    const locks = new FakeLocks();
    const a = tab(store, locks);
    const b = tab(store, locks);
    expect((await a.client.init()).runsJobs).toBe(true);
    const infoB = await b.client.init();
    expect(infoB).toMatchObject({ runsJobs: false, recovered: [] });

    // Tab B records a job; tab A, which holds the runner lock, runs it; B sees it live.
    const files = new Map(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map((n) => [n, new Blob([readFileSync(join(MODEL_DIR, n))])]));
    const { source } = await b.client.importLocalModel('tiny-llama', files);
    const train = await b.client.uploadFile('train.jsonl', new Blob([TRAIN_JSONL]));
    let id = '';
    const job = b.client.createJob({ model: source, trainingFileId: train.file.id, hyperparameters: { ...HYPERPARAMETERS, epochs: 1 }, dtype: 'f32' });
    id = (await job).id;
    const done = await b.reached(id, 'succeeded');
    expect(done.step).toBe(2);
    expect(b.statusOf(id)).toContain('running');
    expect(a.statusOf(id)).toContain('running');
    expect(b.events.flatMap((e) => (e.type === 'metrics' && e.jobId === id ? e.rows.map((r) => r.step) : []))).toEqual([1, 2]);
    await expect(b.client.start(id)).rejects.toMatchObject({ name: 'JobRunnerError' });

    // A job left `running` by tab A (its checkpoint already at the end) when A closes: B takes
    // over the lock, recovers the job and finishes it.
    const orphan: JobRecord = { ...done, id: 'ftjob-orphan', status: 'running', finishedAt: null, fineTunedModel: null, adapterKey: null };
    await store.putJob(orphan);
    const last = done.checkpoints.at(-1)!.name;
    await store.checkpoints.save(orphan.id, last, (await store.checkpoints.load(id, last))!);
    await expect(b.client.pause(orphan.id)).rejects.toMatchObject({ message: `job ${orphan.id} is running in the other Whittle tab that is open: pause or cancel it there` });
    const finished = b.reached(orphan.id, 'succeeded');
    locks.release();
    const recovered = await finished;
    expect(recovered).toMatchObject({ resumes: 1, fineTunedModel: `ft:tiny-llama::${orphan.id}` });
    expect(b.statusOf(orphan.id)).toEqual(['queued', 'running', 'succeeded']);
  });
});
