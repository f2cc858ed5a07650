// A small in-memory stand-in for an OPFS directory handle (Node has no OPFS), with the
// behaviours OpfsBlobStore relies on: NotFoundError for missing entries, writes committed only
// on close(), recursive removal, async entries().

function domError(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

class FakeFileHandle {
  readonly kind = 'file';
  data: Blob = new Blob([]);
  constructor(readonly name: string) {}

  getFile(): Promise<Blob> {
    return Promise.resolve(this.data);
  }

  createWritable(): Promise<{ write(d: Blob | Uint8Array): Promise<void>; close(): Promise<void>; abort(): Promise<void> }> {
    const parts: (Blob | Uint8Array)[] = [];
    return Promise.resolve({
      write: (d) => {
        parts.push(d instanceof Blob ? d : d.slice());
        return Promise.resolve();
      },
      close: () => {
        this.data = new Blob(parts as BlobPart[]);
        return Promise.resolve();
      },
      abort: () => Promise.resolve(),
    });
  }
}

export class FakeDirectoryHandle {
  readonly kind = 'directory';
  readonly children = new Map<string, FakeDirectoryHandle | FakeFileHandle>();
  constructor(readonly name = '') {}

  getDirectoryHandle(name: string, options: { create?: boolean } = {}): Promise<FakeDirectoryHandle> {
    return this.child(name, FakeDirectoryHandle, 'folder', options.create ?? false);
  }

  getFileHandle(name: string, options: { create?: boolean } = {}): Promise<FakeFileHandle> {
    return this.child(name, FakeFileHandle, 'file', options.create ?? false);
  }

  /** The child `name` of this kind, made when `create` is set; none, or one of the other kind, is an error, as in OPFS. */
  private child<T extends FakeDirectoryHandle | FakeFileHandle>(name: string, kind: new (name: string) => T, noun: 'file' | 'folder', create: boolean): Promise<T> {
    const hit = this.children.get(name);
    if (hit instanceof kind) return Promise.resolve(hit);
    if (hit) return Promise.reject(domError('TypeMismatchError', `${name} is a ${noun === 'file' ? 'folder' : 'file'}`));
    if (!create) return Promise.reject(domError('NotFoundError', `no ${noun} ${name}`));
    const made = new kind(name);
    this.children.set(name, made);
    return Promise.resolve(made);
  }

  removeEntry(name: string, options: { recursive?: boolean } = {}): Promise<void> {
    const hit = this.children.get(name);
    if (!hit) return Promise.reject(domError('NotFoundError', `no entry ${name}`));
    if (hit instanceof FakeDirectoryHandle && hit.children.size > 0 && !options.recursive) {
      return Promise.reject(domError('InvalidModificationError', `${name} is not empty`));
    }
    this.children.delete(name);
    return Promise.resolve();
  }

  async *entries(): AsyncGenerator<[string, FakeDirectoryHandle | FakeFileHandle]> {
    for (const entry of [...this.children]) yield entry;
  }
}
