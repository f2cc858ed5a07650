/**
 * The worker side of the training protocol: opens the store and the GPU, builds the JobRunner,
 * answers requests and forwards the runner's updates as events. Kept apart from
 * training.worker.ts (which only binds it to the worker's global scope) so tests can serve it
 * over a MessageChannel in Node.
 */
import { acquireGpu as acquireDefaultGpu, type Gpu } from '../gpu';
import { curatedModelViews, inspectHubRepo } from '../jobs/modelCatalog';
import { HUB_URL, storeModelResolver, type OpenModelDir } from '../jobs/models';
import { JobRunner, type JobRunnerOptions, type RunnerUpdate } from '../jobs/runner';
import { idbTuningStore } from '../jobs/tuningStoreIdb';
import { openJobStore } from '../jobs/idbStore';
import type { JobStore } from '../jobs/store';
import {
  serializeError,
  TRAINING_REQUEST_TYPES,
  type RequestParams,
  type RequestResult,
  type TrainingEvent,
  type TrainingRequest,
  type TrainingRequestType,
  type TrainingWorkerInfo,
  type TrainingWorkerMessage,
} from './trainingProtocol';

/** A worker scope or a MessagePort. */
export interface HostEndpoint {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  start?: () => void;
}

export interface TrainingHostOptions {
  /** Default: IndexedDB + OPFS (openJobStore). */
  openStore?: () => Promise<JobStore>;
  /** Default: acquireGpu() from src/gpu. Called again after a device loss. */
  acquireGpu?: () => Promise<Gpu>;
  /** Default: storeModelResolver over the store's blobs (Hub downloads from hubUrl, with the tokens given). */
  openModel?: (store: JobStore) => OpenModelDir;
  /** The Hub or a mirror in its layout (default HUB_URL). */
  hubUrl?: string;
  /** Extra runner settings (batching, keepCheckpoints). */
  runner?: Pick<JobRunnerOptions, 'batching' | 'keepCheckpoints' | 'now' | 'tuningStore'>;
  /**
   * Web Locks, so that one tab's worker runs (and recovers) jobs while other tabs only record
   * them; default navigator.locks, null: this worker always runs jobs.
   */
  locks?: Pick<LockManager, 'request'> | null;
  /** Carries job updates between tabs; default a BroadcastChannel named BROADCAST_NAME, null: none. */
  broadcast?: BroadcastLike | null;
}

/** What the host needs of a BroadcastChannel. */
export interface BroadcastLike {
  postMessage(message: unknown): void;
  onmessage: ((ev: MessageEvent) => void) | null;
  close(): void;
}

export const RUNNER_LOCK = 'whittle-job-runner';
export const BROADCAST_NAME = 'whittle-jobs';

