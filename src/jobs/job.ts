/**
 * A fine-tuning job as the dashboard sees it: the record (model, files, hyperparameters, status,
 * checkpoints), its events log and its metrics rows, and the state machine its status follows.
 *
 *   validating_files -> queued -> running -> succeeded | failed | cancelled
 *                                  ^   |
 *                          queued <+   +-> paused -> queued (resume)
 *
 * `paused` is both a user's pause and a lost GPU device; `running -> queued` is a job that was
 * running when the tab closed, put back in line to resume from its last checkpoint.
 * Plain data only: records cross the worker boundary with structured clone.
 */
import type { DatasetFormat } from '../data/datasetTypes';
import type { ModelConfig } from '../model/config';
import type { WeightDtype } from '../model/weights';
import type { HyperparameterRequest, Hyperparameters } from '../train/hyperparameters';
import type { StepMetrics } from '../train/metrics';
import type { ValidationInsightsState } from './validationInsights';

export type JobStatus = 'validating_files' | 'queued' | 'running' | 'paused' | 'succeeded' | 'failed' | 'cancelled';

export const JOB_STATUSES: readonly JobStatus[] = ['validating_files', 'queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled'];

/** Where each status may go next. Terminal statuses go nowhere. */
export const JOB_TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  validating_files: ['queued', 'failed', 'cancelled'],
  queued: ['running', 'paused', 'failed', 'cancelled'],
  // -> queued: interrupted (tab closed) and waiting to resume from its last checkpoint.
  running: ['succeeded', 'failed', 'cancelled', 'paused', 'queued'],
  paused: ['queued', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
};

export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return JOB_TRANSITIONS[from].includes(to);
}

export class JobTransitionError extends Error {
  override name = 'JobTransitionError';
  constructor(
    readonly jobId: string,
    readonly from: JobStatus,
    readonly to: JobStatus,
  ) {
    super(`job ${jobId} cannot go from ${from} to ${to}${isTerminal(from) ? ` (${from} is final)` : ''}`);
  }
}

/** How a base model is found again (after a reload too). */
export type ModelSource =
  /** The compact model the app ships, served next to the page. */
  | { kind: 'embedded'; name: string; url: string; files: string[] }
  /** A Hugging Face repo, downloaded once into the blob store. `files` lists what to fetch. */
  | { kind: 'hub'; name: string; revision: string; files: string[] }
  /** A folder the user picked, copied into the blob store under `modelKey`. */
  | { kind: 'local'; name: string; modelKey: string; files: string[] };

/** What the job page shows about a model, from its config.json. */
export interface ModelSummary {
  /** config.json architectures[0] when present, else model_type. */
  architecture: string;
  modelType: ModelConfig['modelType'];
  family: ModelConfig['family'];
  parameters: number;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  vocabSize: number;
  maxPositions: number;
  /** torch_dtype of the checkpoint files. */
  torchDtype: string | null;
}

export interface BaseModelRef {
  source: ModelSource;
  summary: ModelSummary;
}

export type FilePurpose = 'fine-tune' | 'adapter';

/** An uploaded file (training or validation JSONL); its bytes are a blob of the store. */
export interface FileRecord {
  /** `file-...` */
  id: string;
  name: string;
  bytes: number;
  createdAt: number;
  purpose: FilePurpose;
  /** From the validation report, when the file was validated on upload. */
  format: DatasetFormat | null;
  examples: number | null;
}

export interface JobFileRef {
  id: string;
  name: string;
  bytes: number;
}

export interface CheckpointInfo {
  /** Name in the checkpoint store (checkpointName: sorts by step). */
  name: string;
  /** Epochs completed when it was taken (1-based for epoch ends, 0 before the first ends). */
  epoch: number;
  step: number;
  createdAt: number;
  bytes: number;
  /** Train loss of its step, for the checkpoint list. */
  trainLoss: number | null;
}

