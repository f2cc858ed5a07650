import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { MessageChannel } from 'node:worker_threads';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MemoryJobStore } from '../../src/jobs/store';
import { TrainingClient, type ClientEndpoint } from '../../src/worker/client';
import { serveTraining, type HostEndpoint } from '../../src/worker/trainingHost';
import { TrainingWorkerError, type JobRecord, type ModelSource, type TrainingEvent } from '../../src/worker/trainingProtocol';
import { getTestGpu } from '../helpers/gpu';
import { BATCHING, HYPERPARAMETERS, MODEL_DIR, TRAIN_JSONL, VALID_JSONL } from './helpers';

/** Page and worker in one process: the client on one port of a channel, the host on the other. */
function connect(store = new MemoryJobStore()) {
  const channel = new MessageChannel();
  serveTraining(channel.port2 as unknown as HostEndpoint, { openStore: () => Promise.resolve(store), acquireGpu: getTestGpu, runner: { batching: BATCHING }, locks: null, broadcast: null });
  const client = new TrainingClient(channel.port1 as unknown as ClientEndpoint);
  return { client, store, close: () => (channel.port1.close(), channel.port2.close()) };
}

const modelFiles = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

describe('training protocol (client <-> worker host over a MessageChannel)', () => {
  let conn: ReturnType<typeof connect>;
  let source: ModelSource;
  const events: TrainingEvent[] = [];

  beforeAll(async () => {
    conn = connect();
    conn.client.subscribe((e) => events.push(e));
    const info = await conn.client.init();
    expect(info.gpu).not.toBeNull();
    expect(info).toMatchObject({ gpuError: null, storage: 'memory', recovered: [], runsJobs: true });
    const files = new Map(modelFiles.map((n) => [n, new Blob([readFileSync(join(MODEL_DIR, n))])]));
    const model = await conn.client.importLocalModel('tiny-llama', files);
    source = model.source;
  });

  afterAll(() => conn.close());

  it('imports and inspects a model, validates and uploads files', async () => {
    const info = await conn.client.inspectModel(source);
    expect(info.summary).toMatchObject({ architecture: 'LlamaForCausalLM', modelType: 'llama', layers: 2, hidden: 48, vocabSize: 320, maxPositions: 128 });
    expect(info.hasChatTemplate).toBe(true);
    expect(source).toMatchObject({ kind: 'local', name: 'tiny-llama', files: modelFiles });

    const progress: [number, number][] = [];
    const file = new Blob([TRAIN_JSONL]);
    const report = await conn.client.validateFile(file, { model: source }, (read, total) => progress.push([read, total]));
    expect(report).toMatchObject({ ok: true, format: 'chat', examples: 10, errorCount: 0 });
    // Bytes read come back as the file is read, ending at its size.
    expect(progress.at(-1)).toEqual([file.size, file.size]);
    expect(progress.every(([read, total], i) => total === file.size && read >= (progress[i - 1]?.[0] ?? 0))).toBe(true);
    expect(report.stats!.examples).toBe(10);
    const bad = await conn.client.validateFile(new Blob(['{"messages": 3}\n']));
    expect(bad.ok).toBe(false);
    expect(bad.errors[0]!.line).toBe(1);

    const up = await conn.client.uploadFile('train.jsonl', new Blob([TRAIN_JSONL]), source);
    expect(up.file).toMatchObject({ name: 'train.jsonl', bytes: new TextEncoder().encode(TRAIN_JSONL).byteLength, format: 'chat', examples: 10, purpose: 'fine-tune' });
    expect((await conn.client.listFiles()).map((f) => f.id)).toContain(up.file.id);
  });

  it('runs a job with status, metrics and log events, then generates with streamed tokens', async () => {
    const train = await conn.client.uploadFile('train.jsonl', new Blob([TRAIN_JSONL]));
    const valid = await conn.client.uploadFile('valid.jsonl', new Blob([VALID_JSONL]));
    const seen: TrainingEvent[] = [];
    let jobId = '';
    const finished = new Promise<JobRecord>((resolveDone) => {
      conn.client.subscribe((e) => {
        if (e.type === 'status' && e.job.id === jobId && e.job.status === 'succeeded') resolveDone(e.job);
      });
    });
    const job = await conn.client.createJob({
      model: source,
      trainingFileId: train.file.id,
      validationFileId: valid.file.id,
      hyperparameters: { ...HYPERPARAMETERS, epochs: 1 },
      dtype: 'f32',
    });
    jobId = job.id;
    const off = conn.client.onJob(jobId, (e) => seen.push(e));
    expect(job.status).toBe('validating_files');
    const done = await finished;
    off();
    expect(done).toMatchObject({ status: 'succeeded', step: 2, totalSteps: 2 });

    const statuses = seen.filter((e) => e.type === 'status').map((e) => (e.type === 'status' ? e.job.status : null));
    expect(statuses).toContain('running');
    const rows = seen.flatMap((e) => (e.type === 'metrics' ? e.rows : []));
    expect(rows.map((r) => r.step)).toEqual([1, 2]);
    const lines = seen.flatMap((e) => (e.type === 'log' ? e.events : []));
    expect(lines.some((l) => l.message.startsWith('Step 2/2'))).toBe(true);

    const details = await conn.client.getJob(jobId);
    expect(details.metrics).toEqual(rows);
    expect(details.events.map((e) => e.seq)).toEqual(details.events.map((_, i) => i + 1));
    const after = await conn.client.getJob(jobId, details.events.at(-2)!.seq);
    expect(after.events).toEqual(details.events.slice(-1));
    expect((await conn.client.listJobs())[0]!.id).toBe(jobId);
    const adapter = await conn.client.getAdapter(jobId);
    expect(adapter.adapterModel).toBeInstanceOf(Uint8Array);
    const fromCheckpoint = await conn.client.getAdapter(jobId, done.checkpoints.at(-1)!.name);
    expect(fromCheckpoint.adapterConfig.r).toBe(4);

    const tokens: string[] = [];
    const out = await conn.client.generate(
      { model: source, dtype: 'f32', adapter: { kind: 'job', jobId }, prompt: 'The capital of France', maxNewTokens: 5, temperature: 0 },
      { onToken: (d) => tokens.push(d.text) },
    );
    expect(out.tokens.length).toBeGreaterThan(0);
    expect(tokens.join('')).toBe(out.text);
    // Token events carry the generate request's id and reach subscribers too.
    expect(events.filter((e) => e.type === 'token').length).toBe(tokens.length);

    const controller = new AbortController();
    controller.abort();
    const aborted = await conn.client.generate({ model: source, adapter: { kind: 'base' }, prompt: 'Hello', maxNewTokens: 50 }, { signal: controller.signal });
    expect(aborted.finish).toBe('aborted');
    expect(aborted.tokens.length).toBeLessThan(50);
  });

  it("rebuilds the worker's errors with their names", async () => {
    const jobs = await conn.client.listJobs();
    const succeeded = jobs.find((j) => j.status === 'succeeded')!;
    const err = await conn.client.pause(succeeded.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingWorkerError);
    expect(err).toMatchObject({ name: 'JobTransitionError', message: `job ${succeeded.id} cannot go from succeeded to paused (succeeded is final)`, requestType: 'pause' });
    await expect(conn.client.getJob('ftjob-none')).rejects.toMatchObject({ name: 'JobRunnerError', message: 'no job ftjob-none' });
    await expect(
      conn.client.previewHyperparameters({ model: source, examples: 10, requested: { batchSize: -1 } }),
    ).rejects.toMatchObject({ name: 'HyperparameterError', field: 'batchSize' });
    const preview = await conn.client.previewHyperparameters({ model: source, examples: 10, requested: {} });
    expect(preview).toMatchObject({ epochs: 10, batchSize: 1, seed: 0, lora: { r: 8 } });
  });

  it('refuses requests before init and reports messages that are not requests', async () => {
    const other = connect();
    try {
      await expect(other.client.listJobs()).rejects.toMatchObject({ message: 'send init before list-jobs' });
      const errors: TrainingEvent[] = [];
      other.client.on('error', (e) => errors.push(e));
      (other.client as unknown as { endpoint: ClientEndpoint }).endpoint.postMessage({ hello: 'there' });
      await other.client.listFiles().catch(() => null); // a round trip, so the error event has arrived
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ type: 'error', requestId: null, error: { name: 'ProtocolError' } });
    } finally {
      other.close();
    }
  });
});

describe('training worker bundle', () => {
  it('reaches no React and no UI module from training.worker.ts', () => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm)) {
        const spec = m[1] ?? m[2]!;
        expect(spec, `${file} imports ${spec}`).not.toMatch(/^react(-dom)?(\/|$)/);
        if (!spec.startsWith('.')) continue;
        if (spec.endsWith('?raw')) continue;
        const base = resolve(dirname(file), spec);
        const target = [`${base}.ts`, `${base}.tsx`, join(base, 'index.ts')].find((p) => {
          try {
            readFileSync(p);
            return true;
          } catch {
            return false;
          }
        });
        expect(target, `${file}: cannot resolve ${spec}`).toBeDefined();
        expect(target!, `${file} imports UI code`).not.toMatch(/[/\\]src[/\\]ui[/\\]|\.tsx$/);
        visit(target!);
      }
    };
    visit(join(__dirname, '..', '..', 'src', 'worker', 'training.worker.ts'));
    expect(seen.size).toBeGreaterThan(20);
  });
});
