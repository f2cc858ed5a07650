/**
 * The page's handle on the training worker: typed promise calls (one per request type) and
 * typed event subscriptions. No React here; the UI wraps it in hooks.
 *
 *   const client = TrainingClient.createWorker();
 *   const info = await client.init();
 *   const off = client.onJob(jobId, (e) => ...);           // status, metrics, log of one job
 *   const out = await client.generate(params, { onToken: (d) => append(d.text), signal });
 */
import {
  TrainingWorkerError,
  type AdapterRef,
  type CreateJobInput,
  type CuratedModelView,
  type DownloadProgress,
  type HubRepoView,
  type GenerateOutput,
  type GenerateParams,
  type JobDetails,
  type JobRecord,
  type ModelInfo,
  type ModelSource,
  type RequestParams,
  type RequestResult,
  type TokenDelta,
  type TrainingEvent,
  type TrainingEventType,
  type TrainingRequest,
  type TrainingRequestType,
  type TrainingWorkerInfo,
  type TrainingWorkerMessage,
} from './trainingProtocol';

export type { AdapterRef };

/** A Worker or a MessagePort. */
export interface ClientEndpoint {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  addEventListener(type: 'error', listener: (event: ErrorEvent) => void): void;
  start?: () => void;
  terminate?: () => void;
  close?: () => void;
}

export interface RequestOptions {
  /** Aborting sends an `abort` for this request (generation stops and resolves with what it has). */
  signal?: AbortSignal;
  /** Tokens of a `generate` request. */
  onToken?: (delta: TokenDelta) => void;
  /** Download progress of an `inspect-model` request. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Bytes read so far of a `validate-file` request. */
  onValidateProgress?: (bytesRead: number, totalBytes: number) => void;
}

interface Pending {
  type: TrainingRequestType;
  resolve(value: unknown): void;
  reject(error: Error): void;
  options: RequestOptions;
  cleanup(): void;
}

/** Events that concern one job. */
export type JobEventMessage = Extract<TrainingEvent, { type: 'status' | 'metrics' | 'log' }>;