/** The trainer's levels (train/trainer.ts EventLevel). */
export type JobEventLevel = 'info' | 'warning' | 'error';

export interface JobEvent {
  /** Store-assigned, increasing within a job: the order of the log. */
  seq: number;
  jobId: string;
  time: number;
  level: JobEventLevel;
  message: string;
  /** Optimizer step the event concerns, when any. */
  step: number | null;
  /** Machine-readable kind, e.g. 'status', 'checkpoint', 'device_lost'. */
  kind: string;
}

export type NewJobEvent = Omit<JobEvent, 'seq' | 'jobId' | 'time' | 'step' | 'kind'> & Partial<Pick<JobEvent, 'time' | 'step' | 'kind'>>;

export interface JobError {
  message: string;
  /** The error's name (e.g. HyperparameterError, GpuOutOfMemoryError). */
  code: string;
}

export interface JobRecord {
  /** `ftjob-...` */
  id: string;
  status: JobStatus;
  /** Why the job is paused, queued again or failed, in words (shown under the status). */
  statusMessage: string | null;
  createdAt: number;
  updatedAt: number;
  /** First time it ran. */
  startedAt: number | null;
  /** When it reached a terminal status. */
  finishedAt: number | null;
  baseModel: BaseModelRef;
  trainingFile: JobFileRef;
  validationFile: JobFileRef | null;
  hyperparameters: {
    requested: HyperparameterRequest;
    /** Set once the files are validated (the rules need the example count). */
    resolved: Hyperparameters | null;
  };
  /** Weight dtype asked for; 'auto' is f16 where the device has shader-f16. */
  dtype: WeightDtype | 'auto';
  /** The dtype the first run chose; resumes keep it so a resumed job computes what it did before. */
  weightDtype: WeightDtype | null;
  /**
   * Whether the first run recomputes each layer's activations in the backward ('always') or keeps
   * them ('never'), resolved from the memory estimate; resumes keep it. Absent before the first run.
   */
  recompute?: 'always' | 'never';
  /** How many layers the first run keeps the activations of (the others are recomputed); resumes keep it. */
  keptLayers?: number;
  /**
   * The kernel plan the job runs, in words ("gpu plan (tuning, 6 tuned matmul shapes)"): the
   * family and whether its launches came from a tuning pass, the tuning cache or the rules.
   * The plan itself is in the checkpoints. Absent before the first run.
   */
  kernelPlan?: string;
  suffix: string | null;
  /** The user allowed a training file of fewer than 10 examples (absent: not allowed). */
  allowSmallTrainingFile?: boolean;
  /**
   * A checkpoint every this many optimizer steps, besides the one at each epoch's end (long
   * epochs lose less to a closed tab); null or absent: at epoch ends only.
   */
  checkpointEvery?: number | null;
  /** `ft:<model>:<suffix>:<id>` once succeeded (OpenAI's fine_tuned_model). */
  fineTunedModel: string | null;
  /** Trained (loss-counted) tokens so far. */
  trainedTokens: number;
  /** Optimizer steps done / planned. */
  step: number;
  totalSteps: number | null;
  error: JobError | null;
  checkpoints: CheckpointInfo[];
  /** Blob key of the final PEFT adapter (adapter_model.safetensors) once succeeded. */
  adapterKey: string | null;
  /** How many times the job was resumed (after a pause, a lost device or a reload). */
  resumes: number;
  /** The training file's first system message (what the playground asks with); absent on older jobs. */
  trainingSystemMessage?: string | null;
  /** Highest/lowest-loss validation examples, computed once after training (absent: never computed). */
  validationInsights?: ValidationInsightsState | null;
}

/** A job with its log and metrics, for the job page. */
export interface JobDetails {
  job: JobRecord;
  events: JobEvent[];
  metrics: StepMetrics[];
}

function randomId(prefix: string): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return `${prefix}-${s}`;
}

export const newJobId = (): string => randomId('ftjob');
export const newFileId = (): string => randomId('file');

