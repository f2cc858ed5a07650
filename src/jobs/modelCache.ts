/**
 * The model cache as the Models page shows it: every model whose files are in the blob store
 * (imported local folders, Hub downloads, finished or not) plus the embedded model, with files,
 * sizes and the jobs that use it; and removing one, which deletes its blobs unless a job that
 * has not finished still needs them.
 */
import { isTerminal, type JobRecord, type JobStatus, type ModelSource } from './job';
import { downloadParts, modelKeyOf, modelSourceBlobKey } from './models';
import type { BlobStore, JobStore } from './store';

export interface CachedModelFile {
  name: string;
  /** Stored bytes (for an unfinished download, the bytes so far); null when unknown. */
  bytes: number | null;
  /** An unfinished download (resumes from `bytes`). */
  partial: boolean;
}

export interface CachedModel {
  /** The blob-store folder (`models/<key>/`); null for the embedded model, served by the app. */
  key: string | null;
  kind: ModelSource['kind'];
  name: string;
  /** Hub revision. */
  revision: string | null;
  /** The source, when known (recorded when the model was added, or a job's); null for old caches. */
  source: ModelSource | null;
  files: CachedModelFile[];
  /** Bytes of every file listed (unknown sizes count 0). */
  bytes: number;
  /** Files of the source not stored yet (a download that has not finished). */
  missingFiles: string[];
  addedAt: number | null;
  /** Jobs on this model. */
  jobs: { id: string; status: JobStatus }[];
  /** Null when Remove may delete it, else why not. */
  cannotRemove: string | null;
}

export class ModelCacheError extends Error {
  override name = 'ModelCacheError';
}

/** Job statuses that still need the base model's files (paused jobs resume from a checkpoint on them). */
export function needsModel(status: JobStatus): boolean {
  return !isTerminal(status);
}

const EMBEDDED_REMOVE = 'The embedded model is served with the app, not stored in this browser: there is nothing to delete.';

interface Recorded {
  source: ModelSource;
  addedAt: number | null;
}

async function readRecorded(blobs: BlobStore, key: string): Promise<Recorded | null> {
  const b = await blobs.get(modelSourceBlobKey(key));
  if (!b) return null;
  try {
    const v = JSON.parse(await b.text()) as { source?: ModelSource; addedAt?: number };
    return v.source ? { source: v.source, addedAt: typeof v.addedAt === 'number' ? v.addedAt : null } : null;
  } catch {
    return null;
  }
}

/** A Hub key `hub--<owner>--<repo>--<revision>` read back (for caches without a recorded source). */
function guessFromKey(key: string): { kind: 'hub' | 'local'; name: string; revision: string | null } {
  if (key.startsWith('hub--')) {
    const parts = key.slice('hub--'.length).split('--');
    const revision = parts.length > 1 ? parts.pop()! : null;
    return { kind: 'hub', name: parts.join('/'), revision };
  }
  return { kind: 'local', name: key, revision: null };
}

/** Second path segment of keys under `top/`. */
function folderKeys(keys: readonly string[], top: string): Set<string> {
  const out = new Set<string>();
  for (const k of keys) {
    if (!k.startsWith(top)) continue;
    const seg = k.slice(top.length).split('/')[0];
    if (seg) out.add(seg);
  }
  return out;
}

/** Sizes of the embedded model's files, from HEAD requests (null where the server says nothing). */
async function embeddedFiles(source: Extract<ModelSource, { kind: 'embedded' }>, fetchImpl: typeof fetch): Promise<CachedModelFile[]> {
  const base = source.url.endsWith('/') ? source.url : `${source.url}/`;
  return Promise.all(
    source.files.map(async (name) => {
      try {
        const res = await fetchImpl(base + name, { method: 'HEAD' });
        const n = Number(res.headers.get('content-length'));
        return { name, bytes: res.ok && res.headers.has('content-length') && Number.isSafeInteger(n) ? n : null, partial: false };
      } catch {
        return { name, bytes: null, partial: false };
      }
    }),
  );
}

export interface ListCachedModelsOptions {
  /** The app's embedded model, listed first (its sizes come from HEAD requests). */
  embedded?: ModelSource | null;
  fetch?: typeof fetch;
}

/** Every cached model, the embedded one first, then by name. */
export async function listCachedModels(store: JobStore, options: ListCachedModelsOptions = {}): Promise<CachedModel[]> {
  return listWithJobs(store.blobs, await store.listJobs(), options);
}

