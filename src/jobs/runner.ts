/**
 * The engine side of the jobs page: takes queued jobs one at a time, loads the model and the
 * data, runs the Trainer, and writes status, events, metrics and checkpoints to the JobStore as
 * they happen, so that nothing is lost when the tab closes or the GPU goes away:
 *
 * - `recover()` at startup puts jobs that were `running` (the tab closed) back in the queue;
 *   they resume from their last checkpoint, or from step 0 when they had none.
 * - A lost device (GpuDeviceLostError) pauses the job with a message; `resume()` continues it
 *   from the last checkpoint on a new device.
 * - Pause and cancel stop the trainer between optimizer steps (it saves a checkpoint there).
 *
 * It also serves the playground (generation with the base model, a job's adapter, any
 * checkpoint, or an imported PEFT adapter) and file validation. Training and the playground use
 * separate model instances: a CausalLM's scratch buffers are not meant for two users at once.
 */
import { ChatTemplate } from '../data/chatTemplate';
import { createTokenCounter, textUsesBos, tokenizeExamples } from '../data/examples';
import { previewExamples, type ExamplesPreview } from '../data/examplePreview';
import type { ChatExample, ChatMessage, DatasetReport } from '../data/formats';
import { validateJsonl, type DatasetReportOptions } from '../data/datasetReport';
import { TextTokenizer } from '../data/tokenizer';
import { loadHfModelDir, type HfModelFiles, type ModelDir } from '../formats/hfModelDir';
import { exportPeftAdapter, importPeftAdapter, type PeftAdapterFiles, type PeftExport } from '../formats/peft';
import { blobSource } from '../formats/safetensors';
import { GpuDeviceLostError, type Gpu } from '../gpu';
import { countParameters, parseModelConfig, type ModelConfig } from '../model/config';
import { generate } from '../model/generate';
import { loadCausalLM } from '../model/load';
import { LoraAdapter } from '../model/lora';
import type { CausalLM } from '../model/transformer';
import type { WeightDtype } from '../model/weights';
import { loadLatestCheckpoint, parseCheckpoint, type CheckpointStore } from '../train/checkpoint';
import { AUTO_MAX_SEQ_LEN, resolveHyperparameters, type HyperparameterRequest, type Hyperparameters } from '../train/hyperparameters';
import type { StepMetrics } from '../train/metrics';
import { Trainer, type TrainerOptions, type TrainingEvent } from '../train/trainer';
import {
  createJobRecord,
  fineTunedModelName,
  isTerminal,
  JobTransitionError,
  newFileId,
  summarizeModel,
  transition,
  type CheckpointInfo,
  type FileRecord,
  type JobDetails,
  type JobEvent,
  type JobRecord,
  type ModelSource,
  type ModelSummary,
  type NewJobEvent,
} from './job';
import { memoryLimits, navigatorDeviceMemory, resolveWithMemory, type JobMemoryCheck, type MemoryLimits } from './jobMemory';
import { importLocalModel, sourceKey, type DownloadProgress, type OpenModelDir } from './models';
import { listCachedModels, removeCachedModel, type CachedModel, type RemovedModel } from './modelCache';
import { generateTextWithOrt, OrtSessionCache, peftAdapterKey, type LoadOrt } from './onnxGeneration';
import { adapterBlobKey, adapterConfigBlobKey, blobBytes, type JobStore } from './store';
import { encodePrompt, generateOutput, generationStopIds, samplingOptions, TextStreamer } from './generationText';
import { runValidationInsightsStep, type ValidationInsightsState } from './validationInsights';

/** What the runner reports as it goes (the worker forwards these to the page). */
export type RunnerUpdate =
  | { type: 'job'; job: JobRecord }
  | { type: 'metrics'; jobId: string; rows: StepMetrics[] }
  | { type: 'log'; jobId: string; events: JobEvent[] }
  | { type: 'device-lost'; message: string };

export interface JobRunnerOptions {
  store: JobStore;
  /** Opens a GPU device; called again after a device is lost. */
  acquireGpu: () => Promise<Gpu>;
  openModel: OpenModelDir;
  /** Run queued jobs as soon as the GPU is free (default true); otherwise only on start(). */
  autoStart?: boolean;
  /**
   * Default true. A disabled runner validates files and records jobs but runs none (another tab
   * owns the GPU work); enable() makes it the one that runs them.
   */
  enabled?: boolean;
  /** Checkpoints kept per job (default 3). */
  keepCheckpoints?: number;
  /** Batching choices passed to the trainer. */
  batching?: TrainerOptions['batching'];
  onUpdate?: (update: RunnerUpdate) => void;
  /** onnxruntime-web for `engine: 'onnxruntime'` generations (default: the browser WASM build, src/jobs/ortWeb.ts). */
  loadOrt?: LoadOrt;
  /** Wall clock for records (Date.now by default). */
  now?: () => number;
}

export interface CreateJobInput {
  model: ModelSource;
  trainingFileId: string;
  validationFileId?: string | null;
  hyperparameters?: HyperparameterRequest;
  suffix?: string | null;
  dtype?: WeightDtype | 'auto';
  /** A checkpoint every this many steps as well as at epoch ends (JobRecord.checkpointEvery). */
  checkpointEvery?: number | null;
}

/** Which weights a playground pane generates with. */
export type AdapterRef =
  | { kind: 'base' }
  /** The job's final adapter; for a job still training or paused, its newest checkpoint. */
  | { kind: 'job'; jobId: string }
  | { kind: 'checkpoint'; jobId: string; name: string }
  /** An imported PEFT adapter: adapter_config.json (parsed) and adapter_model.safetensors. */
  | { kind: 'peft'; config: unknown; weights: Blob };

export interface GenerateParams {
  model: ModelSource;
  dtype?: WeightDtype | 'auto';
  adapter: AdapterRef;
  /** A conversation, rendered with the model's chat template and a generation prompt... */
  messages?: ChatMessage[];
  /** ...or raw text (BOS added as for training text). */
  prompt?: string;
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  /** Generation stops when the text contains one of these (which is cut off). */
  stop?: string[];
  /**
   * 'whittle' (default): our WebGPU engine, adapter unmerged. 'onnxruntime': the adapter merged
   * and exported to ONNX, run by onnxruntime-web's WASM backend (src/jobs/onnxGeneration.ts).
   */
  engine?: 'whittle' | 'onnxruntime';
}

export interface TokenDelta {
  /** 0-based index of the generated token. */
  index: number;
  tokenId: number;
  /** Text added by this token (may be empty while a multi-byte character is incomplete). */
  text: string;
}

