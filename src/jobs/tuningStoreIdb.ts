// The kernel tuning cache in the browser worker: one record in an IndexedDB database of its own.
import { openDB, type IDBPDatabase } from 'idb';
import type { TuningCacheFile, TuningStore } from '../kernels/kernelPlanChoice';

export const TUNING_DB_NAME = 'whittle-kernel-tuning';
const STORE = 'cache';
const KEY = 'matmul';

/**
 * A store for chooseKernelPlan. Kept apart from the jobs database, so clearing the cache (or a
 * damaged record, which reads as garbage and is rebuilt) never touches a job.
 */
export function idbTuningStore(name = TUNING_DB_NAME): TuningStore {
  let db: Promise<IDBPDatabase> | null = null;
  const open = () =>
    (db ??= openDB(name, 1, {
      upgrade(d) {
        d.createObjectStore(STORE);
      },
    }));
  return {
    async load() {
      return ((await (await open()).get(STORE, KEY)) as unknown) ?? null;
    },
    async save(file: TuningCacheFile) {
      await (await open()).put(STORE, file, KEY);
    },
  };
}
