/**
 * The one message protocol between the page and the training worker (which owns the
 * GPUDevice). Plain data only (structured clone: records, Blobs, typed arrays), never a GPU
 * object.
 *
 * Page -> worker: `TrainingRequest` = { id, type, params }, one per call; `id` is the client's
 * request id. Worker -> page: a `response` for every request (ok + result, or error), and
 * `event`s: job status changes, metrics rows and log lines for every job (whoever asked), and,
 * tagged with the request id, the tokens of a generation and the download progress of a model.
 * Requests are typed by `TrainingRequests`: params and result per request type.
 */
import type { DatasetReport } from '../data/datasetTypes';
import type { PeftExport } from '../formats/peft';
import type { AdapterSummary, KernelChoice, KernelPlan } from '../gpu';
import type { FileRecord, JobDetails, JobEvent, JobRecord, ModelSource } from '../jobs/job';
import type { DownloadProgress } from '../jobs/models';
import type { CachedModel, RemovedModel } from '../jobs/modelCache';
import type { CuratedModelView, HubRepoView } from '../jobs/modelCatalog';
import type { ExamplesPreview } from '../data/examplePreview';
import type { GenerateOutput, GenerateParams, TokenDelta } from '../generation/generationText';
import type { ModelInfo } from '../jobs/modelPool';
import type { HyperparametersPreview } from '../jobs/previews';
import type { CreateJobInput } from '../jobs/queue';
import type { WeightDtype } from '../model/weights';
import type { HyperparameterRequest } from '../train/hyperparameters';
import type { StepMetrics } from '../train/metrics';

export type { AdapterRef } from '../jobs/adapters';
export type { KernelChoice, KernelPlan };
export type { CreateJobInput, GenerateOutput, GenerateParams, HyperparametersPreview, ModelInfo, TokenDelta };
export type { JobMemoryCheck, MemoryLimits, MemoryProblem } from '../jobs/jobMemory';
export type { FileRecord, JobDetails, JobEvent, JobRecord, JobStatus, ModelSource } from '../jobs/job';
export type { DownloadProgress } from '../jobs/models';
export type { CachedModel, CachedModelFile, RemovedModel } from '../jobs/modelCache';
export type { CuratedModelView, HubRepoView } from '../jobs/modelCatalog';
export type { HubRepoFile } from '../jobs/hubRepo';
export type { ExamplesPreview, ExampleTokensPreview, PreviewToken } from '../data/examplePreview';

/** What the worker found at start-up. */
export interface TrainingWorkerInfo {
  /** The GPU the worker opened, or null when none could be (see gpuError). */
  gpu: (AdapterSummary & { hasF16: boolean; hasTimestamps: boolean; hasSubgroups: boolean; kernels: KernelPlan }) | null;
  /** Why there is no GPU (jobs then wait, paused with this reason; files still validate). */
  gpuError: { name: string; message: string } | null;
  /** Where blobs live. */
  storage: 'opfs' | 'indexeddb' | 'memory';
  /** Jobs put back in the queue (or back to validation) because the last page closed mid-way. */
  recovered: string[];
  /**
   * False when another Whittle tab already runs jobs: this one records and shows them (their
   * status, metrics and log arrive as events) and takes over when that tab closes.
   */
  runsJobs: boolean;
}

type NoParams = Record<string, never>;

/** Every request: its params and the result its response carries. */
export interface TrainingRequests {
  /** Opens the store and the GPU and recovers interrupted jobs. Send first (others wait for it). */
  /**
   * `hubEndpoint`: a Hugging Face mirror in the Hub's layout (what HF_ENDPOINT is to the Python
   * tools, e.g. for users who cannot reach huggingface.co); default the Hub.
   */
  /** `kernels`: the kernel plan of the worker's GPU (default 'auto'; see KernelPlan). */
  init: { params: { autoStart?: boolean; hubEndpoint?: string | null; kernels?: KernelChoice }; result: TrainingWorkerInfo };
  /** config.json summary; a Hub model is downloaded (progress events) and cached. */
  'inspect-model': { params: { source: ModelSource }; result: ModelInfo };
  /** The curated base models, each with a default job's memory on this device (nothing downloaded). */
  'curated-models': { params: NoParams; result: CuratedModelView[] };
  /**
   * A Hub repo's model files (sizes, revision's commit, shards) through the Hub API, and a default
   * job's memory from its config.json. `accessToken` (gated repos) stays in the worker's memory
   * for this repo's downloads; it is never stored.
   */
  'resolve-hub-repo': { params: { repo: string; revision?: string; accessToken?: string | null }; result: HubRepoView };
  /** Copies a picked folder into the store; jobs on it then survive a reload. */
  'import-local-model': { params: { name: string; files: { name: string; blob: Blob }[] }; result: ModelInfo };
  /** The validation report of a JSONL file, token statistics included when a model is given. */
  'validate-file': { params: { file: Blob; model?: ModelSource; maxSeqLen?: number; epochs?: number | 'auto'; tooFewIsError?: boolean }; result: DatasetReport };
  /** Validates and stores a file; its id goes into create-job. */
  'upload-file': { params: { name: string; file: Blob; model?: ModelSource }; result: { file: FileRecord; report: DatasetReport } };
  'list-files': { params: NoParams; result: FileRecord[] };
  'delete-file': { params: { fileId: string }; result: null };
  /** Creates a job (validating_files); it queues and starts on its own (see init.autoStart). */
  'create-job': { params: CreateJobInput; result: JobRecord };
  /** Runs a queued job next. */
  start: { params: { jobId: string }; result: JobRecord };
  /** Resolves once the job is paused (a running job finishes its step and checkpoints). */
  pause: { params: { jobId: string }; result: JobRecord };
  resume: { params: { jobId: string }; result: JobRecord };
  cancel: { params: { jobId: string }; result: JobRecord };
  'delete-job': { params: { jobId: string }; result: null };
  /** Newest first. */
  'list-jobs': { params: NoParams; result: JobRecord[] };
  /** The record, its events (after `afterSeq` when given) and every metrics row. */
  'get-job': { params: { jobId: string; afterSeq?: number }; result: JobDetails };
  /**
   * (Re)computes a succeeded job's validation insights in the background; the record (marked
   * computing) comes back at once, progress and the result as status events.
   */
  'compute-insights': { params: { jobId: string }; result: JobRecord };
  /** PEFT files of the final adapter, or of a checkpoint. */
  'get-adapter': { params: { jobId: string; checkpoint?: string }; result: PeftExport };
  /**
   * What the auto rules would choose (job form preview; the auto seed shows as 0), and `memory`:
   * the job's memory estimate for `dtype` (default auto) against the device's limits.
   */
  'preview-hyperparameters': { params: { model: ModelSource; examples: number; requested: HyperparameterRequest; longestExample?: number; dtype?: WeightDtype | 'auto' }; result: HyperparametersPreview };
  /**
   * One playground pane; tokens stream as `token` events with this request's id. `engine:
   * 'onnxruntime'` runs it on onnxruntime-web (the adapter merged, exported to ONNX, the session
   * cached per model and adapter in the worker) instead of our engine.
   */
  generate: { params: GenerateParams; result: GenerateOutput };
  /** Stops a request in flight (a generation). Result: whether it was still running. */
  abort: { params: { requestId: number }; result: boolean };
  /**
   * The first `count` (default 3, at most 20) examples of a file rendered with the model's chat
   * template and tokenized, each token flagged trained or not, cut at maxSeqLen (default: the
   * auto value validate-file uses).
   */
  'preview-examples': { params: { file: Blob; model: ModelSource; count?: number; maxSeqLen?: number }; result: ExamplesPreview };
  /** Cached models (files, sizes, jobs on them); `embedded`, the app's model, is listed first. */
  'list-models': { params: { embedded?: ModelSource | null }; result: CachedModel[] };
  /** Deletes a cached model's files (key from list-models); refused while an unfinished job uses it. */
  'delete-model': { params: { key: string | null }; result: RemovedModel };
}