export interface GenerateOutput {
  text: string;
  tokens: number[];
  promptTokens: number;
  finish: 'eos' | 'length' | 'stop' | 'aborted';
  prefillMs: number;
  decodeMs: number;
  tokensPerSecond: number;
}

/** The job form's preview: resolved values and whether the job fits the GPU. */
export interface HyperparametersPreview extends Hyperparameters {
  /** The memory estimate at these values against the device's limits (absent from older workers). */
  memory?: JobMemoryCheck;
}

export interface ModelInfo {
  source: ModelSource;
  summary: ModelSummary;
  hasChatTemplate: boolean;
}

export class JobRunnerError extends Error {
  override name = 'JobRunnerError';
}

const PAUSE = 'pause';
const CANCEL = 'cancel';

/** config.json, tokenizer and chat template of a model: everything but the weights. */
interface TextModel {
  files: HfModelFiles;
  config: ModelConfig;
  summary: ModelSummary;
  tokenizer: TextTokenizer;
  template: ChatTemplate | null;
}

async function readTextModel(dir: ModelDir): Promise<TextModel> {
  const files = await loadHfModelDir(dir);
  const config = parseModelConfig(files.config);
  if (files.tokenizerJson === null) throw new JobRunnerError('the model folder has no tokenizer.json');
  const tokenizer = TextTokenizer.fromJson(files.tokenizerJson, files.tokenizerConfig, files.chatTemplate === null ? {} : { chatTemplate: files.chatTemplate });
  const template = tokenizer.chatTemplate === null ? null : ChatTemplate.fromTokenizer(tokenizer);
  return { files, config, summary: summarizeModel(config, files.config, countParameters(config)), tokenizer, template };
}

async function closeDir(dir: ModelDir): Promise<void> {
  await (dir as ModelDir & { close?: () => Promise<void> }).close?.();
}

/** Token id for padded positions: the tokenizer's pad, else EOS, else 0 (masked anyway). */
function padTokenId(tm: TextModel): number {
  const id = tm.tokenizer.pad?.id ?? tm.config.padTokenId ?? tm.tokenizer.eos?.id ?? tm.config.eosTokenIds[0] ?? 0;
  return id < tm.config.vocabSize ? id : 0;
}

