/**
 * Where jobs live: records, events and metrics rows in IndexedDB; large blobs (dataset files,
 * checkpoints, adapters, cached model files) in the Origin Private File System when the browser
 * has it, else in IndexedDB as Blobs. The same JobStore interface in memory serves Node tests and
 * the CLI. This file holds the interfaces, the blob keys and the in-memory stores; the browser's
 * stores are opfsBlobStore.ts and idbStore.ts.
 *
 * Blob keys are `/`-separated paths of store-safe segments:
 *   files/<fileId>                              uploaded JSONL files
 *   checkpoints/<jobId>/<name>.safetensors      training checkpoints (CheckpointStore view)
 *   adapters/<jobId>/adapter_model.safetensors  final PEFT adapter (+ adapter_config.json)
 *   models/<modelKey>/<file>                    model files of hub and local models
 */
import { checkStoreName, type CheckpointStore } from '../train/checkpoint';
import type { StepMetrics } from '../train/metrics';
import type { FileRecord, JobEvent, JobRecord, NewJobEvent } from './job';

export class JobStoreError extends Error {
  override name = 'JobStoreError';
}

// ---------------------------------------------------------------------------------------------
// Blobs

export type BlobData = Blob | Uint8Array;

export interface BlobStore {
  readonly kind: 'opfs' | 'indexeddb' | 'memory';
  put(key: string, data: BlobData): Promise<void>;
  /** The blob, or null when there is none under `key`. */
  get(key: string): Promise<Blob | null>;
  delete(key: string): Promise<void>;
  /** Keys under `prefix` (a folder path ending in `/`), recursively, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Deletes every key under `prefix` (a folder path ending in `/`). */
  deletePrefix(prefix: string): Promise<void>;
}

const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Splits a key into path segments, refusing anything that could escape a folder. */
export function blobKeySegments(key: string): string[] {
  const parts = key.split('/');
  for (const p of parts) {
    if (!SEGMENT.test(p) || p === '.' || p === '..' || p.length > 200) {
      throw new JobStoreError(`blob key ${JSON.stringify(key)}: segment ${JSON.stringify(p)} must be 1-200 characters of A-Z a-z 0-9 . _ -`);
    }
  }
  return parts;
}

export function checkPrefix(prefix: string): string[] {
  if (!prefix.endsWith('/')) throw new JobStoreError(`blob prefix ${JSON.stringify(prefix)} must end with /`);
  return blobKeySegments(prefix.slice(0, -1));
}

/** A Blob over bytes (copied, so later changes to the array do not leak into the store). */
export function toBlob(data: BlobData): Blob {
  if (data instanceof Blob) return data;
  return new Blob([data.slice() as Uint8Array<ArrayBuffer>]);
}

export async function blobBytes(blob: Blob): Promise<Uint8Array> {
  return new Uint8Array(await blob.arrayBuffer());
}

export class MemoryBlobStore implements BlobStore {
  readonly kind = 'memory' as const;
  private readonly blobs = new Map<string, Blob>();

  async put(key: string, data: BlobData): Promise<void> {
    blobKeySegments(key);
    this.blobs.set(key, toBlob(data));
  }

  async get(key: string): Promise<Blob | null> {
    return this.blobs.get(key) ?? null;
  }

  async delete(key: string): Promise<void> {
    this.blobs.delete(key);
  }

