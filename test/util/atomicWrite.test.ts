// Atomic writes under injected failures: a full disk mid-write leaves neither a temporary file nor
// a truncated file under the real name, and the error names the path and the bytes needed.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { NodeCheckpointStore } from '../../src/train/checkpointStoreNode';
import { OutputWriteError, writeFileAtomic, type WriteFs } from '../../src/util/atomicWrite';

const tmp = mkdtempSync(join(tmpdir(), 'whittle-atomic-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A disk that fills after `room` bytes: the write stores what fits, then fails with ENOSPC. */
function fullDisk(room: number): WriteFs {
  return {
    async writeFile(path, data) {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      await writeFile(path, bytes.subarray(0, room));
      if (bytes.byteLength > room) throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC' });
    },
    rename,
    rm,
  };
}

describe('writeFileAtomic', () => {
  it('replaces the file whole, and leaves the old one and no temporary file when the disk is full', async () => {
    const path = join(tmp, 'model.safetensors');
    await writeFileAtomic(path, new Uint8Array(10).fill(1));
    expect(readFileSync(path)).toEqual(Buffer.alloc(10, 1));
    const err = await writeFileAtomic(path, new Uint8Array(3 * 1024 * 1024), fullDisk(1000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutputWriteError);
    expect((err as OutputWriteError).code).toBe('ENOSPC');
    expect((err as Error).message).toBe(`no space left on the device for ${path}: it needs 3.0 MiB (3145728 bytes); free some space and run again`);
    expect(readFileSync(path)).toEqual(Buffer.alloc(10, 1));
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('names the path for other failures too', async () => {
    const path = join(tmp, 'missing-folder', 'job.json');
    await expect(writeFileAtomic(path, '{}')).rejects.toThrow(new RegExp(`could not write ${path.replace(/[./]/g, '\\$&')} \\(2 bytes\\): ENOENT`));
  });

  it('the checkpoint store writes through it: a failed checkpoint leaves nothing behind', async () => {
    const root = join(tmp, 'checkpoints');
    const store = new NodeCheckpointStore(root, fullDisk(100));
    await expect(store.save('job-1', 'step-000002', new Uint8Array(5000))).rejects.toThrow(/no space left on the device for .*step-000002\.safetensors: it needs 4\.9 KiB \(5000 bytes\)/);
    expect(readdirSync(join(root, 'job-1'))).toEqual([]);
    expect(await store.list('job-1')).toEqual([]);
  });
});