function errorName(e: unknown): string {
  return e instanceof Error ? e.name : 'Error';
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A loaded model instance; training leases one alone, playground generations share one. */
interface PooledModel {
  key: string;
  gpu: Gpu;
  model: CausalLM;
  text: TextModel;
  training: boolean;
  users: number;
  doomed: boolean;
}

/**
 * Model instances on the GPU. Loading a model, or starting a job, first frees the idle ones, so
 * GPU memory holds what is in use plus, at most, the last model used.
 */
class ModelPool {
  private models: PooledModel[] = [];
  private lock: Promise<unknown> = Promise.resolve();

  lease(gpu: Gpu, key: string, training: boolean, load: () => Promise<{ model: CausalLM; text: TextModel }>): Promise<PooledModel> {
    // Leases are taken one at a time so that two panes asking for one model load it once.
    const next = this.lock.then(async () => {
      const usable = this.models.find((m) => m.gpu === gpu && m.key === key && !m.doomed && !m.training && (training ? m.users === 0 : true));
      // A job needs all the memory it can get, and loading needs room: idle models go first.
      if (training || !usable) for (const m of this.models.filter((x) => x.users === 0 && x !== usable)) this.destroy(m);
      if (usable) {
        usable.users++;
        usable.training = training;
        return usable;
      }
      const loaded = await load();
      const pooled: PooledModel = { key, gpu, ...loaded, training, users: 1, doomed: false };
      this.models.push(pooled);
      return pooled;
    });
    this.lock = next.catch(() => {});
    return next;
  }

  release(m: PooledModel): void {
    m.users--;
    if (m.users > 0) return;
    m.training = false;
    const twin = this.models.some((x) => x !== m && x.key === m.key && x.gpu === m.gpu && !x.doomed);
    if (m.doomed || twin) this.destroy(m);
  }

  /** The device is gone: nothing on it can be used again. */
  dropGpu(gpu: Gpu): void {
    for (const m of this.models.filter((x) => x.gpu === gpu)) {
      if (m.users === 0) this.destroy(m);
      else m.doomed = true;
    }
  }

  private destroy(m: PooledModel): void {
    this.models = this.models.filter((x) => x !== m);
    m.model.destroy();
  }
}

interface ActiveRun {
  id: string;
  controller: AbortController;
  done: Promise<void>;
}

export class JobRunner {
  readonly store: JobStore;
  private readonly options: JobRunnerOptions;
  private readonly now: () => number;
  private readonly pool = new ModelPool();
  private readonly textModels = new Map<string, Promise<TextModel>>();
  /** On-demand validation-insights computations in progress, by job id. */
  private readonly insightsRuns = new Map<string, { done: Promise<void>; controller: AbortController }>();
  /** ONNX Runtime sessions of the playground's ORT panes, by model and adapter. */
  private readonly ortSessions = new OrtSessionCache();
  private gpuPromise: Promise<Gpu> | null = null;
  private active: ActiveRun | null = null;
  private loop: Promise<void> | null = null;
  private wake = false;
  private readonly startRequested: string[] = [];
  private readonly background = new Set<Promise<unknown>>();
  private writes: Promise<void> = Promise.resolve();
  private writeError: unknown = null;
  private enabled: boolean;

  constructor(options: JobRunnerOptions) {
    this.options = options;
    this.store = options.store;
    this.now = options.now ?? (() => Date.now());
    this.enabled = options.enabled ?? true;
  }

  /** Makes a disabled runner the one that runs jobs: recovers interrupted ones and starts. */
  enable(): Promise<string[]> {
    this.enabled = true;
    return this.recover();
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  /** Looks for queued jobs now (e.g. one another tab queued). */
  poke(): void {
    this.pump();
  }

  // ------------------------------------------------------------------------------- device

  /** The current device, opening one when there is none or the last one was lost. */
  async gpu(): Promise<Gpu> {
    if (this.gpuPromise) {
      const g = await this.gpuPromise.catch(() => null);
      if (g && !g.lostError) return g;
      this.gpuPromise = null;
    }
    const opening = this.options.acquireGpu().then((g) => {
      g.onLost((e) => this.deviceLost(g, e));
      return g;
    });
    this.gpuPromise = opening;
    opening.catch(() => {
      if (this.gpuPromise === opening) this.gpuPromise = null;
    });
    return opening;
  }

  private deviceLost(g: Gpu, e: GpuDeviceLostError): void {
    this.pool.dropGpu(g);
    void this.gpuPromise?.then((cur) => {
      if (cur === g) this.gpuPromise = null;
    });
    this.emit({ type: 'device-lost', message: e.message });
  }

  /** Whether `gpu` was lost (waiting briefly: device.lost settles a little after the failing call). */
  private async wasLost(gpu: Gpu | null, e: unknown): Promise<boolean> {
    if (e instanceof GpuDeviceLostError) return true;
    if (!gpu) return false;
    if (gpu.lostError) return true;
    const timeout = new Promise<false>((r) => setTimeout(() => r(false), 250));
    return Promise.race([gpu.device.lost.then(() => true), timeout]);
  }

  // ------------------------------------------------------------------------------- plumbing

  private emit(update: RunnerUpdate): void {
    try {
      this.options.onUpdate?.(update);
    } catch (e) {
      console.error('JobRunner onUpdate failed', e);
    }
  }

  private async update(id: string, fn: (job: JobRecord) => JobRecord): Promise<JobRecord> {
    const job = await this.store.updateJob(id, fn);
    this.emit({ type: 'job', job });
    return job;
  }

  private async log(id: string, events: readonly NewJobEvent[]): Promise<void> {
    const stored = await this.store.appendEvents(
      id,
      events.map((e) => ({ ...e, time: e.time ?? this.now() })),
    );
    this.emit({ type: 'log', jobId: id, events: stored });
  }

  /** Store writes started from synchronous trainer callbacks, kept in order. */
  private enqueue(write: () => Promise<void>): void {
    this.writes = this.writes.then(write).catch((e: unknown) => {
      this.writeError ??= e;
    });
  }

  private async flush(): Promise<void> {
    await this.writes;
    const e = this.writeError;
    this.writeError = null;
    if (e) throw e;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.background.add(p);
    void p.finally(() => this.background.delete(p)).catch(() => {});
    return p;
  }

  /** Resolves when no job runs, none will start and no validation is pending. */
  async idle(): Promise<void> {
    while (this.loop || this.background.size > 0) {
      await Promise.allSettled([this.loop, ...this.background]);
    }
  }

  // ------------------------------------------------------------------------------- models

  private textModel(source: ModelSource, onProgress?: (p: DownloadProgress) => void): Promise<TextModel> {
    const key = sourceKey(source);
    let hit = this.textModels.get(key);
    if (!hit) {
      hit = (async () => {
        const dir = await this.options.openModel(source, onProgress);
        try {
          return await readTextModel(dir);
        } finally {
          await closeDir(dir);
        }
      })();
      this.textModels.set(key, hit);
      hit.catch(() => this.textModels.delete(key));
    }
    return hit;
  }

  /** config.json summary of a model (downloading a Hub model's files when needed). */
  async inspectModel(source: ModelSource, onProgress?: (p: DownloadProgress) => void): Promise<ModelInfo> {
    const tm = await this.textModel(source, onProgress);
    return { source, summary: tm.summary, hasChatTemplate: tm.template !== null };
  }

  /** Copies a picked folder into the store (so jobs on it survive a reload) and inspects it. */
  async importLocalModel(name: string, files: ReadonlyMap<string, Blob>): Promise<ModelInfo> {
    const source = await importLocalModel(this.store.blobs, name, files);
    return this.inspectModel(source);
  }

  private leaseModel(gpu: Gpu, source: ModelSource, dtype: WeightDtype, training: boolean): Promise<PooledModel> {
    return this.pool.lease(gpu, `${sourceKey(source)}|${dtype}`, training, async () => {
      const text = await this.textModel(source);
      const dir = await this.options.openModel(source);
      try {
        const { model } = await loadCausalLM(gpu, dir, { dtype });
        return { model, text };
      } finally {
        await closeDir(dir);
      }
    });
  }

  /**
   * The limits a job's memory is checked against and the weight dtype it would get: the open
   * device's (opened when needed), or WebGPU's defaults and f32 when none opens. `strict`: an
   * f16 request on a GPU without shader-f16 throws (the form explains it); else f16 is assumed.
   */
  private async memoryContext(wanted: WeightDtype | 'auto' | undefined, strict: boolean): Promise<{ limits: MemoryLimits; dtype: WeightDtype }> {
    const gpu = await this.gpu().catch(() => null);
    const limits = memoryLimits(gpu ? gpu.limits : null, navigatorDeviceMemory());
    if (!gpu || (!strict && wanted === 'f16')) return { limits, dtype: wanted === 'f16' ? 'f16' : 'f32' };
    return { limits, dtype: JobRunner.dtypeFor(gpu, wanted) };
  }

  /** The limits and weight dtype a new job on this device is checked against (auto dtype). */
  jobMemoryContext(): Promise<{ limits: MemoryLimits; dtype: WeightDtype }> {
    return this.memoryContext('auto', false);
  }

  private static dtypeFor(gpu: Gpu, wanted: WeightDtype | 'auto' | undefined): WeightDtype {
    if (wanted === 'f16' && !gpu.hasF16) throw new JobRunnerError('f16 weights need the shader-f16 feature, which this GPU lacks; use f32 or auto');
    return wanted === undefined || wanted === 'auto' ? (gpu.hasF16 ? 'f16' : 'f32') : wanted;
  }

  // ------------------------------------------------------------------------------- files

  private async fileBlob(fileId: string): Promise<Blob> {
    const blob = await this.store.readFile(fileId);
    if (!blob) throw new JobRunnerError(`file ${fileId} is not in the store (deleted, or browser storage cleared?)`);
    return blob;
  }

  /** The validation report of a JSONL file, with token statistics when a model is given. */
  async validateFile(file: Blob, options: { model?: ModelSource; maxSeqLen?: number; epochs?: number | 'auto' } = {}): Promise<DatasetReport> {
    const reportOptions: DatasetReportOptions = { maxSeqLen: options.maxSeqLen, epochs: options.epochs };
    if (options.model) {
      const tm = await this.textModel(options.model);
      reportOptions.countTokens = createTokenCounter(tm.tokenizer, tm.template);
      reportOptions.maxSeqLen ??= Math.min(tm.config.maxPositions, AUTO_MAX_SEQ_LEN);
    }
    return validateJsonl(file.stream(), { ...reportOptions, totalBytes: file.size });
  }

  /** Stores a JSONL file (validated, so its record carries format and example count). */
  async uploadFile(name: string, file: Blob, options: { model?: ModelSource } = {}): Promise<{ file: FileRecord; report: DatasetReport }> {
    const report = await this.validateFile(file, options);
    const record: FileRecord = { id: newFileId(), name, bytes: file.size, createdAt: this.now(), purpose: 'fine-tune', format: report.format, examples: report.examples };
    await this.store.putFile(record, file);
    return { file: record, report };
  }

  private async examples(fileId: string): Promise<ChatExample[]> {
    const blob = await this.fileBlob(fileId);
    const report = await validateJsonl(blob.stream(), { keepExamples: true, totalBytes: blob.size });
    if (!report.ok) throw new JobRunnerError(`file ${fileId} no longer validates (${report.errorCount} errors)`);
    return report.validExamples!.map((l) => l.example);
  }

  // ------------------------------------------------------------------------------- jobs

  /**
   * Creates a job in `validating_files` and validates its files in the background; it moves
   * to `queued` (and starts when the GPU is free) or to `failed` with the reason.
   */
  async createJob(input: CreateJobInput): Promise<JobRecord> {
    const training = await this.store.getFile(input.trainingFileId);
    if (!training) throw new JobRunnerError(`no training file ${input.trainingFileId}`);
    const validation = input.validationFileId ? await this.store.getFile(input.validationFileId) : null;
    if (input.validationFileId && !validation) throw new JobRunnerError(`no validation file ${input.validationFileId}`);
    const tm = await this.textModel(input.model);
    const job = createJobRecord({
      baseModel: { source: input.model, summary: tm.summary },
      trainingFile: { id: training.id, name: training.name, bytes: training.bytes },
      validationFile: validation ? { id: validation.id, name: validation.name, bytes: validation.bytes } : null,
      hyperparameters: input.hyperparameters,
      dtype: input.dtype,
      suffix: input.suffix,
      checkpointEvery: input.checkpointEvery,
      now: this.now(),
    });
    await this.store.putJob(job);
    this.emit({ type: 'job', job });
    await this.log(job.id, [{ level: 'info', message: `Validating training file: ${training.id}${validation ? ` and validation file: ${validation.id}` : ''}`, kind: 'status' }]);
    void this.track(this.validateJob(job.id));
    return job;
  }

  private async validateJob(id: string): Promise<void> {
    try {
      const job = (await this.store.getJob(id))!;
      const tm = await this.textModel(job.baseModel.source);
      const requested = job.hyperparameters.requested;
      const maxSeqLen = typeof requested.maxSeqLen === 'number' ? requested.maxSeqLen : Math.min(tm.config.maxPositions, AUTO_MAX_SEQ_LEN);
      const countTokens = createTokenCounter(tm.tokenizer, tm.template);
      const epochs = typeof requested.epochs === 'number' ? requested.epochs : 'auto';
      const check = async (file: { id: string }, what: 'training' | 'validation'): Promise<DatasetReport | null> => {
        const blob = await this.fileBlob(file.id);
        const report = await validateJsonl(blob.stream(), { countTokens, maxSeqLen, epochs, totalBytes: blob.size });
        const warnings = report.warnings.map((w): NewJobEvent => ({ level: 'warning', message: `${what} file ${file.id}: ${w.message}`, kind: 'validation' }));
        if (warnings.length) await this.log(id, warnings);
        if (report.ok) return report;
        const shown = report.errors.slice(0, 3).map((e) => `line ${e.line}: ${e.message}`);
        const more = report.errorCount > shown.length ? ` (and ${report.errorCount - shown.length} more)` : '';
        const detail = report.examples === 0 && report.errorCount === 0 ? 'it has no examples' : `${report.errorCount} error${report.errorCount === 1 ? '' : 's'}: ${shown.join('; ')}${more}`;
        await this.failValidation(id, `The ${what} file ${file.id} is invalid: ${detail}`, `invalid_${what}_file`);
        return null;
      };
      const train = await check(job.trainingFile, 'training');
      if (!train) return;
      if (job.validationFile && !(await check(job.validationFile, 'validation'))) return;
      // An auto batch is capped at what fits the device (accumulation makes up the rest).
      const memory = await this.memoryContext(job.weightDtype ?? job.dtype, false);
      const resolved = resolveWithMemory(
        requested,
        train.examples,
        { model: { family: tm.config.family, maxPositions: tm.config.maxPositions }, longestExample: train.stats?.max },
        tm.config,
        memory.dtype,
        memory.limits,
      ).hyperparameters;
      await this.update(id, (j) => transition(j, 'queued', { hyperparameters: { requested: j.hyperparameters.requested, resolved }, totalSteps: resolved.totalSteps }, this.now()));
      await this.log(id, [{ level: 'info', message: `Files validated (${train.examples} training examples); moving job to queued state`, kind: 'status' }]);
      this.pump();
    } catch (e) {
      await this.failValidation(id, errorMessage(e), errorName(e));
    }
  }

  private async failValidation(id: string, message: string, code: string): Promise<void> {
    try {
      await this.update(id, (j) => transition(j, 'failed', { error: { message, code } }, this.now()));
      await this.log(id, [{ level: 'error', message, kind: 'status' }]);
    } catch (e) {
      // Cancelled while validating: the cancel stands.
      if (!(e instanceof JobTransitionError)) throw e;
    }
  }

  async getJob(id: string): Promise<JobRecord> {
    const job = await this.store.getJob(id);
    if (!job) throw new JobRunnerError(`no job ${id}`);
    return job;
  }

  async getJobDetails(id: string, options: { afterSeq?: number } = {}): Promise<JobDetails> {
    const job = await this.getJob(id);
    const [events, metrics] = await Promise.all([this.store.listEvents(id, { afterSeq: options.afterSeq }), this.store.listMetrics(id)]);
    return { job, events, metrics };
  }

  listJobs(): Promise<JobRecord[]> {
    return this.store.listJobs();
  }

  /**
   * At startup: jobs that were `running` when the page went away go back in the queue (they
   * resume from their last checkpoint) and interrupted validations run again. Returns the ids.
   */
  async recover(): Promise<string[]> {
    if (!this.enabled) throw new JobRunnerError('a disabled runner does not recover jobs (another tab runs them)');
    const recovered: string[] = [];
    for (const job of await this.store.listJobs()) {
      if (job.id === this.active?.id) continue; // running here, not interrupted
      if (job.status === 'running') {
        const latest = (await this.store.checkpoints.list(job.id)).at(-1) ?? null;
        const message = latest
          ? `Interrupted (the page was closed while it ran); it resumes from checkpoint ${latest}`
          : 'Interrupted (the page was closed while it ran) before its first checkpoint; it restarts from step 0';
        await this.update(job.id, (j) => transition(j, 'queued', { statusMessage: message }, this.now()));
        await this.log(job.id, [{ level: 'warning', message, kind: 'recovered' }]);
        recovered.push(job.id);
      } else if (job.status === 'validating_files') {
        void this.track(this.validateJob(job.id));
        recovered.push(job.id);
      } else if (job.status === 'succeeded' && job.validationInsights?.state === 'computing' && !this.insightsRuns.has(job.id)) {
        await this.log(job.id, [{ level: 'warning', message: 'Validation insights were interrupted (the page was closed); computing them again', kind: 'insights' }]);
        await this.computeValidationInsights(job.id);
      }
    }
    this.pump();
    return recovered;
  }

  /** Runs a queued job next (first in line); with autoStart off, the only way jobs run. */
  async start(id: string): Promise<JobRecord> {
    if (!this.enabled) throw new JobRunnerError('jobs run in the other Whittle tab that is open: start it there');
    const job = await this.getJob(id);
    if (job.status !== 'queued') throw new JobTransitionError(id, job.status, 'running');
    if (!this.startRequested.includes(id)) this.startRequested.unshift(id);
    this.pump();
    return job;
  }

  /** Pauses a job: a running one stops after its current step and saves a checkpoint. */
  private async checkNotElsewhere(id: string): Promise<void> {
    if (!this.enabled && (await this.getJob(id)).status === 'running') {
      throw new JobRunnerError(`job ${id} is running in the other Whittle tab that is open: pause or cancel it there`);
    }
  }

  async pause(id: string): Promise<JobRecord> {
    await this.checkNotElsewhere(id);
    const active = this.active;
    if (active?.id === id) {
      active.controller.abort(PAUSE);
      await active.done;
      return this.getJob(id);
    }
    return this.update(id, (j) => transition(j, 'paused', { statusMessage: 'Paused by the user' }, this.now()));
  }

  /** Puts a paused job back in the queue; it continues from its last checkpoint. */
  async resume(id: string): Promise<JobRecord> {
    const job = await this.update(id, (j) => transition(j, 'queued', { statusMessage: 'Waiting to resume from its last checkpoint' }, this.now()));
    await this.log(id, [{ level: 'info', message: 'Resume requested', kind: 'status' }]);
    this.pump();
    return job;
  }

  async cancel(id: string): Promise<JobRecord> {
    await this.checkNotElsewhere(id);
    const active = this.active;
    if (active?.id === id) {
      active.controller.abort(CANCEL);
      await active.done;
      return this.getJob(id);
    }
    const job = await this.update(id, (j) => transition(j, 'cancelled', { statusMessage: 'Cancelled by the user' }, this.now()));
    await this.log(id, [{ level: 'info', message: 'Job cancelled', kind: 'status' }]);
    return job;
  }

  /** Deletes a job that is not running, with its log, metrics, checkpoints and adapter. */
  async deleteJob(id: string): Promise<void> {
    const job = await this.getJob(id);
    if (job.status === 'running' || this.active?.id === id) throw new JobRunnerError(`job ${id} is running: pause or cancel it first`);
    const insights = this.insightsRuns.get(id);
    if (insights) {
      insights.controller.abort();
      await insights.done;
    }
    const i = this.startRequested.indexOf(id);
    if (i >= 0) this.startRequested.splice(i, 1);
    await this.store.deleteJob(id);
  }

  // ------------------------------------------------------------------------------- insights

  /** The "Computing validation insights" step (src/jobs/validationInsights.ts); null when `signal` stopped it. */
  private async insightsStep(id: string, lease: PooledModel, adapter: LoraAdapter, maxSeqLen: number, validationFileId: string | null, signal?: AbortSignal): Promise<ValidationInsightsState | null> {
    const text = lease.text;
    return runValidationInsightsStep(
      {
        model: lease.model,
        adapter,
        tokenizer: text.tokenizer,
        template: text.template,
        examples: async () => (validationFileId ? this.examples(validationFileId) : null),
        maxSeqLen,
        padId: padTokenId(text),
        eosTokenIds: generationStopIds(lease.model.config.eosTokenIds, text.files.generationConfig, text.tokenizer),
        signal,
        now: this.now,
      },
      {
        log: (level, message) => this.log(id, [{ level, message, kind: 'insights' }]),
        progress: async (state, message) => {
          await this.update(id, (j) => ({ ...j, validationInsights: state, statusMessage: message }));
        },
        isFatal: (e) => this.wasLost(lease.gpu, e),
      },
    );
  }

  /**
   * Computes a succeeded job's validation insights again, in the background (a job from before
   * insights existed, one whose computation failed, or one a reload interrupted). Resolves with
   * the record marked as computing; the result arrives as job updates.
   */
  async computeValidationInsights(jobId: string): Promise<JobRecord> {
    const job = await this.getJob(jobId);
    if (job.status !== 'succeeded') throw new JobRunnerError(`job ${jobId} is ${job.status}: validation insights are computed when it succeeds`);
    if (this.insightsRuns.has(jobId)) return job;
    const marked = await this.update(jobId, (j) => ({ ...j, validationInsights: { state: 'computing', phase: 'scoring', done: 0, total: 0 }, statusMessage: 'Computing validation insights' }));
    const controller = new AbortController();
    const done = this.insightsOnDemand(marked, controller.signal).finally(() => this.insightsRuns.delete(jobId));
    this.insightsRuns.set(jobId, { done, controller });
    void this.track(done);
    return marked;
  }

  private async insightsOnDemand(job: JobRecord, signal: AbortSignal): Promise<void> {
    let lease: PooledModel | null = null;
    let adapter: LoraAdapter | null = null;
    let state: ValidationInsightsState;
    try {
      const hp = job.hyperparameters.resolved;
      if (!hp) throw new JobRunnerError('the job has no resolved hyperparameters');
      const gpu = await this.gpu();
      lease = await this.leaseModel(gpu, job.baseModel.source, job.weightDtype ?? JobRunner.dtypeFor(gpu, job.dtype), false);
      adapter = await this.loadAdapter(lease, { kind: 'job', jobId: job.id });
      state = (await this.insightsStep(job.id, lease, adapter!, hp.maxSeqLen, job.validationFile?.id ?? null, signal)) ?? { state: 'failed', message: 'interrupted' };
    } catch (e) {
      state = { state: 'failed', message: errorMessage(e) };
      await this.log(job.id, [{ level: 'warning', message: `Validation insights failed: ${state.message}`, kind: 'insights' }]).catch(() => {});
    } finally {
      adapter?.destroy();
      if (lease) this.pool.release(lease);
    }
    // The job may have been deleted meanwhile: then there is nothing to record.
    await this.update(job.id, (j) => ({ ...j, validationInsights: state, statusMessage: null })).catch(() => {});
  }

  // ------------------------------------------------------------------------------- queue

  private pump(): void {
    if (!this.enabled) return;
    this.wake = true;
    this.loop ??= this.drain().finally(() => {
      this.loop = null;
    });
  }

  private async drain(): Promise<void> {
    while (this.wake) {
      this.wake = false;
      for (;;) {
        const next = await this.nextQueued();
        if (!next) break;
        await this.execute(next);
      }
    }
  }

  private async nextQueued(): Promise<string | null> {
    const queued = (await this.store.listJobs()).filter((j) => j.status === 'queued');
    for (const id of [...this.startRequested]) {
      const i = this.startRequested.indexOf(id);
      this.startRequested.splice(i, 1);
      if (queued.some((j) => j.id === id)) return id;
    }
    if (this.options.autoStart === false) return null;
    queued.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
    return queued[0]?.id ?? null;
  }

  private async execute(id: string): Promise<void> {
    const controller = new AbortController();
    let finished!: () => void;
    const active: ActiveRun = { id, controller, done: new Promise<void>((r) => (finished = r)) };
    this.active = active;
    let gpu: Gpu | null = null;
    let lease: PooledModel | null = null;
    let trainer: Trainer | null = null;
    let lastCheckpoint: string | null = null;
    try {
      let job: JobRecord;
      try {
        job = await this.update(id, (j) => transition(j, 'running', {}, this.now()));
      } catch (e) {
        if (e instanceof JobTransitionError) return; // cancelled or paused while waiting
        throw e;
      }
      try {
        try {
          gpu = await this.gpu();
        } catch (e) {
          // No device now (WebGPU missing, adapter busy after a loss): the job waits, it does not fail.
          const message = `No GPU device could be opened (${errorMessage(e)}). Resume the job when one is available.`;
          await this.update(id, (j) => transition(j, 'paused', { statusMessage: message }, this.now()));
          await this.log(id, [{ level: 'error', message, kind: 'no_gpu' }]);
          return;
        }
        const dtype = job.weightDtype ?? JobRunner.dtypeFor(gpu, job.dtype);
        if (job.weightDtype === null) job = await this.update(id, (j) => ({ ...j, weightDtype: dtype }));
        const hp = job.hyperparameters.resolved;
        if (!hp) throw new JobRunnerError('the job has no resolved hyperparameters (its files were never validated)');
        await this.log(id, [{ level: 'info', message: `Loading ${job.baseModel.source.name} (${dtype} weights)`, step: job.step || null, kind: 'status' }]);
        lease = await this.leaseModel(gpu, job.baseModel.source, dtype, true);
        const text = lease.text;
        const tokenize = async (fileId: string) => tokenizeExamples(await this.examples(fileId), text.tokenizer, text.template, { maxSeqLen: hp.maxSeqLen });
        const train = await tokenize(job.trainingFile.id);
        const validation = job.validationFile ? await tokenize(job.validationFile.id) : undefined;
        const latest = await loadLatestCheckpoint(this.store.checkpoints, id);
        if (controller.signal.aborted) {
          await this.stopped(id, controller.signal.reason, latest?.name ?? null, job.step);
          return;
        }

        let trainedTokens = latest ? latest.metrics.reduce((s, m) => s + m.trainTokens, 0) : 0;
        let lastLoss: number | null = latest?.metrics.at(-1)?.trainLoss ?? null;
        lastCheckpoint = latest?.name ?? null;
        const checkpoints = this.trackedCheckpoints(id, () => ({ state: trainer!.state, trainLoss: lastLoss }));
        const created: Trainer = new Trainer({
          model: lease.model,
          hyperparameters: hp,
          train,
          validation,
          padId: padTokenId(text),
          batching: this.options.batching,
          store: checkpoints,
          jobId: id,
          keepCheckpoints: this.options.keepCheckpoints,
          onEvent: (e: TrainingEvent) => this.enqueue(() => this.log(id, [{ level: e.level, message: e.message, step: e.step, time: e.time, kind: 'trainer' }])),
          onStep: (m: StepMetrics) => {
            trainedTokens += m.trainTokens;
            lastLoss = m.trainLoss;
            if (job.checkpointEvery && m.step % job.checkpointEvery === 0) created.requestCheckpoint();
            const tokens = trainedTokens;
            this.enqueue(async () => {
              await this.store.putMetrics(id, [m]);
              this.emit({ type: 'metrics', jobId: id, rows: [m] });
              await this.update(id, (j) => ({ ...j, step: m.step, totalSteps: created.totalSteps, trainedTokens: tokens }));
            });
          },
        });
        trainer = created;

        let result;
        if (latest) {
          // Steps after the checkpoint are redone: their old rows go, the checkpoint's rows stay.
          await this.store.deleteMetricsAfter(id, latest.state.step);
          await this.store.putMetrics(id, latest.metrics);
          await this.update(id, (j) => ({ ...j, step: latest.state.step, trainedTokens, totalSteps: created.totalSteps, resumes: j.resumes + 1 }));
          result = await created.resume(latest, controller.signal);
        } else {
          await this.store.deleteMetricsAfter(id, 0);
          await this.update(id, (j) => ({ ...j, step: 0, trainedTokens: 0, totalSteps: created.totalSteps }));
          result = await created.run(controller.signal);
        }
        await this.flush();

        if (result.status === 'cancelled') {
          await this.stopped(id, result.reason, result.checkpoint.name, result.state.step);
          return;
        }
        const peft = await exportPeftAdapter(created.adapter, { baseModelNameOrPath: job.baseModel.source.name });
        await this.store.blobs.put(adapterBlobKey(id), peft.adapterModel);
        await this.store.blobs.put(adapterConfigBlobKey(id), new TextEncoder().encode(JSON.stringify(peft.adapterConfig, null, 2)));
        // Still `running` while insights compute: a reload resumes from the final checkpoint and
        // computes them again; a pause or cancel stops the job as it would between steps.
        const insights = await this.insightsStep(id, lease, created.adapter, hp.maxSeqLen, job.validationFile?.id ?? null, controller.signal);
        if (insights === null) {
          await this.update(id, (j) => ({ ...j, validationInsights: null }));
          await this.stopped(id, controller.signal.reason, result.checkpoint.name, result.state.step);
          return;
        }
        const done = await this.update(id, (j) =>
          transition(
            j,
            'succeeded',
            { fineTunedModel: fineTunedModelName(j), adapterKey: adapterBlobKey(id), step: result.state.step, trainedTokens, validationInsights: insights },
            this.now(),
          ),
        );
        await this.log(id, [{ level: 'info', message: `New fine-tuned model created: ${done.fineTunedModel}`, step: result.state.step, kind: 'status' }]);
      } catch (e) {
        await this.flush().catch(() => {});
        if (await this.wasLost(gpu, e)) {
          if (gpu) this.pool.dropGpu(gpu);
          const latest = (await this.store.checkpoints.list(id)).at(-1) ?? lastCheckpoint;
          const message =
            `The GPU device was lost (${e instanceof GpuDeviceLostError ? e.reason : 'device lost'}). ` +
            (latest ? `Resume to continue from checkpoint ${latest} on a new device.` : 'Resume to start again on a new device (there was no checkpoint yet).');
          await this.update(id, (j) => transition(j, 'paused', { statusMessage: message }, this.now()));
          await this.log(id, [{ level: 'error', message, kind: 'device_lost' }]);
        } else {
          const message = errorMessage(e);
          await this.update(id, (j) => (isTerminal(j.status) ? j : transition(j, 'failed', { error: { message, code: errorName(e) } }, this.now())));
          await this.log(id, [{ level: 'error', message: `Fine-tuning failed: ${message}`, kind: 'status' }]);
        }
      }
    } catch (e) {
      // The store itself failed: nothing more can be recorded.
      console.error(`JobRunner: job ${id} could not be recorded`, e);
    } finally {
      try {
        trainer?.destroy();
      } catch {
        // buffers of a lost device
      }
      if (lease) this.pool.release(lease);
      this.active = null;
      finished();
    }
  }

  /** Final status after a pause or cancel stopped the trainer (or stopped it before it began). */
  private async stopped(id: string, reason: unknown, checkpoint: string | null, step: number): Promise<void> {
    if (reason === CANCEL) {
      await this.update(id, (j) => transition(j, 'cancelled', { statusMessage: 'Cancelled by the user' }, this.now()));
      await this.log(id, [{ level: 'info', message: 'Job cancelled', step: step || null, kind: 'status' }]);
      return;
    }
    const message = checkpoint ? `Paused at step ${step}; resume continues from checkpoint ${checkpoint}` : 'Paused before the first step';
    await this.update(id, (j) => transition(j, 'paused', { statusMessage: message }, this.now()));
    await this.log(id, [{ level: 'info', message, step: step || null, kind: 'status' }]);
  }

  /** The store's checkpoints, with every save and prune mirrored in the job record. */
  private trackedCheckpoints(id: string, current: () => { state: { step: number; epoch: number }; trainLoss: number | null }): CheckpointStore {
    const inner = this.store.checkpoints;
    return {
      save: async (jobId, name, bytes) => {
        await inner.save(jobId, name, bytes);
        const { state, trainLoss } = current();
        const info: CheckpointInfo = { name, epoch: state.epoch, step: state.step, createdAt: this.now(), bytes: bytes.byteLength, trainLoss };
        // Metrics and events of the steps before it are written first, so a crash right after
        // the checkpoint never leaves rows missing before its step.
        await this.flush();
        await this.update(id, (j) => ({ ...j, checkpoints: [...j.checkpoints.filter((c) => c.name !== name), info].sort((a, b) => (a.name < b.name ? -1 : 1)) }));
      },
      load: (jobId, name) => inner.load(jobId, name),
      list: (jobId) => inner.list(jobId),
      delete: async (jobId, name) => {
        await inner.delete(jobId, name);
        await this.update(id, (j) => ({ ...j, checkpoints: j.checkpoints.filter((c) => c.name !== name) }));
      },
    };
  }

  // ------------------------------------------------------------------------------- adapters

  /** The job's adapter in PEFT layout: the final one, or a checkpoint's. */
  async getAdapter(jobId: string, checkpoint?: string): Promise<PeftExport> {
    const job = await this.getJob(jobId);
    if (checkpoint === undefined) {
      if (!job.adapterKey) throw new JobRunnerError(`job ${jobId} has no final adapter yet (status ${job.status}); export a checkpoint instead`);
      const model = await this.store.blobs.get(job.adapterKey);
      const config = await this.store.blobs.get(adapterConfigBlobKey(jobId));
      if (!model || !config) throw new JobRunnerError(`job ${jobId}'s adapter files are missing from the store`);
      return { adapterModel: await blobBytes(model), adapterConfig: JSON.parse(await config.text()) as PeftExport['adapterConfig'] };
    }
    const gpu = await this.gpu();
    const lease = await this.leaseModel(gpu, job.baseModel.source, job.weightDtype ?? JobRunner.dtypeFor(gpu, job.dtype), false);
    try {
      const adapter = await this.loadAdapter(lease, { kind: 'checkpoint', jobId, name: checkpoint });
      try {
        return await exportPeftAdapter(adapter!, { baseModelNameOrPath: job.baseModel.source.name });
      } finally {
        adapter!.destroy();
      }
    } finally {
      this.pool.release(lease);
    }
  }

  private async checkpointAdapter(lease: PooledModel, jobId: string, name: string): Promise<LoraAdapter> {
    const bytes = await this.store.checkpoints.load(jobId, name);
    if (!bytes) throw new JobRunnerError(`job ${jobId} has no checkpoint ${name}`);
    const cp = await parseCheckpoint(bytes);
    const adapter = new LoraAdapter(lease.gpu, lease.model.config, lease.model.weights, cp.hyperparameters.lora);
    try {
      adapter.loadTensors((n) => cp.tensors.get(n));
    } catch (e) {
      adapter.destroy();
      throw e;
    }
    return adapter;
  }

  /** A fresh adapter on the leased model (null for the base model); the caller destroys it. */
  private async loadAdapter(lease: PooledModel, ref: AdapterRef): Promise<LoraAdapter | null> {
    switch (ref.kind) {
      case 'base':
        return null;
      case 'checkpoint':
        return this.checkpointAdapter(lease, ref.jobId, ref.name);
      case 'peft':
        return importPeftAdapter(lease.gpu, lease.model, { adapterConfig: ref.config, adapterModel: blobSource(ref.weights) });
      case 'job': {
        const job = await this.getJob(ref.jobId);
        if (job.adapterKey) {
          const weights = await this.store.blobs.get(job.adapterKey);
          const config = await this.store.blobs.get(adapterConfigBlobKey(job.id));
          if (!weights || !config) throw new JobRunnerError(`job ${job.id}'s adapter files are missing from the store`);
          return importPeftAdapter(lease.gpu, lease.model, { adapterConfig: JSON.parse(await config.text()), adapterModel: blobSource(weights) });
        }
        const latest = (await this.store.checkpoints.list(job.id)).at(-1);
        if (!latest) throw new JobRunnerError(`job ${job.id} has no adapter and no checkpoint yet`);
        return this.checkpointAdapter(lease, job.id, latest);
      }
    }
  }

  // ------------------------------------------------------------------------------- playground

  /** Generates from one pane's settings, streaming each token's text to `onToken`. */
  async generate(params: GenerateParams, onToken?: (delta: TokenDelta) => void, signal?: AbortSignal): Promise<GenerateOutput> {
    if ((params.messages === undefined) === (params.prompt === undefined)) throw new JobRunnerError('give either messages or prompt');
    if (params.engine === 'onnxruntime') return this.generateWithOrt(params, onToken, signal);
    const gpu = await this.gpu();
    const lease = await this.leaseModel(gpu, params.model, JobRunner.dtypeFor(gpu, params.dtype), false);
    let adapter: LoraAdapter | null = null;
    try {
      const ids = encodePrompt({ ...lease.text, config: lease.model.config }, params, textUsesBos(lease.text.tokenizer));
      adapter = await this.loadAdapter(lease, params.adapter);
      const streamer = new TextStreamer(lease.text.tokenizer, params.stop, onToken);
      const result = await generate(lease.model, [ids], adapter, {
        ...samplingOptions(params),
        eosTokenIds: generationStopIds(lease.model.config.eosTokenIds, lease.text.files.generationConfig, lease.text.tokenizer),
        signal,
        onToken: (step) => (step[0] === undefined ? undefined : streamer.push(step[0])),
      });
      return generateOutput(streamer, ids.length, result);
    } finally {
      adapter?.destroy();
      this.pool.release(lease);
    }
  }

  /** generate() on onnxruntime-web: the adapter merged into an ONNX export, one session per (model, adapter). */
  private generateWithOrt(params: GenerateParams, onToken?: (delta: TokenDelta) => void, signal?: AbortSignal): Promise<GenerateOutput> {
    return generateTextWithOrt(
      {
        textModel: () => this.textModel(params.model),
        addBos: (tm) => textUsesBos(tm.tokenizer),
        withModelFiles: async (read) => {
          const dir = await this.options.openModel(params.model);
          try {
            return await read(await loadHfModelDir(dir));
          } finally {
            await closeDir(dir);
          }
        },
        adapter: () => this.ortAdapter(params.adapter),
        modelKey: sourceKey(params.model),
        sessions: this.ortSessions,
        loadOrt: this.options.loadOrt ?? (() => import('./ortWeb').then((m) => m.loadOrtWeb())),
      },
      params,
      onToken,
      signal,
    );
  }

  /** An adapter as PEFT files for the ONNX merge, with a key that names its weights for good. */
  private async ortAdapter(ref: AdapterRef): Promise<{ key: string; files: () => Promise<PeftAdapterFiles | null> }> {
    switch (ref.kind) {
      case 'base':
        return { key: 'base', files: () => Promise.resolve(null) };
      case 'peft':
        return { key: `peft:${await peftAdapterKey(ref.config, ref.weights)}`, files: () => Promise.resolve({ adapterConfig: ref.config, adapterModel: blobSource(ref.weights) }) };
      case 'checkpoint':
        return { key: `checkpoint:${ref.jobId}:${ref.name}`, files: () => this.getAdapter(ref.jobId, ref.name) };
      case 'job': {
        const job = await this.getJob(ref.jobId);
        if (job.adapterKey) return { key: `job:${job.id}`, files: () => this.getAdapter(job.id) };
        const latest = (await this.store.checkpoints.list(job.id)).at(-1);
        if (!latest) throw new JobRunnerError(`job ${job.id} has no adapter and no checkpoint yet`);
        return this.ortAdapter({ kind: 'checkpoint', jobId: job.id, name: latest });
      }
    }
  }

  /**
   * Resolved hyperparameters a job would get, without creating it (the job form's preview), with
   * its memory estimate against this device (an auto batch already capped to fit).
   */
  async previewHyperparameters(model: ModelSource, examples: number, requested: HyperparameterRequest, longestExample?: number, dtype?: WeightDtype | 'auto'): Promise<HyperparametersPreview> {
    const tm = await this.textModel(model);
    const context = { model: { family: tm.config.family, maxPositions: tm.config.maxPositions }, longestExample, random: () => 0 };
    // Out-of-range values fail here, naming their field, before any device is asked.
    resolveHyperparameters(requested, examples, context);
    const { limits, dtype: weights } = await this.memoryContext(dtype, true);
    const { hyperparameters, memory } = resolveWithMemory(requested, examples, context, tm.config, weights, limits);
    return { ...hyperparameters, memory };
  }
  // ------------------------------------------------------------------------------- model cache, example preview

  /** Cached models with their files, sizes and jobs; `embedded` (the app's model) listed first. */
  listModels(embedded?: ModelSource | null): Promise<CachedModel[]> {
    return listCachedModels(this.store, { embedded });
  }

  /** Deletes a cached model's blobs; refused while a job that has not finished uses it. */
  async deleteModel(key: string | null): Promise<RemovedModel> {
    const removed = await removeCachedModel(this.store, key);
    // Its tokenizer and config are cached too: a later use must download it again, with progress.
    for (const k of [...this.textModels.keys()]) if (k.endsWith(`:${removed.key}`)) this.textModels.delete(k);
    return removed;
  }

  /** The first examples of a file as tokens with trained flags (the create-job preview). */
  async previewExamples(file: Blob, model: ModelSource, options: { count?: number; maxSeqLen?: number } = {}): Promise<ExamplesPreview> {
    const tm = await this.textModel(model);
    const maxSeqLen = options.maxSeqLen ?? Math.min(tm.config.maxPositions, AUTO_MAX_SEQ_LEN);
    return previewExamples(file.stream(), tm.tokenizer, tm.template, { count: Math.min(options.count ?? 3, 20), maxSeqLen });
  }
}