function defaultLocks(): Pick<LockManager, 'request'> | null {
  return (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks ?? null;
}

function defaultBroadcast(): BroadcastLike | null {
  return typeof BroadcastChannel === 'function' ? new BroadcastChannel(BROADCAST_NAME) : null;
}

/**
 * Takes the runner lock when it is free (true), else queues for it and calls `onGranted` once
 * the tab holding it closes (false). The lock is held for the worker's lifetime.
 */
function takeRunnerLock(locks: Pick<LockManager, 'request'>, onGranted: () => void): Promise<boolean> {
  const forever = () => new Promise<void>(() => {});
  return new Promise<boolean>((resolveNow, rejectNow) => {
    locks
      .request(RUNNER_LOCK, { ifAvailable: true }, (lock) => {
        resolveNow(lock !== null);
        if (lock !== null) return forever();
        void locks.request(RUNNER_LOCK, () => {
          onGranted();
          return forever();
        });
        return undefined;
      })
      .catch(rejectNow);
  });
}

interface RequestContext {
  id: number;
  signal: AbortSignal;
  post(event: TrainingEvent): void;
  /** The Hub's URL and the access tokens given per repo (worker memory only). */
  hub: { url: string; tokens: Map<string, string> };
}

type Handlers = { [K in TrainingRequestType]: (runner: JobRunner, params: RequestParams<K>, ctx: RequestContext) => Promise<RequestResult<K>> };

const handlers: Omit<Handlers, 'init' | 'abort'> = {
  'inspect-model': (r, p, ctx) => r.inspectModel(p.source, (progress) => ctx.post({ type: 'download', requestId: ctx.id, progress })),
  'curated-models': async (r) => {
    const { limits, dtype } = await r.jobMemoryContext();
    return curatedModelViews(limits, dtype);
  },
  'resolve-hub-repo': async (r, p, ctx) => {
    const token = p.accessToken?.trim() || null;
    const { limits, dtype } = await r.jobMemoryContext();
    const view = await inspectHubRepo(p.repo, { revision: p.revision, hubUrl: ctx.hub.url, accessToken: token }, limits, dtype);
    if (token) ctx.hub.tokens.set(p.repo, token);
    return view;
  },
  'import-local-model': (r, p) => r.importLocalModel(p.name, new Map(p.files.map((f) => [f.name, f.blob]))),
  'validate-file': (r, p, ctx) => {
    // One event per whole percent: a 50 MB file read in 64 KiB chunks would otherwise send 800.
    let percent = -1;
    const onProgress = (bytesRead: number) => {
      const now = p.file.size > 0 ? Math.floor((bytesRead / p.file.size) * 100) : 100;
      if (now === percent) return;
      percent = now;
      ctx.post({ type: 'validate-progress', requestId: ctx.id, bytesRead, totalBytes: p.file.size });
    };
    return r.validateFile(p.file, { model: p.model, maxSeqLen: p.maxSeqLen, epochs: p.epochs, tooFewIsError: p.tooFewIsError, onProgress });
  },
  'upload-file': (r, p) => r.uploadFile(p.name, p.file, { model: p.model }),
  'list-files': (r) => r.store.listFiles(),
  'delete-file': async (r, p) => {
    await r.store.deleteFile(p.fileId);
    return null;
  },
  'create-job': (r, p) => r.createJob(p),
  start: (r, p) => r.start(p.jobId),
  pause: (r, p) => r.pause(p.jobId),
  resume: (r, p) => r.resume(p.jobId),
  cancel: (r, p) => r.cancel(p.jobId),
  'delete-job': async (r, p) => {
    await r.deleteJob(p.jobId);
    return null;
  },
  'list-jobs': (r) => r.listJobs(),
  'get-job': (r, p) => r.getJobDetails(p.jobId, { afterSeq: p.afterSeq }),
  'get-adapter': (r, p) => r.getAdapter(p.jobId, p.checkpoint),
  'compute-insights': (r, p) => r.computeValidationInsights(p.jobId),
  'preview-hyperparameters': (r, p) => r.previewHyperparameters(p.model, p.examples, p.requested, p.longestExample, p.dtype),
  generate: (r, p, ctx) => r.generate(p, (delta) => ctx.post({ type: 'token', requestId: ctx.id, delta }), ctx.signal),
  'preview-examples': (r, p) => r.previewExamples(p.file, p.model, { count: p.count, maxSeqLen: p.maxSeqLen }),
  'list-models': (r, p) => r.listModels(p.embedded),
  'delete-model': (r, p) => r.deleteModel(p.key),
};

function isRequest(data: unknown): data is TrainingRequest {
  const d = data as Partial<TrainingRequest> | null;
  return (
    typeof d === 'object' &&
    d !== null &&
    typeof d.id === 'number' &&
    typeof d.type === 'string' &&
    TRAINING_REQUEST_TYPES.includes(d.type) &&
    typeof d.params === 'object' &&
    d.params !== null
  );
}

export interface TrainingHost {
  /** The runner, once init has run. */
  readonly runner: JobRunner | null;
  /** Stops listening to other tabs (tests; a worker simply ends). */
  close(): void;
}

/** Serves the training protocol on `endpoint`. */
export function serveTraining(endpoint: HostEndpoint, options: TrainingHostOptions = {}): TrainingHost {
  const post = (message: TrainingWorkerMessage) => endpoint.postMessage(message);
  const postEvent = (event: TrainingEvent) => post({ kind: 'event', event });
  const inFlight = new Map<number, AbortController>();
  const hub = { url: options.hubUrl ?? HUB_URL, tokens: new Map<string, string>() };
  let runner: JobRunner | null = null;
  let broadcast: BroadcastLike | null = null;
  let initialising: Promise<{ runner: JobRunner; info: TrainingWorkerInfo }> | null = null;

  async function init(params: RequestParams<'init'>): Promise<{ runner: JobRunner; info: TrainingWorkerInfo }> {
    if (params.hubEndpoint) hub.url = params.hubEndpoint.replace(/\/$/, '');
    const store = await (options.openStore ?? (() => openJobStore()))();
    const acquire = options.acquireGpu ?? (() => acquireDefaultGpu({ kernels: params.kernels ?? 'auto' }));
    let gpu: Gpu | null = null;
    let gpuError: TrainingWorkerInfo['gpuError'] = null;
    try {
      gpu = await acquire();
    } catch (e) {
      // No GPU: files still validate; jobs wait, paused, until a device opens.
      gpuError = serializeError(e);
    }
    // The device opened here is the runner's first; later ones (after a loss) come from acquire.
    let first: Gpu | null = gpu;
    const created = new JobRunner({
      tuningStore: idbTuningStore(),
      ...options.runner,
      store,
      acquireGpu: () => {
        const f = first;
        first = null;
        return f ? Promise.resolve(f) : acquire();
      },
      openModel: (options.openModel ?? ((s: JobStore) => storeModelResolver(s.blobs, { hubUrl: hub.url, accessToken: (repo) => hub.tokens.get(repo) ?? null })))(store),
      autoStart: params.autoStart,
      enabled: false,
      onUpdate: (u) => {
        if (u.type === 'job') postEvent({ type: 'status', job: u.job });
        else postEvent(u);
        // Other tabs show this tab's jobs live; a job queued here may be for another tab to run.
        if (u.type !== 'device-lost') broadcast?.postMessage(u);
      },
    });
    runner = created;
    broadcast = options.broadcast === undefined ? defaultBroadcast() : options.broadcast;
    if (broadcast) {
      broadcast.onmessage = (ev: MessageEvent) => {
        const u = ev.data as RunnerUpdate;
        if (u.type === 'job') {
          postEvent({ type: 'status', job: u.job });
          if (u.job.status === 'queued') created.poke();
        } else if (u.type === 'metrics' || u.type === 'log') {
          postEvent(u);
        }
      };
    }
    const locks = options.locks === undefined ? defaultLocks() : options.locks;
    // Only one tab runs jobs: another tab's recovery would take over jobs this one is running.
    const primary = locks
      ? await takeRunnerLock(locks, () => {
          void created.enable().catch((e: unknown) => postEvent({ type: 'error', requestId: null, error: serializeError(e) }));
        })
      : true;
    const recovered = primary ? await created.enable() : [];
    const info: TrainingWorkerInfo = {
      gpu: gpu ? { ...gpu.adapter, hasF16: gpu.hasF16, hasTimestamps: gpu.hasTimestamps, hasSubgroups: gpu.hasSubgroups, kernels: gpu.kernels } : null,
      gpuError,
      storage: store.blobs.kind,
      recovered,
      runsJobs: primary,
    };
    return { runner: created, info };
  }

  async function handle(req: TrainingRequest): Promise<unknown> {
    if (req.type === 'init') {
      initialising ??= init(req.params);
      initialising.catch(() => {
        initialising = null;
      });
      return (await initialising).info;
    }
    if (req.type === 'abort') {
      const c = inFlight.get(req.params.requestId);
      c?.abort();
      return c !== undefined;
    }
    if (!initialising) throw new Error(`send init before ${req.type}`);
    const { runner: r } = await initialising;
    const controller = new AbortController();
    inFlight.set(req.id, controller);
    try {
      const handler = handlers[req.type] as (runner: JobRunner, params: unknown, ctx: RequestContext) => Promise<unknown>;
      return await handler(r, req.params, { id: req.id, signal: controller.signal, post: postEvent, hub });
    } finally {
      inFlight.delete(req.id);
    }
  }

  endpoint.addEventListener('message', (ev: MessageEvent) => {
    const req: unknown = ev.data;
    if (!isRequest(req)) {
      postEvent({ type: 'error', requestId: null, error: { name: 'ProtocolError', message: `not a training request: ${JSON.stringify(req)?.slice(0, 200)}` } });
      return;
    }
    const fail = (e: unknown) => post({ kind: 'response', id: req.id, type: req.type, ok: false, error: serializeError(e) });
    handle(req).then((result) => {
      try {
        post({ kind: 'response', id: req.id, type: req.type, ok: true, result } as TrainingWorkerMessage);
      } catch (e) {
        fail(e); // a result structured clone refused (a bug, but the page must still hear back)
      }
    }, fail);
  });
  endpoint.start?.();
  return {
    get runner() {
      return runner;
    },
    close() {
      broadcast?.close();
      broadcast = null;
    },
  };
}
