import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { acquireGpu } from '../../src/gpu';
import { tuningCacheKey, type TuningCacheFile } from '../../src/kernels/kernelPlanChoice';
import { nodeWebGpuRuntime, TUNING_CACHE_FILE } from '../../src/kernels/tuningStoreNode';
import { runCli } from './run';

const FIXTURES = join(__dirname, '..', 'fixtures');
const LLAMA = join(FIXTURES, 'models', 'tiny-llama');
const VALID = join(FIXTURES, 'data', 'chat_valid.jsonl');
const tmp = mkdtempSync(join(tmpdir(), 'whittle-cached-plan-'));
const savedDir = process.env.WHITTLE_CACHE_DIR;
afterAll(() => {
  if (savedDir === undefined) delete process.env.WHITTLE_CACHE_DIR;
  else process.env.WHITTLE_CACHE_DIR = savedDir;
  rmSync(tmp, { recursive: true, force: true });
});

/** A cache file holding launches for this device (as `train` would have tuned them), two shapes. */
async function writeCache(dir: string): Promise<string> {
  const gpu = await acquireGpu({ kernels: 'gpu' });
  const key = tuningCacheKey(gpu.adapter, nodeWebGpuRuntime());
  gpu.destroy();
  const launch = { kernel: 'blocked' as const, wg: 8, bk: 16, splitK: 1, gemvThreads: 64 };
  const file: TuningCacheFile = { format: 'whittle-kernel-tuning', version: 1, entries: [{ key, matmul: { '64x64x64': launch, '128x256x64': { ...launch, splitK: 2 } }, savedAt: new Date(0).toISOString() }] };
  const path = join(dir, TUNING_CACHE_FILE);
  writeFileSync(path, JSON.stringify(file));
  return path;
}

describe('eval and generate take the tuned plan from the cache, never tuning', () => {
  it('use the cached launches for this device and say so', { timeout: 600_000 }, async () => {
    process.env.WHITTLE_CACHE_DIR = join(tmp, 'hit');
    mkdirSync(process.env.WHITTLE_CACHE_DIR, { recursive: true });
    const path = await writeCache(process.env.WHITTLE_CACHE_DIR);
    const before = { text: readFileSync(path, 'utf8'), mtime: statSync(path).mtimeMs };
    const plan = /kernels: gpu plan \(cache, 2 tuned matmul shapes, subgroup reductions\)\]/;
    const ev = await runCli(['eval', LLAMA, VALID, '--kernels', 'gpu']);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stderr).toMatch(plan);
    const json = await runCli(['eval', LLAMA, VALID, '--kernels', 'gpu', '--json']);
    expect(json.stderr).toMatch(plan);
    const gen = await runCli(['generate', LLAMA, '--prompt', 'hello', '--max-new-tokens', '3', '--kernels', 'gpu']);
    expect(gen.code, gen.stderr).toBe(0);
    expect(gen.stderr).toMatch(plan);
    expect(gen.stderr).not.toMatch(/tuning \d+x/);
    // Read, never written.
    expect(readFileSync(path, 'utf8')).toBe(before.text);
    expect(statSync(path).mtimeMs).toBe(before.mtime);
  });

  it('fall back to the rules on a cache miss, create no cache, and keep the CPU plan on the rules', { timeout: 600_000 }, async () => {
    process.env.WHITTLE_CACHE_DIR = join(tmp, 'miss');
    const ev = await runCli(['eval', LLAMA, VALID, '--kernels', 'gpu']);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stderr).toMatch(/kernels: gpu plan \(rules for cpu adapters, subgroup reductions\); no tuned launches cached for this device\]/);
    expect(existsSync(join(tmp, 'miss', TUNING_CACHE_FILE))).toBe(false);
    const cpu = await runCli(['eval', LLAMA, VALID, '--kernels', 'cpu']);
    expect(cpu.stderr).toMatch(/kernels: cpu plan \(cpu adapter, rules\)\]/);
  });
});
