/**
 * The app's job store in the browser: records, events and metrics rows in IndexedDB; blobs in
 * the Origin Private File System when the browser has it, else in IndexedDB as Blobs.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';

import type { CheckpointStore } from '../train/checkpoint';
import type { StepMetrics } from '../train/metrics';
import type { FileRecord, JobEvent, JobRecord, NewJobEvent } from './job';
import { hasOpfs, OpfsBlobStore } from './opfsBlobStore';
import { blobCheckpointStore, blobKeySegments, byNewest, checkPrefix, deleteJobBlobs, fileBlobKey, JobStoreError, missing, stamp, toBlob, type BlobData, type BlobStore, type JobStore, type ListEventsOptions } from './store';

interface StoredMetrics {
  jobId: string;
  step: number;
  row: StepMetrics;
}

interface StoredBlob {
  key: string;
  blob: Blob;
}

interface WhittleDb extends DBSchema {
  jobs: { key: string; value: JobRecord; indexes: { createdAt: number } };
  events: { key: [string, number]; value: JobEvent };
  metrics: { key: [string, number]; value: StoredMetrics };
  files: { key: string; value: FileRecord; indexes: { createdAt: number } };
  blobs: { key: string; value: StoredBlob };
}

export const DEFAULT_DB_NAME = 'whittle';
const DB_VERSION = 1;

function openWhittleDb(name: string): Promise<IDBPDatabase<WhittleDb>> {
  return openDB<WhittleDb>(name, DB_VERSION, {
    upgrade(db, oldVersion) {
      if (oldVersion < 1) {
        db.createObjectStore('jobs', { keyPath: 'id' }).createIndex('createdAt', 'createdAt');
        db.createObjectStore('events', { keyPath: ['jobId', 'seq'] });
        db.createObjectStore('metrics', { keyPath: ['jobId', 'step'] });
        db.createObjectStore('files', { keyPath: 'id' }).createIndex('createdAt', 'createdAt');
        db.createObjectStore('blobs', { keyPath: 'key' });
      }
    },
  });
}

/** All keys [jobId, n] of one job, in n order. */
function jobRange(jobId: string, after = -Infinity): IDBKeyRange {
  return IDBKeyRange.bound([jobId, after], [jobId, Infinity], after !== -Infinity, false);
}

/** Blobs in the same IndexedDB database, for browsers without OPFS. */
export class IdbBlobStore implements BlobStore {
  readonly kind = 'indexeddb' as const;

  constructor(private readonly db: IDBPDatabase<WhittleDb>) {}

  async put(key: string, data: BlobData): Promise<void> {
    blobKeySegments(key);
    await this.db.put('blobs', { key, blob: toBlob(data) });
  }

  async get(key: string): Promise<Blob | null> {
    return (await this.db.get('blobs', key))?.blob ?? null;
  }

  async delete(key: string): Promise<void> {
    await this.db.delete('blobs', key);
  }

  private range(prefix: string): IDBKeyRange {
    checkPrefix(prefix);
    // Every key with this prefix sorts between the prefix and the prefix + the highest code unit.
    return IDBKeyRange.bound(prefix, `${prefix}\uffff`);
  }

  async list(prefix: string): Promise<string[]> {
    return (await this.db.getAllKeys('blobs', this.range(prefix))).sort();
  }

  async deletePrefix(prefix: string): Promise<void> {
    await this.db.delete('blobs', this.range(prefix));
  }
}

export interface OpenJobStoreOptions {
  /** IndexedDB database name (tests use a fresh one each). */
  name?: string;
  /** Where blobs go; 'auto': OPFS when the browser has it, else IndexedDB. */
  blobs?: 'auto' | 'opfs' | 'indexeddb' | BlobStore;
}

export class IdbJobStore implements JobStore {
  readonly checkpoints: CheckpointStore;

  private constructor(
    private readonly db: IDBPDatabase<WhittleDb>,
    readonly blobs: BlobStore,
  ) {
    this.checkpoints = blobCheckpointStore(blobs);
  }