  async list(prefix: string): Promise<string[]> {
    checkPrefix(prefix);
    return [...this.blobs.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  async deletePrefix(prefix: string): Promise<void> {
    for (const k of await this.list(prefix)) this.blobs.delete(k);
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints on top of blobs

const CHECKPOINT_SUFFIX = '.safetensors';

/** The trainer's CheckpointStore over a BlobStore: `checkpoints/<jobId>/<name>.safetensors`. */
export function blobCheckpointStore(blobs: BlobStore): CheckpointStore {
  const key = (jobId: string, name: string) => {
    checkStoreName('job id', jobId);
    checkStoreName('checkpoint name', name);
    return `checkpoints/${jobId}/${name}${CHECKPOINT_SUFFIX}`;
  };
  return {
    save: async (jobId, name, bytes) => blobs.put(key(jobId, name), bytes),
    async load(jobId, name) {
      const blob = await blobs.get(key(jobId, name));
      return blob ? blobBytes(blob) : null;
    },
    async list(jobId) {
      checkStoreName('job id', jobId);
      const prefix = `checkpoints/${jobId}/`;
      return (await blobs.list(prefix))
        .map((k) => k.slice(prefix.length))
        .filter((n) => n.endsWith(CHECKPOINT_SUFFIX) && !n.includes('/'))
        .map((n) => n.slice(0, -CHECKPOINT_SUFFIX.length))
        .sort();
    },
    delete: async (jobId, name) => blobs.delete(key(jobId, name)),
  };
}

export const fileBlobKey = (fileId: string): string => `files/${fileId}`;
export const adapterBlobKey = (jobId: string): string => `adapters/${jobId}/adapter_model.safetensors`;
export const adapterConfigBlobKey = (jobId: string): string => `adapters/${jobId}/adapter_config.json`;
export const modelBlobKey = (modelKey: string, file: string): string => `models/${modelKey}/${file}`;

// ---------------------------------------------------------------------------------------------
// Jobs

export interface ListEventsOptions {
  /** Only events with seq greater than this (to poll for new lines). */
  afterSeq?: number;
  /** At most this many, the oldest first. */
  limit?: number;
}

export interface JobStore {
  readonly blobs: BlobStore;
  /** Checkpoints, kept as blobs. */
  readonly checkpoints: CheckpointStore;

  /** Inserts or replaces a record. */
  putJob(job: JobRecord): Promise<void>;
  getJob(id: string): Promise<JobRecord | null>;
  /** Newest first. */
  listJobs(): Promise<JobRecord[]>;
  /**
   * Read-modify-write of one record in one transaction, so a pause request and a step update
   * never overwrite each other. `update` must be synchronous; what it throws aborts the write.
   */
  updateJob(id: string, update: (job: JobRecord) => JobRecord): Promise<JobRecord>;
  /** The record, its events, metrics, checkpoints and adapter. Uploaded files stay. */
  deleteJob(id: string): Promise<void>;

  /** Appends to the job's log; returns the stored events (with seq). */
  appendEvents(jobId: string, events: readonly NewJobEvent[]): Promise<JobEvent[]>;
  listEvents(jobId: string, options?: ListEventsOptions): Promise<JobEvent[]>;

  /** Inserts or replaces metrics rows by step. */
  putMetrics(jobId: string, rows: readonly StepMetrics[]): Promise<void>;
  /** By step. */
  listMetrics(jobId: string): Promise<StepMetrics[]>;
  /** Drops rows after `step` (a resume from a checkpoint redoes them). */
  deleteMetricsAfter(jobId: string, step: number): Promise<void>;

  putFile(record: FileRecord, data: BlobData): Promise<void>;
  getFile(id: string): Promise<FileRecord | null>;
  /** The file's bytes as a Blob, or null. */
  readFile(id: string): Promise<Blob | null>;
  /** Newest first. */
  listFiles(): Promise<FileRecord[]>;
  deleteFile(id: string): Promise<void>;

  close(): void;
}

export function missing(id: string): never {
  throw new JobStoreError(`no job ${id}`);
}

export function stamp(jobId: string, seq: number, e: NewJobEvent): JobEvent {
  return { seq, jobId, time: e.time ?? Date.now(), level: e.level, message: e.message, step: e.step ?? null, kind: e.kind ?? 'message' };
}

export const byNewest = <T extends { createdAt: number; id: string }>(a: T, b: T) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1);

/** Everything in memory (tests, CLI). Values are cloned in and out, as IndexedDB would. */
export class MemoryJobStore implements JobStore {
  readonly checkpoints: CheckpointStore;
  private readonly jobs = new Map<string, JobRecord>();
  private readonly events = new Map<string, JobEvent[]>();
  private readonly metrics = new Map<string, Map<number, StepMetrics>>();
  private readonly files = new Map<string, FileRecord>();

  constructor(readonly blobs: BlobStore = new MemoryBlobStore()) {
    this.checkpoints = blobCheckpointStore(blobs);
  }

  putJob(job: JobRecord): Promise<void> {
    this.jobs.set(job.id, structuredClone(job));
    return Promise.resolve();
  }

  getJob(id: string): Promise<JobRecord | null> {
    const j = this.jobs.get(id);
    return Promise.resolve(j ? structuredClone(j) : null);
  }

  listJobs(): Promise<JobRecord[]> {
    return Promise.resolve([...this.jobs.values()].map((j) => structuredClone(j)).sort(byNewest));
  }

  updateJob(id: string, update: (job: JobRecord) => JobRecord): Promise<JobRecord> {
    const j = this.jobs.get(id);
    if (!j) return Promise.reject(new JobStoreError(`no job ${id}`));
    let next: JobRecord;
    try {
      next = update(structuredClone(j));
    } catch (e) {
      return Promise.reject(e as Error);
    }
    if (next.id !== id) return Promise.reject(new JobStoreError(`updateJob(${id}) returned job ${next.id}`));
    this.jobs.set(id, structuredClone(next));
    return Promise.resolve(structuredClone(next));
  }

  async deleteJob(id: string): Promise<void> {
    this.jobs.delete(id);
    this.events.delete(id);
    this.metrics.delete(id);
    await deleteJobBlobs(this.blobs, id);
  }

  appendEvents(jobId: string, events: readonly NewJobEvent[]): Promise<JobEvent[]> {
    let log = this.events.get(jobId);
    if (!log) this.events.set(jobId, (log = []));
    const out: JobEvent[] = [];
    for (const e of events) {
      const stored = stamp(jobId, (log[log.length - 1]?.seq ?? 0) + 1, e);
      log.push(stored);
      out.push(structuredClone(stored));
    }
    return Promise.resolve(out);
  }

  listEvents(jobId: string, options: ListEventsOptions = {}): Promise<JobEvent[]> {
    const after = options.afterSeq ?? 0;
    const list = (this.events.get(jobId) ?? []).filter((e) => e.seq > after);
    return Promise.resolve(structuredClone(list.slice(0, options.limit ?? Infinity)));
  }

  putMetrics(jobId: string, rows: readonly StepMetrics[]): Promise<void> {
    let m = this.metrics.get(jobId);
    if (!m) this.metrics.set(jobId, (m = new Map()));
    for (const r of rows) m.set(r.step, structuredClone(r));
    return Promise.resolve();
  }

  listMetrics(jobId: string): Promise<StepMetrics[]> {
    const rows = [...(this.metrics.get(jobId)?.values() ?? [])].sort((a, b) => a.step - b.step);
    return Promise.resolve(structuredClone(rows));
  }

  deleteMetricsAfter(jobId: string, step: number): Promise<void> {
    const m = this.metrics.get(jobId);
    if (m) for (const s of [...m.keys()]) if (s > step) m.delete(s);
    return Promise.resolve();
  }

  async putFile(record: FileRecord, data: BlobData): Promise<void> {
    await this.blobs.put(fileBlobKey(record.id), data);
    this.files.set(record.id, structuredClone(record));
  }

  getFile(id: string): Promise<FileRecord | null> {
    const f = this.files.get(id);
    return Promise.resolve(f ? structuredClone(f) : null);
  }

  async readFile(id: string): Promise<Blob | null> {
    if (!this.files.has(id)) return null;
    return this.blobs.get(fileBlobKey(id));
  }

  listFiles(): Promise<FileRecord[]> {
    return Promise.resolve([...this.files.values()].map((f) => structuredClone(f)).sort(byNewest));
  }

  async deleteFile(id: string): Promise<void> {
    this.files.delete(id);
    await this.blobs.delete(fileBlobKey(id));
  }

  close(): void {}
}

export async function deleteJobBlobs(blobs: BlobStore, jobId: string): Promise<void> {
  checkStoreName('job id', jobId);
  await blobs.deletePrefix(`checkpoints/${jobId}/`);
  await blobs.deletePrefix(`adapters/${jobId}/`);
}