export class TrainingClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(event: TrainingEvent) => void>();
  private closed: Error | null = null;

  constructor(private readonly endpoint: ClientEndpoint) {
    endpoint.addEventListener('message', (ev: MessageEvent) => this.receive(ev.data as TrainingWorkerMessage));
    endpoint.addEventListener('error', (ev: ErrorEvent) => {
      ev.preventDefault?.();
      this.fail(new TrainingWorkerError({ name: 'WorkerCrashed', message: `The training worker failed: ${ev.message || 'it could not be loaded'}` }));
    });
    endpoint.start?.();
  }

  /** Starts training.worker.ts in a module worker. */
  static createWorker(): TrainingClient {
    const worker = new Worker(new URL('./training.worker.ts', import.meta.url), { type: 'module', name: 'whittle-training' });
    return new TrainingClient(worker);
  }

  /** Sends one request; resolves with its result or rejects with a TrainingWorkerError. */
  request<K extends TrainingRequestType>(type: K, params: RequestParams<K>, options: RequestOptions = {}): Promise<RequestResult<K>> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise<RequestResult<K>>((resolve, reject) => {
      const onAbort = () => this.post({ id: this.nextId++, type: 'abort', params: { requestId: id } });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        type,
        resolve: resolve as (v: unknown) => void,
        reject,
        options,
        cleanup: () => options.signal?.removeEventListener('abort', onAbort),
      });
      this.post({ id, type, params } as TrainingRequest);
      if (options.signal?.aborted) onAbort();
    });
  }

  private post(req: TrainingRequest): void {
    this.endpoint.postMessage(req);
  }

  private receive(msg: TrainingWorkerMessage): void {
    if (msg.kind === 'event') {
      const e = msg.event;
      if (e.type === 'token') this.pending.get(e.requestId)?.options.onToken?.(e.delta);
      else if (e.type === 'download') this.pending.get(e.requestId)?.options.onProgress?.(e.progress);
      else if (e.type === 'validate-progress') this.pending.get(e.requestId)?.options.onValidateProgress?.(e.bytesRead, e.totalBytes);
      for (const l of this.listeners) l(e);
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return; // e.g. the response to an abort nobody awaits
    this.pending.delete(msg.id);
    p.cleanup();
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new TrainingWorkerError(msg.error, msg.type));
  }

  private fail(error: Error): void {
    this.closed = error;
    for (const p of this.pending.values()) {
      p.cleanup();
      p.reject(error);
    }
    this.pending.clear();
    for (const l of this.listeners) l({ type: 'error', requestId: null, error: { name: error.name, message: error.message } });
  }

  /** Every event. Returns the unsubscribe function. */
  subscribe(listener: (event: TrainingEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Events of one type. */
  on<T extends TrainingEventType>(type: T, listener: (event: Extract<TrainingEvent, { type: T }>) => void): () => void {
    return this.subscribe((e) => {
      if (e.type === type) listener(e as Extract<TrainingEvent, { type: T }>);
    });
  }

  /** Status changes, metrics rows and log lines of one job. */
  onJob(jobId: string, listener: (event: JobEventMessage) => void): () => void {
    return this.subscribe((e) => {
      if (e.type === 'status' ? e.job.id === jobId : (e.type === 'metrics' || e.type === 'log') && e.jobId === jobId) listener(e as JobEventMessage);
    });
  }

  /** Rejects what is pending and stops the worker. */
  close(): void {
    this.fail(new TrainingWorkerError({ name: 'ClientClosed', message: 'the training client was closed' }));
    this.endpoint.terminate?.();
    this.endpoint.close?.();
  }

  // -------------------------------------------------------------------------- typed calls

  init(options: RequestParams<'init'> = {}): Promise<TrainingWorkerInfo> {
    return this.request('init', options);
  }

  inspectModel(source: ModelSource, onProgress?: (p: DownloadProgress) => void): Promise<ModelInfo> {
    return this.request('inspect-model', { source }, { onProgress });
  }

  curatedModels(): Promise<CuratedModelView[]> {
    return this.request('curated-models', {});
  }

  /** A Hub repo's model files and a default job's memory; the token is kept by the worker for this repo's downloads. */
  resolveHubRepo(repo: string, options: { revision?: string; accessToken?: string | null } = {}): Promise<HubRepoView> {
    return this.request('resolve-hub-repo', { repo, ...options });
  }

  /** Files of a picked folder (webkitRelativePath's folder prefix is dropped). */
  importLocalModel(name: string, files: Iterable<File> | ReadonlyMap<string, Blob>): Promise<ModelInfo> {
    const list: { name: string; blob: Blob }[] = [];
    if (files instanceof Map) {
      for (const [n, blob] of files as ReadonlyMap<string, Blob>) list.push({ name: n, blob });
    } else {
      for (const f of files as Iterable<File>) {
        const rel = f.webkitRelativePath || f.name;
        list.push({ name: rel.includes('/') ? rel.slice(rel.indexOf('/') + 1) : rel, blob: f });
      }
    }
    return this.request('import-local-model', { name, files: list });
  }

  validateFile(
    file: Blob,
    options: Omit<RequestParams<'validate-file'>, 'file'> = {},
    onProgress?: (bytesRead: number, totalBytes: number) => void,
  ): Promise<RequestResult<'validate-file'>> {
    return this.request('validate-file', { file, ...options }, { onValidateProgress: onProgress });
  }

  uploadFile(name: string, file: Blob, model?: ModelSource): Promise<RequestResult<'upload-file'>> {
    return this.request('upload-file', { name, file, model });
  }

  listFiles(): Promise<RequestResult<'list-files'>> {
    return this.request('list-files', {});
  }

  deleteFile(fileId: string): Promise<null> {
    return this.request('delete-file', { fileId });
  }

  createJob(input: CreateJobInput): Promise<JobRecord> {
    return this.request('create-job', input);
  }

  start(jobId: string): Promise<JobRecord> {
    return this.request('start', { jobId });
  }

  pause(jobId: string): Promise<JobRecord> {
    return this.request('pause', { jobId });
  }

  resume(jobId: string): Promise<JobRecord> {
    return this.request('resume', { jobId });
  }

  cancel(jobId: string): Promise<JobRecord> {
    return this.request('cancel', { jobId });
  }

  deleteJob(jobId: string): Promise<null> {
    return this.request('delete-job', { jobId });
  }

  listJobs(): Promise<JobRecord[]> {
    return this.request('list-jobs', {});
  }

  getJob(jobId: string, afterSeq?: number): Promise<JobDetails> {
    return this.request('get-job', { jobId, afterSeq });
  }

  getAdapter(jobId: string, checkpoint?: string): Promise<RequestResult<'get-adapter'>> {
    return this.request('get-adapter', { jobId, checkpoint });
  }

  /** Recomputes a succeeded job's validation insights (the record, marked computing). */
  computeInsights(jobId: string): Promise<JobRecord> {
    return this.request('compute-insights', { jobId });
  }

  previewHyperparameters(params: RequestParams<'preview-hyperparameters'>): Promise<RequestResult<'preview-hyperparameters'>> {
    return this.request('preview-hyperparameters', params);
  }

  /** The first examples of a file as tokens with trained flags, for the create-job preview. */
  previewExamples(params: RequestParams<'preview-examples'>): Promise<RequestResult<'preview-examples'>> {
    return this.request('preview-examples', params);
  }

  /** Cached models with files and sizes; pass the embedded model's source to list it too. */
  listModels(embedded?: ModelSource | null): Promise<RequestResult<'list-models'>> {
    return this.request('list-models', { embedded });
  }

  /** Deletes a cached model's files (its key from listModels). */
  deleteModel(key: string | null): Promise<RequestResult<'delete-model'>> {
    return this.request('delete-model', { key });
  }

  /** One pane's generation; `onToken` gets each token's text as it is sampled. */
  generate(params: GenerateParams, options: { onToken?: (delta: TokenDelta) => void; signal?: AbortSignal } = {}): Promise<GenerateOutput> {
    return this.request('generate', params, options);
  }
}