const SUFFIX = /^[A-Za-z0-9_-]{1,64}$/;

export function checkCheckpointEvery(n: number | null | undefined): number | null {
  if (n === undefined || n === null) return null;
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`checkpointEvery must be a whole number of steps >= 1, got ${n}`);
  return n;
}

/** OpenAI allows up to 64 characters of letters, digits, - and _ (we keep the store-safe subset). */
export function checkSuffix(suffix: string | null | undefined): string | null {
  if (suffix === undefined || suffix === null || suffix === '') return null;
  if (!SUFFIX.test(suffix)) throw new RangeError(`suffix ${JSON.stringify(suffix)} must be 1-64 characters of A-Z a-z 0-9 - _`);
  return suffix;
}

export interface NewJobInput {
  id?: string;
  baseModel: BaseModelRef;
  trainingFile: JobFileRef;
  validationFile?: JobFileRef | null;
  hyperparameters?: HyperparameterRequest;
  dtype?: WeightDtype | 'auto';
  suffix?: string | null;
  /** Accept a training file of fewer than 10 examples. */
  allowSmall?: boolean;
  checkpointEvery?: number | null;
  now?: number;
}

/** A fresh record in `validating_files`. */
export function createJobRecord(input: NewJobInput): JobRecord {
  const now = input.now ?? Date.now();
  return {
    id: input.id ?? newJobId(),
    status: 'validating_files',
    statusMessage: null,
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    finishedAt: null,
    baseModel: input.baseModel,
    trainingFile: input.trainingFile,
    validationFile: input.validationFile ?? null,
    hyperparameters: { requested: { ...(input.hyperparameters ?? {}) }, resolved: null },
    dtype: input.dtype ?? 'auto',
    weightDtype: null,
    suffix: checkSuffix(input.suffix),
    checkpointEvery: checkCheckpointEvery(input.checkpointEvery),
    fineTunedModel: null,
    trainedTokens: 0,
    step: 0,
    totalSteps: null,
    error: null,
    checkpoints: [],
    adapterKey: null,
    resumes: 0,
    ...(input.allowSmall === true ? { allowSmallTrainingFile: true } : {}),
  };
}

/**
 * The record after a status change (a new object; the input is untouched). Throws
 * JobTransitionError for a move the state machine does not allow. `patch` may set any other
 * field in the same step (error, statusMessage, ...); statusMessage is cleared unless given.
 */
export function transition(job: JobRecord, to: JobStatus, patch: Partial<Omit<JobRecord, 'id' | 'status'>> = {}, now = Date.now()): JobRecord {
  if (!canTransition(job.status, to)) throw new JobTransitionError(job.id, job.status, to);
  const next: JobRecord = { ...job, statusMessage: null, ...patch, status: to, updatedAt: now };
  if (to === 'running' && next.startedAt === null) next.startedAt = now;
  if (isTerminal(to)) next.finishedAt = now;
  return next;
}

/** OpenAI's fine_tuned_model name: `ft:<base>:<suffix>:<job id>` (suffix part empty when none). */
export function fineTunedModelName(job: Pick<JobRecord, 'id' | 'suffix' | 'baseModel'>): string {
  return `ft:${job.baseModel.source.name}:${job.suffix ?? ''}:${job.id}`;
}

/** The summary a job page shows for a parsed config.json. */
export function summarizeModel(config: ModelConfig, configJson: unknown, parameters: number): ModelSummary {
  const archs = (configJson as { architectures?: unknown } | null)?.architectures;
  const architecture = Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : config.modelType;
  return {
    architecture,
    modelType: config.modelType,
    family: config.family,
    parameters,
    layers: config.layers,
    hidden: config.hidden,
    heads: config.heads,
    kvHeads: config.kvHeads,
    vocabSize: config.vocabSize,
    maxPositions: config.maxPositions,
    torchDtype: config.torchDtype,
  };
}
