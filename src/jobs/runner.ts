/**
 * The engine side of the jobs page, behind the training worker's protocol: one object whose
 * methods are the protocol's requests. Each request is served by the part that does that job:
 *
 * - ModelPool (modelPool.ts): the GPU device and the model instances on it;
 * - FileIntake (fileIntake.ts): JSONL validation and upload;
 * - JobQueue (queue.ts): jobs' states, the queue, and each run (trainingRun.ts), written to the
 *   JobStore as they happen so that nothing is lost when the tab closes or the GPU goes away;
 * - InsightsRuns (insightsRuns.ts): validation insights of finished jobs;
 * - JobAdapters (adapters.ts): a job's adapters, loaded or exported;
 * - Playground (src/generation/playground.ts): generation on both engines;
 * - previews.ts: the create-job form's previews; modelCache.ts: the cached models.
 */
import type { DatasetReport } from '../data/datasetTypes';
import type { ExamplesPreview } from '../data/examplePreview';
import type { PeftExport } from '../formats/peft';
import type { GenerateOutput, GenerateParams, TokenDelta } from '../generation/generationText';
import type { LoadOrt } from '../generation/onnxGeneration';
import { Playground } from '../generation/playground';
import type { Gpu } from '../gpu';
import { cachedKernelPlan, type TuningStore } from '../kernels/kernelPlanChoice';
import { describeKernelPlan } from '../kernels/matmulPlans';
import type { WeightDtype } from '../model/weights';
import type { HyperparameterRequest } from '../train/hyperparameters';
import type { TrainerOptions } from '../train/trainer';
import { JobAdapters } from './adapters';
import { FileIntake, type ValidateFileOptions } from './fileIntake';
import { InsightsRuns } from './insightsRuns';
import type { FileRecord, JobDetails, JobRecord, ModelSource } from './job';
import type { MemoryLimits } from './jobMemory';
import { JobRecords, type RunnerUpdate } from './jobRecords';
import { listCachedModels, removeCachedModel, type CachedModel, type RemovedModel } from './modelCache';
import { ModelPool, type ModelInfo } from './modelPool';
import { importLocalModel, type DownloadProgress, type OpenModelDir } from './models';
import { previewFileExamples, previewHyperparameters, type HyperparametersPreview } from './previews';
import { BackgroundWork, JobQueue, type CreateJobInput } from './queue';
import type { JobStore } from './store';

export type { RunnerUpdate } from './jobRecords';

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
  /** Where kernel tuning results persist (the worker passes IndexedDB); absent: every job tunes afresh. */
  tuningStore?: TuningStore;
  onUpdate?: (update: RunnerUpdate) => void;
  /** onnxruntime-web for `engine: 'onnxruntime'` generations (default: the browser WASM build, src/generation/ortWeb.ts). */
  loadOrt?: LoadOrt;
  /** Wall clock for records (Date.now by default). */
  now?: () => number;
}

export class JobRunner {
  readonly store: JobStore;
  private readonly records: JobRecords;
  private readonly pool: ModelPool;
  private readonly intake: FileIntake;
  private readonly adapters: JobAdapters;
  private readonly insights: InsightsRuns;
  private readonly queue: JobQueue;
  private readonly playground: Playground;

  constructor(options: JobRunnerOptions) {
    this.store = options.store;
    const records = (this.records = new JobRecords(options.store, options.now ?? (() => Date.now()), options.onUpdate));
    const pool = (this.pool = new ModelPool({ acquireGpu: options.acquireGpu, openModel: options.openModel, onDeviceLost: (message) => records.emit({ type: 'device-lost', message }) }));
    const background = new BackgroundWork();
    const intake = (this.intake = new FileIntake(options.store, pool, records.now));
    const adapters = (this.adapters = new JobAdapters(records, pool));
    const insights = (this.insights = new InsightsRuns({ records, pool, adapters, intake, track: (p) => void background.track(p) }));
    this.queue = new JobQueue({
      records,
      pool,
      intake,
      insights,
      background,
      autoStart: options.autoStart,
      enabled: options.enabled ?? true,
      keepCheckpoints: options.keepCheckpoints,
      batching: options.batching,
      ...(options.tuningStore ? { tuningStore: options.tuningStore } : {}),
    });
    this.playground = new Playground({ pool, adapters, loadOrt: options.loadOrt, kernelPlan: (gpu) => this.generationKernelPlan(gpu, options.tuningStore) });
  }

  /**
   * The kernel plan the playground generates with, as one line: a running job's, left applied
   * (other launches would change the job's kernels mid-run); else the launches a training job
   * tuned and cached for this device (no tuning pass here), or the rules on a miss.
   */
  private async generationKernelPlan(gpu: Gpu, store?: TuningStore): Promise<string> {
    const running = this.queue.activeJobId;
    if (running !== null) return `${(await this.records.get(running)).kernelPlan ?? `${gpu.kernels} plan`} (the running job's)`;
    const runtime = typeof navigator === 'undefined' ? 'unknown' : navigator.userAgent;
    return describeKernelPlan(await cachedKernelPlan(gpu, { ...(store ? { store } : {}), runtime }));
  }

