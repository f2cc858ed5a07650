/**
 * A CheckpointStore on the local file system (Node only: CLI and tests):
 * `<root>/<jobId>/<name>.safetensors`. Writes go to a temporary file renamed into place, so a
 * crash mid-write never leaves a truncated checkpoint under a real name.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { nodeWriteFs, writeFileAtomic, type WriteFs } from '../util/atomicWrite';
import { checkStoreName, type CheckpointStore } from './checkpoint';

const SUFFIX = '.safetensors';

export class NodeCheckpointStore implements CheckpointStore {
  constructor(
    readonly root: string,
    private readonly fs: WriteFs = nodeWriteFs,
  ) {}

  private dir(jobId: string): string {
    checkStoreName('job id', jobId);
    return join(this.root, jobId);
  }

  private file(jobId: string, name: string): string {
    checkStoreName('checkpoint name', name);
    return join(this.dir(jobId), name + SUFFIX);
  }

  async save(jobId: string, name: string, bytes: Uint8Array): Promise<void> {
    const path = this.file(jobId, name);
    await mkdir(this.dir(jobId), { recursive: true });
    await writeFileAtomic(path, bytes, this.fs);
  }

  async load(jobId: string, name: string): Promise<Uint8Array | null> {
    try {
      const b = await readFile(this.file(jobId, name));
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async list(jobId: string): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(this.dir(jobId));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return entries
      .filter((f) => f.endsWith(SUFFIX))
      .map((f) => f.slice(0, -SUFFIX.length))
      .sort();
  }

  async delete(jobId: string, name: string): Promise<void> {
    await rm(this.file(jobId, name), { force: true });
  }
}
