import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { parseTuningCache, tuningCacheKey, withTuningEntry } from '../../src/kernels/kernelPlanChoice';
import { idbTuningStore } from '../../src/jobs/tuningStoreIdb';

describe('the IndexedDB tuning store', () => {
  it('reads nothing at first, then what was saved, across store objects', async () => {
    const name = `tuning-${Math.random()}`;
    expect(await idbTuningStore(name).load()).toBeNull();
    const adapter = { vendor: 'v', architecture: 'a', device: 'd', description: '' };
    const file = withTuningEntry(parseTuningCache(null), { key: tuningCacheKey(adapter, 'Chrome/1'), matmul: { '64x72x56': { kernel: 'blocked', wg: 8, bk: 32, splitK: 1, gemvThreads: 64 } }, savedAt: 'now' });
    await idbTuningStore(name).save(file);
    expect(parseTuningCache(await idbTuningStore(name).load())).toEqual(file);
  });
});