  /** Makes a disabled runner the one that runs jobs: recovers interrupted ones and starts. */
  enable(): Promise<string[]> {
    this.queue.enabled = true;
    return this.recover();
  }

  get isEnabled(): boolean {
    return this.queue.enabled;
  }

  /** Looks for queued jobs now (e.g. one another tab queued). */
  poke(): void {
    this.queue.pump();
  }

  /** The current device, opening one when there is none or the last one was lost. */
  gpu(): Promise<Gpu> {
    return this.pool.gpu();
  }

  /** Resolves when no job runs, none will start and no validation is pending. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  // ------------------------------------------------------------------------------- models

  /** config.json summary of a model (downloading a Hub model's files when needed). */
  inspectModel(source: ModelSource, onProgress?: (p: DownloadProgress) => void): Promise<ModelInfo> {
    return this.pool.inspect(source, onProgress);
  }

  /** Copies a picked folder into the store (so jobs on it survive a reload) and inspects it. */
  async importLocalModel(name: string, files: ReadonlyMap<string, Blob>): Promise<ModelInfo> {
    const source = await importLocalModel(this.store.blobs, name, files);
    return this.inspectModel(source);
  }

  /** Cached models with their files, sizes and jobs; `embedded` (the app's model) listed first. */
  listModels(embedded?: ModelSource | null): Promise<CachedModel[]> {
    return listCachedModels(this.store, { embedded });
  }

  /** Deletes a cached model's blobs; refused while a job that has not finished uses it. */
  async deleteModel(key: string | null): Promise<RemovedModel> {
    const removed = await removeCachedModel(this.store, key);
    // Its tokenizer and config are cached too: a later use must download it again, with progress.
    this.pool.forgetModel(removed.key);
    return removed;
  }

  // ------------------------------------------------------------------------------- files

  /** The validation report of a JSONL file, with token statistics when a model is given. */
  validateFile(file: Blob, options: ValidateFileOptions = {}): Promise<DatasetReport> {
    return this.intake.validateFile(file, options);
  }

  /** Stores a JSONL file (validated, so its record carries format and example count). */
  uploadFile(name: string, file: Blob, options: { model?: ModelSource } = {}): Promise<{ file: FileRecord; report: DatasetReport }> {
    return this.intake.uploadFile(name, file, options);
  }

  /** The first examples of a file as tokens with trained flags (the create-job preview). */
  previewExamples(file: Blob, model: ModelSource, options: { count?: number; maxSeqLen?: number } = {}): Promise<ExamplesPreview> {
    return previewFileExamples(this.pool, file, model, options);
  }

  /** Resolved hyperparameters a job would get, without creating it (the job form's preview). */
  previewHyperparameters(model: ModelSource, examples: number, requested: HyperparameterRequest, longestExample?: number, dtype?: WeightDtype | 'auto'): Promise<HyperparametersPreview> {
    return previewHyperparameters(this.pool, model, examples, requested, longestExample, dtype);
  }

  /** The limits and weight dtype a new job on this device is checked against (auto dtype). */
  jobMemoryContext(): Promise<{ limits: MemoryLimits; dtype: WeightDtype }> {
    return this.pool.memoryContext('auto', false);
  }

  // ------------------------------------------------------------------------------- jobs

  /** Creates a job in `validating_files`; it moves to `queued` or `failed` in the background. */
  createJob(input: CreateJobInput): Promise<JobRecord> {
    return this.queue.createJob(input);
  }

  getJob(id: string): Promise<JobRecord> {
    return this.records.get(id);
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
  recover(): Promise<string[]> {
    return this.queue.recover();
  }

  /** Runs a queued job next (first in line); with autoStart off, the only way jobs run. */
  start(id: string): Promise<JobRecord> {
    return this.queue.start(id);
  }

  /** Pauses a job: a running one stops after its current step and saves a checkpoint. */
  pause(id: string): Promise<JobRecord> {
    return this.queue.pause(id);
  }

  /** Puts a paused job back in the queue; it continues from its last checkpoint. */
  resume(id: string): Promise<JobRecord> {
    return this.queue.resume(id);
  }

  cancel(id: string): Promise<JobRecord> {
    return this.queue.cancel(id);
  }

  /** Deletes a job that is not running, with its log, metrics, checkpoints and adapter. */
  deleteJob(id: string): Promise<void> {
    return this.queue.deleteJob(id);
  }

  /** Computes a succeeded job's validation insights again, in the background. */
  computeValidationInsights(jobId: string): Promise<JobRecord> {
    return this.insights.compute(jobId);
  }

  // ------------------------------------------------------------------------------- adapters, playground

  /** The job's adapter in PEFT layout: the final one, or a checkpoint's. */
  getAdapter(jobId: string, checkpoint?: string): Promise<PeftExport> {
    return this.adapters.exportPeft(jobId, checkpoint);
  }

  /** Generates from one pane's settings, streaming each token's text to `onToken`. */
  generate(params: GenerateParams, onToken?: (delta: TokenDelta) => void, signal?: AbortSignal): Promise<GenerateOutput> {
    return this.playground.generate(params, onToken, signal);
  }
}