  static async open(options: OpenJobStoreOptions = {}): Promise<IdbJobStore> {
    const name = options.name ?? DEFAULT_DB_NAME;
    const db = await openWhittleDb(name);
    const want = options.blobs ?? 'auto';
    let blobs: BlobStore;
    if (typeof want === 'object') blobs = want;
    else if (want === 'opfs' || (want === 'auto' && hasOpfs())) blobs = await OpfsBlobStore.open(name);
    else blobs = new IdbBlobStore(db);
    return new IdbJobStore(db, blobs);
  }

  async putJob(job: JobRecord): Promise<void> {
    await this.db.put('jobs', job);
  }

  async getJob(id: string): Promise<JobRecord | null> {
    return (await this.db.get('jobs', id)) ?? null;
  }

  async listJobs(): Promise<JobRecord[]> {
    return (await this.db.getAll('jobs')).sort(byNewest);
  }

  async updateJob(id: string, update: (job: JobRecord) => JobRecord): Promise<JobRecord> {
    const tx = this.db.transaction('jobs', 'readwrite');
    try {
      const job = (await tx.store.get(id)) ?? missing(id);
      const next = update(job);
      if (next.id !== id) throw new JobStoreError(`updateJob(${id}) returned job ${next.id}`);
      await tx.store.put(next);
      await tx.done;
      return next;
    } catch (e) {
      try {
        tx.abort();
      } catch {
        // already finished
      }
      await tx.done.catch(() => {});
      throw e;
    }
  }

  async deleteJob(id: string): Promise<void> {
    const tx = this.db.transaction(['jobs', 'events', 'metrics'], 'readwrite');
    await Promise.all([tx.objectStore('jobs').delete(id), tx.objectStore('events').delete(jobRange(id)), tx.objectStore('metrics').delete(jobRange(id)), tx.done]);
    await deleteJobBlobs(this.blobs, id);
  }

  async appendEvents(jobId: string, events: readonly NewJobEvent[]): Promise<JobEvent[]> {
    const tx = this.db.transaction('events', 'readwrite');
    // The last seq of the job, read in the same transaction so concurrent appends never collide.
    const last = await tx.store.openCursor(jobRange(jobId), 'prev');
    let seq = last ? last.value.seq : 0;
    const out = events.map((e) => stamp(jobId, ++seq, e));
    await Promise.all([...out.map((e) => tx.store.put(e)), tx.done]);
    return out;
  }

  async listEvents(jobId: string, options: ListEventsOptions = {}): Promise<JobEvent[]> {
    return this.db.getAll('events', jobRange(jobId, options.afterSeq ?? -Infinity), options.limit);
  }

  async putMetrics(jobId: string, rows: readonly StepMetrics[]): Promise<void> {
    if (rows.length === 0) return;
    const tx = this.db.transaction('metrics', 'readwrite');
    await Promise.all([...rows.map((row) => tx.store.put({ jobId, step: row.step, row })), tx.done]);
  }

  async listMetrics(jobId: string): Promise<StepMetrics[]> {
    return (await this.db.getAll('metrics', jobRange(jobId))).map((m) => m.row);
  }

  async deleteMetricsAfter(jobId: string, step: number): Promise<void> {
    await this.db.delete('metrics', jobRange(jobId, step));
  }

  async putFile(record: FileRecord, data: BlobData): Promise<void> {
    // Bytes first: a record never points at a missing blob.
    await this.blobs.put(fileBlobKey(record.id), data);
    await this.db.put('files', record);
  }

  async getFile(id: string): Promise<FileRecord | null> {
    return (await this.db.get('files', id)) ?? null;
  }

  async readFile(id: string): Promise<Blob | null> {
    if (!(await this.db.getKey('files', id))) return null;
    return this.blobs.get(fileBlobKey(id));
  }

  async listFiles(): Promise<FileRecord[]> {
    return (await this.db.getAll('files')).sort(byNewest);
  }

  async deleteFile(id: string): Promise<void> {
    await this.db.delete('files', id);
    await this.blobs.delete(fileBlobKey(id));
  }

  close(): void {
    this.db.close();
  }
}

/** The app's store: IndexedDB for records, OPFS (or IndexedDB) for blobs. */
export function openJobStore(options: OpenJobStoreOptions = {}): Promise<IdbJobStore> {
  return IdbJobStore.open(options);
}