async function listWithJobs(blobs: BlobStore, jobs: readonly JobRecord[], options: ListCachedModelsOptions): Promise<CachedModel[]> {
  const [fileKeys, partKeys, sourceKeys] = await Promise.all([blobs.list('models/'), blobs.list('downloads/'), blobs.list('model-sources/')]);
  const keys = new Set([...folderKeys(fileKeys, 'models/'), ...folderKeys(partKeys, 'downloads/')]);
  for (const k of sourceKeys) {
    const name = k.slice('model-sources/'.length);
    if (name.endsWith('.json')) keys.add(name.slice(0, -'.json'.length));
  }
  const jobsByKey = new Map<string, JobRecord[]>();
  const jobSource = new Map<string, ModelSource>();
  for (const j of jobs) {
    let key: string | null;
    try {
      key = modelKeyOf(j.baseModel.source);
    } catch {
      continue;
    }
    if (key === null) continue;
    jobsByKey.set(key, [...(jobsByKey.get(key) ?? []), j]);
    jobSource.set(key, j.baseModel.source);
  }

  const out: CachedModel[] = [];
  for (const key of keys) {
    const recorded = await readRecorded(blobs, key);
    const source = recorded?.source ?? jobSource.get(key) ?? null;
    const guess = guessFromKey(key);
    const prefix = `models/${key}/`;
    const stored = fileKeys.filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
    const files: CachedModelFile[] = [];
    for (const name of stored) files.push({ name, bytes: (await blobs.get(prefix + name))?.size ?? null, partial: false });
    for (const name of folderKeys(partKeys, `downloads/${key}/`)) {
      if (stored.includes(name)) continue;
      const parts = await downloadParts(blobs, key, name);
      files.push({ name, bytes: parts.bytes, partial: true });
    }
    files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const users = jobsByKey.get(key) ?? [];
    const busy = users.filter((j) => needsModel(j.status));
    const name = source?.name ?? guess.name;
    out.push({
      key,
      kind: source?.kind ?? guess.kind,
      name,
      revision: source?.kind === 'hub' ? source.revision : source ? null : guess.revision,
      source,
      files,
      bytes: files.reduce((n, f) => n + (f.bytes ?? 0), 0),
      missingFiles: source ? source.files.filter((f) => !stored.includes(f)) : [],
      addedAt: recorded?.addedAt ?? null,
      jobs: users.map((j) => ({ id: j.id, status: j.status })),
      cannotRemove: busy.length ? inUseMessage(name, busy) : null,
    });
  }
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) || ((a.key ?? '') < (b.key ?? '') ? -1 : 1));

  const embedded = options.embedded;
  if (embedded?.kind === 'embedded') {
    const files = await embeddedFiles(embedded, options.fetch ?? ((input, init) => fetch(input, init)));
    const users = jobs.filter((j) => j.baseModel.source.kind === 'embedded' && j.baseModel.source.url === embedded.url);
    out.unshift({
      key: null,
      kind: 'embedded',
      name: embedded.name,
      revision: null,
      source: embedded,
      files,
      bytes: files.reduce((n, f) => n + (f.bytes ?? 0), 0),
      missingFiles: [],
      addedAt: null,
      jobs: users.map((j) => ({ id: j.id, status: j.status })),
      cannotRemove: EMBEDDED_REMOVE,
    });
  }
  return out;
}

function inUseMessage(name: string, busy: readonly { id: string; status: JobStatus }[]): string {
  const list = busy.map((j) => `${j.id} (${j.status.replace('_', ' ')})`).join(', ');
  return `${name} is the base model of ${busy.length === 1 ? 'job' : 'jobs'} ${list}: cancel ${busy.length === 1 ? 'it' : 'them'} or let ${busy.length === 1 ? 'it' : 'them'} finish before removing the model.`;
}

export interface RemovedModel {
  key: string;
  /** Bytes deleted (files and unfinished downloads). */
  bytes: number;
  files: number;
}

/**
 * Deletes a cached model's files, its unfinished downloads and its recorded source. Refused
 * (ModelCacheError) while a job that has not finished uses it, and for the embedded model (pass
 * key null), which the app serves and this browser does not store.
 */
export async function removeCachedModel(store: JobStore, key: string | null): Promise<RemovedModel> {
  if (key === null) throw new ModelCacheError(EMBEDDED_REMOVE);
  const jobs = await store.listJobs();
  const busy = jobs.filter((j) => {
    try {
      return modelKeyOf(j.baseModel.source) === key && needsModel(j.status);
    } catch {
      return false;
    }
  });
  const listed = (await listWithJobs(store.blobs, jobs, {})).find((m) => m.key === key);
  const name = listed?.name ?? key;
  if (busy.length) throw new ModelCacheError(inUseMessage(name, busy));
  if (!listed) throw new ModelCacheError(`no cached model ${key}`);
  await store.blobs.deletePrefix(`models/${key}/`);
  await store.blobs.deletePrefix(`downloads/${key}/`);
  await store.blobs.delete(modelSourceBlobKey(key));
  return { key, bytes: listed.bytes, files: listed.files.length };
}
