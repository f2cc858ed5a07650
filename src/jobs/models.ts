/**
 * Finding a job's base model again, also after a reload: the embedded model over HTTP, Hub
 * repos downloaded once into the blob store, local folders copied into it when picked (a picked
 * folder's File objects do not survive a reload, and a job must be able to resume).
 */
import { blobModelDir, type ModelDir } from '../formats/hfModelDir';
import { urlModelDir } from '../formats/urlSource';
import type { ModelSource } from './job';
import { blobKeySegments, modelBlobKey, type BlobStore } from './store';

export interface DownloadProgress {
  file: string;
  /** Bytes of this file so far, and its size when the server said. */
  loaded: number;
  total: number | null;
  /** Files done of all files. */
  filesDone: number;
  files: number;
}

/** Opens the model folder of a source (downloading what is missing). */
export type OpenModelDir = (source: ModelSource, onProgress?: (p: DownloadProgress) => void) => Promise<ModelDir>;

export class ModelSourceError extends Error {
  override name = 'ModelSourceError';
}

export const HUB_URL = 'https://huggingface.co';

/** Folder of a Hub snapshot in the blob store: `hub--<owner>--<repo>--<revision>`. */
export function hubModelKey(repo: string, revision: string): string {
  const key = `hub--${repo.replace(/\//g, '--')}--${revision}`;
  try {
    blobKeySegments(key);
  } catch {
    throw new ModelSourceError(`Hub repo id ${JSON.stringify(repo)} or revision ${JSON.stringify(revision)} has characters a model id cannot have`);
  }
  return key;
}

function checkFileNames(files: readonly string[]): void {
  for (const f of files) {
    try {
      blobKeySegments(f);
    } catch {
      throw new ModelSourceError(`model file name ${JSON.stringify(f)} is not supported (subfolders and unusual characters are not)`);
    }
  }
}

/** Which blob-store folder holds a source's files (null for the embedded model, read over HTTP). */
export function modelKeyOf(source: ModelSource): string | null {
  if (source.kind === 'local') return source.modelKey;
  if (source.kind === 'hub') return hubModelKey(source.name, source.revision);
  return null;
}

/** A key naming a source, for caches. */
export function sourceKey(source: ModelSource): string {
  return source.kind === 'embedded' ? `embedded:${source.url}` : `${source.kind}:${modelKeyOf(source)}`;
}

/** Copies a picked folder's files into the store; the returned source finds them again. */
export async function importLocalModel(blobs: BlobStore, name: string, files: ReadonlyMap<string, Blob>, modelKey?: string): Promise<ModelSource> {
  const names = [...files.keys()].sort();
  checkFileNames(names);
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  const key = modelKey ?? `local-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
  blobKeySegments(key);
  for (const n of names) await blobs.put(modelBlobKey(key, n), files.get(n)!);
  return { kind: 'local', name, modelKey: key, files: names };
}

async function download(url: string, fetchImpl: typeof fetch, onBytes: (loaded: number, total: number | null) => void): Promise<Blob> {
  const res = await fetchImpl(url);
  if (!res.ok) throw new ModelSourceError(`${url}: HTTP ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('content-length')) || null;
  if (!res.body) {
    const blob = await res.blob();
    onBytes(blob.size, total);
    return blob;
  }
  // Chunks become one Blob; browsers keep large Blobs on disk, not in the JS heap.
  const parts: BlobPart[] = [];
  let loaded = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value as Uint8Array<ArrayBuffer>);
    loaded += value.byteLength;
    onBytes(loaded, total);
  }
  if (total !== null && loaded !== total) throw new ModelSourceError(`${url}: got ${loaded} of ${total} bytes`);
  return new Blob(parts);
}

export interface ModelResolverOptions {
  fetch?: typeof fetch;
  /** Hub mirror; default https://huggingface.co. */
  hubUrl?: string;
}

/** The resolver the worker uses: embedded over HTTP, hub and local from the blob store. */
export function storeModelResolver(blobs: BlobStore, options: ModelResolverOptions = {}): OpenModelDir {
  const fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
  const hubUrl = (options.hubUrl ?? HUB_URL).replace(/\/$/, '');
  return async (source, onProgress) => {
    checkFileNames(source.files);
    if (source.kind === 'embedded') return urlModelDir(source.url, source.files, fetchImpl);
    const key = modelKeyOf(source)!;
    const map = new Map<string, Blob>();
    for (const [i, file] of source.files.entries()) {
      let blob = await blobs.get(modelBlobKey(key, file));
      if (!blob) {
        if (source.kind === 'local') {
          throw new ModelSourceError(`the local model ${source.name} lost its file ${file} (browser storage cleared?); pick the folder again`);
        }
        const url = `${hubUrl}/${source.name}/resolve/${encodeURIComponent(source.revision)}/${file}`;
        blob = await download(url, fetchImpl, (loaded, total) => onProgress?.({ file, loaded, total, filesDone: i, files: source.files.length }));
        await blobs.put(modelBlobKey(key, file), blob);
      }
      map.set(file, blob);
    }
    onProgress?.({ file: '', loaded: 0, total: null, filesDone: source.files.length, files: source.files.length });
    return blobModelDir(map);
  };
}
