// Node-only ByteSources (kept apart so browser bundles never import node:fs).

import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

import type { ModelDir } from './hfModelDir';
import { SafetensorsError, type ByteSource } from './safetensors';

export interface ClosableByteSource extends ByteSource {
  close(): Promise<void>;
}

async function readFully(handle: FileHandle, offset: number, length: number, path: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  // FileHandle.read may return fewer bytes than asked; loop until the range is filled.
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, offset + done);
    if (bytesRead === 0) {
      throw new SafetensorsError(`${path}: file ended after ${offset + done} bytes (it shrank while open?)`);
    }
    done += bytesRead;
  }
  return out;
}

/** Opens a file for random-access reads; close it when done. */
export async function openFileSource(path: string): Promise<ClosableByteSource> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  return {
    size,
    read(offset, length) {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
        return Promise.reject(new SafetensorsError(`${path}: read of ${length} bytes at ${offset} is outside the ${size}-byte file`));
      }
      return readFully(handle, offset, length, path);
    },
    close: () => handle.close(),
  };
}

export interface ClosableModelDir extends ModelDir {
  /** Closes every file opened through this directory. */
  close(): Promise<void>;
}

/** A model folder on disk (top level only, like a Hugging Face repo snapshot). */
export async function nodeModelDir(dirPath: string): Promise<ClosableModelDir> {
  const names: string[] = [];
  for (const name of await readdir(dirPath)) {
    if ((await stat(join(dirPath, name))).isFile()) names.push(name);
  }
  names.sort();
  const opened: ClosableByteSource[] = [];
  return {
    fileNames: names,
    async open(name) {
      if (!names.includes(name)) throw new Error(`${dirPath} has no file ${name}`);
      const source = await openFileSource(join(dirPath, name));
      opened.push(source);
      return source;
    },
    async close() {
      const all = opened.splice(0);
      await Promise.all(all.map((s) => s.close()));
    },
  };
}
