/**
 * Blobs as files in the Origin Private File System (browsers): the app's blob store where the
 * browser has one (src/jobs/idbStore.ts picks it).
 */
import { blobBytes, blobKeySegments, checkPrefix, JobStoreError, type BlobData, type BlobStore } from './store';

type DirectoryEntries = AsyncIterable<[string, FileSystemHandle]>;

/**
 * Blobs as files in the Origin Private File System, one folder per key segment. Writes go
 * through createWritable, which commits on close (a crash mid-write keeps the old file), or a
 * sync access handle where only that exists (Safari workers before createWritable).
 */
export class OpfsBlobStore implements BlobStore {
  readonly kind = 'opfs' as const;

  constructor(private readonly root: FileSystemDirectoryHandle) {}

  /** The store's folder `name` in the origin's private file system. */
  static async open(name = 'whittle'): Promise<OpfsBlobStore> {
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    if (!storage?.getDirectory) throw new JobStoreError('this browser has no Origin Private File System (navigator.storage.getDirectory)');
    const top = await storage.getDirectory();
    return new OpfsBlobStore(await top.getDirectoryHandle(name, { create: true }));
  }

  private async folder(segments: readonly string[], create: boolean): Promise<FileSystemDirectoryHandle | null> {
    let dir = this.root;
    for (const s of segments) {
      try {
        dir = await dir.getDirectoryHandle(s, { create });
      } catch (e) {
        if (!create && isNotFound(e)) return null;
        throw e;
      }
    }
    return dir;
  }

  async put(key: string, data: BlobData): Promise<void> {
    const parts = blobKeySegments(key);
    const dir = (await this.folder(parts.slice(0, -1), true))!;
    const file = await dir.getFileHandle(parts[parts.length - 1]!, { create: true });
    if (typeof file.createWritable === 'function') {
      const w = await file.createWritable();
      try {
        await w.write(data instanceof Blob ? data : (data as Uint8Array<ArrayBuffer>));
        await w.close();
      } catch (e) {
        await w.abort().catch(() => {});
        throw e;
      }
      return;
    }
    const bytes = data instanceof Blob ? await blobBytes(data) : data;
    const handle = await (file as FileSystemFileHandle & { createSyncAccessHandle(): Promise<FileSystemSyncAccessHandle> }).createSyncAccessHandle();
    try {
      handle.truncate(0);
      handle.write(bytes as Uint8Array<ArrayBuffer>, { at: 0 });
      handle.flush();
    } finally {
      handle.close();
    }
  }

  async get(key: string): Promise<Blob | null> {
    const parts = blobKeySegments(key);
    const dir = await this.folder(parts.slice(0, -1), false);
    if (!dir) return null;
    try {
      const file = await dir.getFileHandle(parts[parts.length - 1]!);
      return await file.getFile();
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    const parts = blobKeySegments(key);
    const dir = await this.folder(parts.slice(0, -1), false);
    if (!dir) return;
    try {
      await dir.removeEntry(parts[parts.length - 1]!);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const dir = await this.folder(checkPrefix(prefix), false);
    if (!dir) return [];
    const out: string[] = [];
    const walk = async (d: FileSystemDirectoryHandle, path: string) => {
      for await (const [name, handle] of (d as unknown as { entries(): DirectoryEntries }).entries()) {
        if (handle.kind === 'directory') await walk(handle as FileSystemDirectoryHandle, `${path}${name}/`);
        else out.push(path + name);
      }
    };
    await walk(dir, prefix);
    return out.sort();
  }

  async deletePrefix(prefix: string): Promise<void> {
    const parts = checkPrefix(prefix);
    const parent = await this.folder(parts.slice(0, -1), false);
    if (!parent) return;
    try {
      await parent.removeEntry(parts[parts.length - 1]!, { recursive: true });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}

function isNotFound(e: unknown): boolean {
  return (e as { name?: string } | null)?.name === 'NotFoundError';
}

/** True where the Origin Private File System exists (browsers; not Node). */
export function hasOpfs(): boolean {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: unknown } } }).navigator?.storage;
  return typeof storage?.getDirectory === 'function';
}
