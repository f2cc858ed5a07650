/**
 * Finding a job's base model again, also after a reload: the embedded model over HTTP, Hub
 * repos downloaded once into the blob store, local folders copied into it when picked (a picked
 * folder's File objects do not survive a reload, and a job must be able to resume).
 *
 * Hub downloads resume. Each file is stored as soon as it is complete; a large file's bytes
 * are stored as they come, in parts of `partBytes` under `downloads/<modelKey>/<file>/`, so an
 * interrupted download (tab closed, network gone) continues with an HTTP Range request from
 * the stored offset. The parts become the file (one Blob over them, written once) at the end.
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
  /** Bytes of this file that an earlier, interrupted download had stored (resumed from there). */
  resumedFrom?: number;
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
  const source: ModelSource = { kind: 'local', name, modelKey: key, files: names };
  await recordModelSource(blobs, source);
  return source;
}

/** Where a model's source (name, revision, files) is recorded, so the Models page can list it. */
export const modelSourceBlobKey = (modelKey: string): string => `model-sources/${modelKey}.json`;

/** Folder of an unfinished download's parts: `downloads/<modelKey>/<file>/`. */
export const downloadPrefix = (modelKey: string, file: string): string => `downloads/${modelKey}/${file}/`;

const PART_NAME = /^part-(\d{8})$/;
const partKey = (prefix: string, index: number): string => `${prefix}part-${String(index).padStart(8, '0')}`;
const DOWNLOAD_META = 'meta.json';

/** Default size of a stored download part: big enough for few writes, small enough to lose little. */
export const DEFAULT_PART_BYTES = 8 * 1024 * 1024;

/** Records a model's source next to its files (best effort: listing falls back to jobs and keys). */
export async function recordModelSource(blobs: BlobStore, source: ModelSource, addedAt = Date.now()): Promise<void> {
  const key = modelKeyOf(source);
  if (key === null) return;
  await blobs.put(modelSourceBlobKey(key), new TextEncoder().encode(JSON.stringify({ source, addedAt })));
}

/** The stored parts of an unfinished download, in order. */
export async function downloadParts(blobs: BlobStore, modelKey: string, file: string): Promise<{ keys: string[]; blobs: Blob[]; bytes: number }> {
  const prefix = downloadPrefix(modelKey, file);
  const keys = (await blobs.list(prefix)).filter((k) => PART_NAME.test(k.slice(prefix.length))).sort();
  const parts: Blob[] = [];
  const kept: string[] = [];
  for (const [i, k] of keys.entries()) {
    // A gap (a part lost) makes everything after it useless: the offset must be contiguous.
    if (k !== partKey(prefix, i)) break;
    const b = await blobs.get(k);
    if (!b) break;
    parts.push(b);
    kept.push(k);
  }
  return { keys: kept, blobs: parts, bytes: parts.reduce((n, b) => n + b.size, 0) };
}

interface DownloadMeta {
  etag: string | null;
  total: number | null;
}

/** "bytes 100-199/1000" -> {start: 100, total: 1000}; total null for "*". */
function parseContentRange(header: string | null): { start: number; total: number | null } | null {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header?.trim() ?? '');
  if (!m) return null;
  return { start: Number(m[1]), total: m[3] === '*' ? null : Number(m[3]) };
}

const HTTP_HINTS: Record<number, string> = {
  401: ' (a gated or private repo: give a Hugging Face access token)',
  403: ' (this access token has no access: accept the licence on the model page)',
  404: ' (the repo, revision or file does not exist)',
};

interface ResumableDownload {
  blobs: BlobStore;
  modelKey: string;
  file: string;
  url: string;
  fetch: typeof fetch;
  partBytes: number;
  /** Sent with every request (a Hub access token for gated repos). */
  headers: Record<string, string>;
  onBytes: (loaded: number, total: number | null, resumedFrom: number) => void;
}

/**
 * Downloads one file into parts, resuming from the parts an earlier attempt stored. Returns the
 * whole file as one Blob over the parts (the caller stores it and drops the parts).
 */
