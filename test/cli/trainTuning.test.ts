import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { parseTuningCache } from '../../src/kernels/kernelPlanChoice';
import { TUNING_CACHE_FILE } from '../../src/kernels/tuningStoreNode';
import { loadLatestCheckpoint } from '../../src/train/checkpoint';
import { NodeCheckpointStore } from '../../src/train/checkpointStoreNode';
import { parseResultsCsv } from '../../src/train/metrics';
import { runCli } from './run';

const LLAMA = join(__dirname, '..', 'fixtures', 'models', 'tiny-llama');
const tmp = mkdtempSync(join(tmpdir(), 'whittle-tuning-'));
const saved = { tune: process.env.WHITTLE_TUNE, dir: process.env.WHITTLE_CACHE_DIR, max: process.env.WHITTLE_TUNE_CANDIDATES };
afterAll(() => {
  for (const [k, v] of [['WHITTLE_TUNE', saved.tune], ['WHITTLE_CACHE_DIR', saved.dir], ['WHITTLE_TUNE_CANDIDATES', saved.max]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(tmp, { recursive: true, force: true });
});

function writeData(): string {
  const lines: string[] = [];
  for (let i = 0; i < 12; i++) {
    const a = (i * 5 + 2) % 10;
    const b = (i * 3 + 1) % 10;
    lines.push(JSON.stringify({ messages: [{ role: 'user', content: `${a}+${b}` }, { role: 'assistant', content: `sum ${a + b}` }] }));
  }
  const path = join(tmp, 'train.jsonl');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

const losses = (out: string) => parseResultsCsv(readFileSync(join(out, 'metrics.csv'), 'utf8')).map((r) => r.train_loss);

describe('train with a forced tuning pass on lavapipe', () => {
  it('tunes at job start, caches the winners, records the plan in job.json and checkpoints, and a resume reuses it bit-exactly', { timeout: 600_000 }, async () => {
    // Tuning is forced on this CPU adapter, two candidates per shape, the cache in the test's folder.
    process.env.WHITTLE_TUNE = 'force';
    process.env.WHITTLE_TUNE_CANDIDATES = '2';
    process.env.WHITTLE_CACHE_DIR = join(tmp, 'cache');
    const data = writeData();
    const common = ['--kernels', 'gpu', '--batch-size', '4', '--lora-r', '4', '--lora-dropout', '0', '--warmup', '0', '--epochs', '1', '--learning-rate', '1e-2', '--seed', '7'];

    const full = join(tmp, 'full');
    const a = await runCli(['train', LLAMA, data, '--out', full, ...common]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/kernels: gpu plan \(tuning, \d+ tuned matmul shapes?, subgroup reductions\)/);
    expect(a.stderr).toMatch(/tuning \d+x\d+x\d+/);
    const job = JSON.parse(readFileSync(join(full, 'job.json'), 'utf8')) as { kernelPlan: { source: string; matmul: Record<string, unknown> } };
    expect(job.kernelPlan.source).toBe('tuning');
    const cachePath = join(tmp, 'cache', TUNING_CACHE_FILE);
    expect(existsSync(cachePath)).toBe(true);
    const cache = parseTuningCache(JSON.parse(readFileSync(cachePath, 'utf8')));
    expect(cache.entries).toHaveLength(1);
    for (const [k, p] of Object.entries(job.kernelPlan.matmul)) expect(cache.entries[0]!.matmul[k]).toEqual(p);

    // The same job stopped after step 2: its plan now comes from the cache, and the checkpoint records it.
    const part = join(tmp, 'part');
    const stop = new AbortController();
    const b = await runCli(['train', LLAMA, data, '--out', part, ...common], { signal: stop.signal, onStdout: (t) => void (/^step 2\/3/m.test(t) && stop.abort()) });
    expect(b.code).toBe(1);
    expect(b.stdout).toMatch(/kernels: gpu plan \(cache, \d+ tuned matmul shapes?, subgroup reductions\)/);
    const jobB = JSON.parse(readFileSync(join(part, 'job.json'), 'utf8')) as { jobId: string; kernelPlan: { matmul: unknown } };
    const checkpoint = await loadLatestCheckpoint(new NodeCheckpointStore(join(part, 'checkpoints')), jobB.jobId);
    expect(checkpoint!.state.step).toBe(2);
    expect(checkpoint!.state.kernelPlan?.matmul).toEqual(jobB.kernelPlan.matmul);
    expect(checkpoint!.state.kernelPlan?.matmul).toEqual(job.kernelPlan.matmul);

    // A cache that changed since (here: every launch swapped for another) does not touch the resume.
    const changed = { ...cache, entries: cache.entries.map((e) => ({ ...e, matmul: Object.fromEntries(Object.keys(e.matmul).map((k) => [k, { kernel: 'blocked', wg: 4, bk: 8, splitK: 1, gemvThreads: 64 }])) })) };
    writeFileSync(cachePath, JSON.stringify(changed));
    const wrongFamily = await runCli(['train', LLAMA, data, '--out', part, ...common.map((x) => (x === 'gpu' ? 'cpu' : x)), '--resume']);
    expect(wrongFamily.code).toBe(1);
    expect(wrongFamily.stderr).toMatch(/the checkpoint ran the gpu kernel plan .* resume with --kernels gpu/);
    const resumed = await runCli(['train', LLAMA, data, '--out', part, ...common, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/kernels: gpu plan \(cache, \d+ tuned matmul shapes?, subgroup reductions\) \(as the checkpoint recorded\)/);
    expect(losses(part)).toEqual(losses(full));
  });
});
