// Node only: the kernel tuning cache as one JSON file (atomic writes), and the Dawn build that keys it.
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../util/atomicWrite';
import type { TuningCacheFile, TuningStore } from './kernelPlanChoice';

export const TUNING_CACHE_FILE = 'kernel-tuning.json';

/**
 * The cache file: $WHITTLE_CACHE_DIR, else $XDG_CACHE_HOME/whittle, else ~/.cache/whittle,
 * holding kernel-tuning.json.
 */
export function defaultTuningCachePath(env: Record<string, string | undefined> = process.env): string {
  const dir = env.WHITTLE_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'whittle');
  return join(dir, TUNING_CACHE_FILE);
}

/** A store reading and writing `path`; a missing file reads as none, an unparsable one as garbage (rebuilt). */
export function nodeTuningStore(path: string): TuningStore {
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return null;
      }
    },
    async save(file: TuningCacheFile) {
      await mkdir(dirname(path), { recursive: true });
      await writeFileAtomic(path, JSON.stringify(file, null, 2) + '\n');
    },
  };
}

/** The Dawn build behind Node's WebGPU: the `webgpu` package's version. */
export function nodeWebGpuRuntime(): string {
  try {
    const require = createRequire(import.meta.url);
    return `dawn-node webgpu@${(require('webgpu/package.json') as { version: string }).version}`;
  } catch {
    return 'dawn-node (unknown version)';
  }
}