async function downloadResumable(d: ResumableDownload): Promise<Blob> {
  const prefix = downloadPrefix(d.modelKey, d.file);
  let stored = await downloadParts(d.blobs, d.modelKey, d.file);
  const metaBlob = await d.blobs.get(prefix + DOWNLOAD_META);
  const meta: DownloadMeta | null = metaBlob ? (JSON.parse(await metaBlob.text()) as DownloadMeta) : null;
  const restart = async () => {
    await d.blobs.deletePrefix(prefix);
    stored = { keys: [], blobs: [], bytes: 0 };
  };
  if (stored.bytes > 0 && meta?.total != null && stored.bytes > meta.total) await restart();
  if (stored.bytes > 0 && stored.bytes === meta?.total) return new Blob(stored.blobs);

  let res = await d.fetch(d.url, { headers: stored.bytes > 0 ? { ...d.headers, Range: `bytes=${stored.bytes}-` } : d.headers });
  const etag = res.headers.get('etag');
  if (stored.bytes > 0) {
    const range = res.status === 206 ? parseContentRange(res.headers.get('content-range')) : null;
    const changed = meta?.etag != null && etag !== null && meta.etag !== etag;
    if (res.status === 200 || res.status === 416 || (res.status === 206 && (range?.start !== stored.bytes || changed))) {
      // The server ignored the range, the file changed since, or it is shorter than what is
      // stored: start over, with this response when it is the whole (current) file.
      await restart();
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => {});
        res = await d.fetch(d.url, { headers: d.headers });
      }
    }
  }
  if (!res.ok) throw new ModelSourceError(`${d.url}: HTTP ${res.status} ${res.statusText}${HTTP_HINTS[res.status] ?? ''}`);
  const resumedFrom = stored.bytes;
  const total = res.status === 206 ? (parseContentRange(res.headers.get('content-range'))?.total ?? null) : Number(res.headers.get('content-length')) || null;
  if (resumedFrom === 0) {
    const m: DownloadMeta = { etag: res.headers.get('etag'), total };
    await d.blobs.put(prefix + DOWNLOAD_META, new TextEncoder().encode(JSON.stringify(m)));
  }

  const parts = [...stored.blobs];
  let loaded = resumedFrom;
  let pending: Uint8Array<ArrayBuffer>[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const blob = new Blob(pending);
    await d.blobs.put(partKey(prefix, parts.length), blob);
    parts.push(blob);
    pending = [];
    pendingBytes = 0;
  };
  d.onBytes(loaded, total, resumedFrom);
  try {
    if (!res.body) {
      const bytes = new Uint8Array(await res.arrayBuffer());
      pending.push(bytes);
      pendingBytes = bytes.byteLength;
      loaded += bytes.byteLength;
    } else {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        pending.push(value as Uint8Array<ArrayBuffer>);
        pendingBytes += value.byteLength;
        loaded += value.byteLength;
        if (pendingBytes >= d.partBytes) await flush();
        d.onBytes(loaded, total, resumedFrom);
      }
    }
    await flush();
  } catch (e) {
    // A dropped connection: keep what arrived, so the next attempt asks only for the rest.
    await flush().catch(() => {});
    throw new ModelSourceError(`${d.url}: the download stopped at ${loaded} bytes${total ? ` of ${total}` : ''} (${e instanceof Error ? e.message : String(e)}); it resumes from there`);
  }
  if (total !== null && loaded !== total) throw new ModelSourceError(`${d.url}: got ${loaded} of ${total} bytes; it resumes from there`);
  return new Blob(parts);
}

export interface ModelResolverOptions {
  fetch?: typeof fetch;
  /** Hub mirror or a test server in the Hub's URL layout; default HUB_URL. */
  hubUrl?: string;
  /** Bytes per stored part of a download in progress (default DEFAULT_PART_BYTES). */
  partBytes?: number;
  /** The Hub access token for a repo, if the user gave one (kept in memory only). */
  accessToken?: (repo: string) => string | null;
}

/** The resolver the worker uses: embedded over HTTP, hub and local from the blob store. */
export function storeModelResolver(blobs: BlobStore, options: ModelResolverOptions = {}): OpenModelDir {
  const fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
  const partBytes = options.partBytes ?? DEFAULT_PART_BYTES;
  const hubUrl = (options.hubUrl ?? HUB_URL).replace(/\/$/, '');
  return async (source, onProgress) => {
    checkFileNames(source.files);
    if (source.kind === 'embedded') return urlModelDir(source.url, source.files, fetchImpl);
    const key = modelKeyOf(source)!;
    const map = new Map<string, Blob>();
    let recorded = false;
    for (const [i, file] of source.files.entries()) {
      let blob = await blobs.get(modelBlobKey(key, file));
      if (!blob) {
        if (source.kind === 'local') {
          throw new ModelSourceError(`the local model ${source.name} lost its file ${file} (browser storage cleared?); pick the folder again`);
        }
        if (!recorded) {
          await recordModelSource(blobs, source);
          recorded = true;
        }
        const url = `${hubUrl}/${source.name}/resolve/${encodeURIComponent(source.revision)}/${file}`;
        const token = options.accessToken?.(source.name) ?? null;
        blob = await downloadResumable({
          blobs,
          modelKey: key,
          file,
          url,
          fetch: fetchImpl,
          partBytes,
          headers: token ? { Authorization: `Bearer ${token}` } : {},
          onBytes: (loaded, total, resumedFrom) => onProgress?.({ file, loaded, total, filesDone: i, files: source.files.length, ...(resumedFrom > 0 ? { resumedFrom } : {}) }),
        });
        await blobs.put(modelBlobKey(key, file), blob);
        // Read back: the parts' Blobs may be OPFS files, gone once the parts are deleted.
        blob = await blobs.get(modelBlobKey(key, file));
        if (!blob) throw new ModelSourceError(`${file} of ${source.name} could not be stored`);
        await blobs.deletePrefix(downloadPrefix(key, file));
      }
      map.set(file, blob);
    }
    onProgress?.({ file: '', loaded: 0, total: null, filesDone: source.files.length, files: source.files.length });
    return blobModelDir(map);
  };
}
