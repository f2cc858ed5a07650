import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTuningCache, tuningCacheKey, withTuningEntry } from '../../src/kernels/kernelPlanChoice';
import { defaultTuningCachePath, nodeTuningStore, nodeWebGpuRuntime } from '../../src/kernels/tuningStoreNode';

const tmp = mkdtempSync(join(tmpdir(), 'whittle-tuning-store-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the Node tuning store', () => {
  it('lives in WHITTLE_CACHE_DIR, else the XDG cache, else ~/.cache', () => {
    expect(defaultTuningCachePath({ WHITTLE_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' })).toBe('/c/kernel-tuning.json');
    expect(defaultTuningCachePath({ XDG_CACHE_HOME: '/x' })).toBe('/x/whittle/kernel-tuning.json');
    expect(defaultTuningCachePath({})).toBe(join(homedir(), '.cache', 'whittle', 'kernel-tuning.json'));
  });

  it('reads none when absent or unparsable, and writes atomically into a new folder', async () => {
    const path = join(tmp, 'deep', 'er', 'kernel-tuning.json');
    const store = nodeTuningStore(path);
    expect(await store.load()).toBeNull();
    const adapter = { vendor: 'v', architecture: 'a', device: 'd', description: '' };
    const file = withTuningEntry(parseTuningCache(null), { key: tuningCacheKey(adapter, nodeWebGpuRuntime()), matmul: {}, savedAt: 'now' });
    await store.save(file);
    expect(parseTuningCache(await store.load())).toEqual(file);
    expect(readdirSync(join(tmp, 'deep', 'er'))).toEqual(['kernel-tuning.json']); // no temporary file left
    writeFileSync(path, '{ half a file');
    expect(await store.load()).toBeNull();
  });

  it('names the Dawn build', () => {
    expect(nodeWebGpuRuntime()).toMatch(/^dawn-node webgpu@\d+\.\d+\.\d+/);
  });
});