export type TrainingRequestType = keyof TrainingRequests;
export type RequestParams<K extends TrainingRequestType> = TrainingRequests[K]['params'];
export type RequestResult<K extends TrainingRequestType> = TrainingRequests[K]['result'];

export type TrainingRequest = { [K in TrainingRequestType]: { id: number; type: K; params: RequestParams<K> } }[TrainingRequestType];

/** An Error as data: name (HyperparameterError, JobTransitionError, GpuDeviceLostError, ...) and message. */
export interface SerializedError {
  name: string;
  message: string;
  /** A field the error names (HyperparameterError.field, ModelConfigError.field, ...). */
  field?: string;
}

export type TrainingResponse =
  | { [K in TrainingRequestType]: { kind: 'response'; id: number; type: K; ok: true; result: RequestResult<K> } }[TrainingRequestType]
  | { kind: 'response'; id: number; type: TrainingRequestType; ok: false; error: SerializedError };

export type TrainingEvent =
  /** A job record changed (status, step, checkpoints, ...): the whole record. */
  | { type: 'status'; job: JobRecord }
  /** New metrics rows of a running job. */
  | { type: 'metrics'; jobId: string; rows: StepMetrics[] }
  /** New lines of a job's events log. */
  | { type: 'log'; jobId: string; events: JobEvent[] }
  /** A generated token of request `requestId`. */
  | { type: 'token'; requestId: number; delta: TokenDelta }
  /** Model download progress of request `requestId`. */
  | { type: 'download'; requestId: number; progress: DownloadProgress }
  /** How far a `validate-file` request has read its file (sent when the whole percentage grows). */
  | { type: 'validate-progress'; requestId: number; bytesRead: number; totalBytes: number }
  /** The GPU device was lost; a running job is paused, the next request opens a new device. */
  | { type: 'device-lost'; message: string }
  /** A failure outside any request (requestId null), e.g. a message the worker could not read. */
  | { type: 'error'; requestId: number | null; error: SerializedError };

export type TrainingEventType = TrainingEvent['type'];

export type TrainingWorkerMessage = TrainingResponse | { kind: 'event'; event: TrainingEvent };

export const TRAINING_REQUEST_TYPES: readonly TrainingRequestType[] = [
  'init',
  'inspect-model',
  'curated-models',
  'resolve-hub-repo',
  'import-local-model',
  'validate-file',
  'upload-file',
  'list-files',
  'delete-file',
  'create-job',
  'start',
  'pause',
  'resume',
  'cancel',
  'delete-job',
  'list-jobs',
  'get-job',
  'get-adapter',
  'compute-insights',
  'preview-hyperparameters',
  'generate',
  'abort',
  'preview-examples',
  'list-models',
  'delete-model',
];

export function serializeError(e: unknown): SerializedError {
  if (e instanceof Error) {
    const field = (e as { field?: unknown }).field;
    return typeof field === 'string' ? { name: e.name, message: e.message, field } : { name: e.name, message: e.message };
  }
  return { name: 'Error', message: String(e) };
}

/** A worker-side error rebuilt on the page, with the worker's error name. */
export class TrainingWorkerError extends Error {
  readonly field?: string;
  constructor(
    readonly remote: SerializedError,
    readonly requestType?: TrainingRequestType,
  ) {
    super(remote.message);
    this.name = remote.name;
    if (remote.field !== undefined) this.field = remote.field;
  }
}
