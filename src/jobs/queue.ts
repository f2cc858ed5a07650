/**
 * The job queue and its state machine: a new job validates its files (`validating_files`), then
 * waits (`queued`) and runs one at a time when the GPU is free (each run is a TrainingRun); the
 * user pauses, resumes, cancels or deletes it. `recover()` at startup puts jobs that were
 * `running` when the tab closed back in the queue (they resume from their last checkpoint, or
 * from step 0 when they had none) and validates interrupted validations again.
 */
import { createTokenCounter } from '../data/examples';
import type { DatasetReport } from '../data/datasetTypes';
import type { WeightDtype } from '../model/weights';
import { firstSystemMessage } from '../data/systemMessage';
import { AUTO_MAX_SEQ_LEN, modelResolveContext, type HyperparameterRequest } from '../train/hyperparameters';
import { invalidFileDetail } from './fileIntake';
import { createJobRecord, JobTransitionError, transition, type JobRecord, type ModelSource, type NewJobEvent } from './job';
import { resolveWithMemory } from './jobMemory';
import { errorMessage, errorName, JobRunnerError } from './jobRecords';
import { CANCEL, PAUSE, TrainingRun, type TrainingRunDeps } from './trainingRun';

export interface CreateJobInput {
  model: ModelSource;
  trainingFileId: string;
  validationFileId?: string | null;
  hyperparameters?: HyperparameterRequest;
  suffix?: string | null;
  dtype?: WeightDtype | 'auto';
  /** Train on fewer than 10 examples (refused otherwise, as OpenAI refuses them). */
  allowSmall?: boolean;
  /** A checkpoint every this many steps as well as at epoch ends (JobRecord.checkpointEvery). */
  checkpointEvery?: number | null;
}

/** Work that runs after the call that started it returned (validations, insights), for idle(). */
export class BackgroundWork {
  private readonly pending = new Set<Promise<unknown>>();

  track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p)).catch(() => {});
    return p;
  }

  get size(): number {
    return this.pending.size;
  }

  all(): Promise<unknown>[] {
    return [...this.pending];
  }
}

export interface JobQueueOptions extends TrainingRunDeps {
  background: BackgroundWork;
  /** Run queued jobs as soon as the GPU is free (default true); otherwise only on start(). */
  autoStart?: boolean;
  /** A disabled queue records jobs but runs none (another tab owns the GPU work). */
  enabled: boolean;
}

interface ActiveRun {
  id: string;
  controller: AbortController;
  done: Promise<void>;
}

export class JobQueue {
  private active: ActiveRun | null = null;
  private loop: Promise<void> | null = null;
  private wake = false;
  private readonly startRequested: string[] = [];
  enabled: boolean;

  constructor(private readonly options: JobQueueOptions) {
    this.enabled = options.enabled;
  }

  /** Resolves when no job runs, none will start and no background work is pending. */
  /** The job this queue runs now, if any. */
  get activeJobId(): string | null {
    return this.active?.id ?? null;
  }

  async idle(): Promise<void> {
    const { background } = this.options;
    while (this.loop || background.size > 0) {
      await Promise.allSettled([this.loop, ...background.all()]);
    }
  }

  /**
   * Creates a job in `validating_files` and validates its files in the background; it moves
   * to `queued` (and starts when the GPU is free) or to `failed` with the reason.
   */
  async createJob(input: CreateJobInput): Promise<JobRecord> {
    const { records, pool } = this.options;
    const store = records.store;
    const training = await store.getFile(input.trainingFileId);
    if (!training) throw new JobRunnerError(`no training file ${input.trainingFileId}`);
    const validation = input.validationFileId ? await store.getFile(input.validationFileId) : null;
    if (input.validationFileId && !validation) throw new JobRunnerError(`no validation file ${input.validationFileId}`);
    const tm = await pool.textModel(input.model);
    const job = createJobRecord({
      baseModel: { source: input.model, summary: tm.summary },
      trainingFile: { id: training.id, name: training.name, bytes: training.bytes },
      validationFile: validation ? { id: validation.id, name: validation.name, bytes: validation.bytes } : null,
      hyperparameters: input.hyperparameters,
      dtype: input.dtype,
      suffix: input.suffix,
      allowSmall: input.allowSmall,
      checkpointEvery: input.checkpointEvery,
      now: records.now(),
    });
    await store.putJob(job);
    records.emit({ type: 'job', job });
    await records.log(job.id, [{ level: 'info', message: `Validating training file: ${training.id}${validation ? ` and validation file: ${validation.id}` : ''}`, kind: 'status' }]);
    void this.options.background.track(this.validateJob(job.id));
    return job;
  }

  private async validateJob(id: string): Promise<void> {
    const { records, pool, intake } = this.options;
    try {
      const job = (await records.store.getJob(id))!;
      const tm = await pool.textModel(job.baseModel.source);
      const requested = job.hyperparameters.requested;
      const maxSeqLen = typeof requested.maxSeqLen === 'number' ? requested.maxSeqLen : Math.min(tm.config.maxPositions, AUTO_MAX_SEQ_LEN);
      const countTokens = createTokenCounter(tm.tokenizer, tm.template);
      const epochs = typeof requested.epochs === 'number' ? requested.epochs : 'auto';
      const check = async (file: { id: string }, what: 'training' | 'validation'): Promise<DatasetReport | null> => {
        const tooFewIsError = what === 'training' && job.allowSmallTrainingFile !== true;
        const report = await intake.validateStored(file.id, { countTokens, maxSeqLen, epochs, tooFewIsError });
        const warnings = report.warnings.map((w): NewJobEvent => ({ level: 'warning', message: `${what} file ${file.id}: ${w.message}`, kind: 'validation' }));
        if (warnings.length) await records.log(id, warnings);
        if (report.ok) return report;
        await this.failValidation(id, `The ${what} file ${file.id} is invalid: ${invalidFileDetail(report)}`, `invalid_${what}_file`);
        return null;
      };
      const train = await check(job.trainingFile, 'training');
      if (!train) return;
      if (job.validationFile && !(await check(job.validationFile, 'validation'))) return;
      // An auto batch is capped at what fits the device (accumulation makes up the rest).
      const memory = await pool.memoryContext(job.weightDtype ?? job.dtype, false);
      const resolved = resolveWithMemory(
        requested,
        train.examples,
        { model: modelResolveContext(tm.config, tm.files.finetune), longestExample: train.stats?.max },
        tm.config,
        memory.dtype,
        memory.limits,
      ).hyperparameters;
      const trainingSystemMessage = await firstSystemMessage(await intake.fileBlob(job.trainingFile.id));
      await records.update(id, (j) => transition(j, 'queued', { hyperparameters: { requested: j.hyperparameters.requested, resolved }, totalSteps: resolved.totalSteps, trainingSystemMessage }, records.now()));
      await records.log(id, [{ level: 'info', message: `Files validated (${train.examples} training examples); moving job to queued state`, kind: 'status' }]);
      this.pump();
    } catch (e) {
      await this.failValidation(id, errorMessage(e), errorName(e));
    }
  }

  private async failValidation(id: string, message: string, code: string): Promise<void> {
    const { records } = this.options;
    try {
      await records.update(id, (j) => transition(j, 'failed', { error: { message, code } }, records.now()));
      await records.log(id, [{ level: 'error', message, kind: 'status' }]);
    } catch (e) {
      // Cancelled while validating: the cancel stands.
      if (!(e instanceof JobTransitionError)) throw e;
    }
  }

  /** Puts interrupted jobs back in the queue and validations and insights to work again; returns the ids. */
  async recover(): Promise<string[]> {
    const { records, insights } = this.options;
    if (!this.enabled) throw new JobRunnerError('a disabled runner does not recover jobs (another tab runs them)');
    const recovered: string[] = [];
    for (const job of await records.store.listJobs()) {
      if (job.id === this.active?.id) continue; // running here, not interrupted
      if (job.status === 'running') {
        const latest = (await records.store.checkpoints.list(job.id)).at(-1) ?? null;
        const message = latest
          ? `Interrupted (the page was closed while it ran); it resumes from checkpoint ${latest}`
          : 'Interrupted (the page was closed while it ran) before its first checkpoint; it restarts from step 0';
        await records.update(job.id, (j) => transition(j, 'queued', { statusMessage: message }, records.now()));
        await records.log(job.id, [{ level: 'warning', message, kind: 'recovered' }]);
        recovered.push(job.id);
      } else if (job.status === 'validating_files') {
        void this.options.background.track(this.validateJob(job.id));
        recovered.push(job.id);
      } else if (job.status === 'succeeded' && job.validationInsights?.state === 'computing' && !insights.has(job.id)) {
        await records.log(job.id, [{ level: 'warning', message: 'Validation insights were interrupted (the page was closed); computing them again', kind: 'insights' }]);
        await insights.compute(job.id);
      }
    }
    this.pump();
    return recovered;
  }

  /** Runs a queued job next (first in line); with autoStart off, the only way jobs run. */
  async start(id: string): Promise<JobRecord> {
    if (!this.enabled) throw new JobRunnerError('jobs run in the other Whittle tab that is open: start it there');
    const job = await this.options.records.get(id);
    if (job.status !== 'queued') throw new JobTransitionError(id, job.status, 'running');
    if (!this.startRequested.includes(id)) this.startRequested.unshift(id);
    this.pump();
    return job;
  }

  private async checkNotElsewhere(id: string): Promise<void> {
    if (!this.enabled && (await this.options.records.get(id)).status === 'running') {
      throw new JobRunnerError(`job ${id} is running in the other Whittle tab that is open: pause or cancel it there`);
    }
  }

  /** Stops the job if it runs here (after its current step), returning its final record; else null. */
  private async stopRunning(id: string, reason: typeof PAUSE | typeof CANCEL): Promise<JobRecord | null> {
    await this.checkNotElsewhere(id);
    const active = this.active;
    if (active?.id !== id) return null;
    active.controller.abort(reason);
    await active.done;
    return this.options.records.get(id);
  }

  /** Pauses a job: a running one stops after its current step and saves a checkpoint. */
  async pause(id: string): Promise<JobRecord> {
    const { records } = this.options;
    const stopped = await this.stopRunning(id, PAUSE);
    if (stopped) return stopped;
    return records.update(id, (j) => transition(j, 'paused', { statusMessage: 'Paused by the user' }, records.now()));
  }

  /** Puts a paused job back in the queue; it continues from its last checkpoint. */
  async resume(id: string): Promise<JobRecord> {
    const { records } = this.options;
    const job = await records.update(id, (j) => transition(j, 'queued', { statusMessage: 'Waiting to resume from its last checkpoint' }, records.now()));
    await records.log(id, [{ level: 'info', message: 'Resume requested', kind: 'status' }]);
    this.pump();
    return job;
  }

  async cancel(id: string): Promise<JobRecord> {
    const { records } = this.options;
    const stopped = await this.stopRunning(id, CANCEL);
    if (stopped) return stopped;
    const job = await records.update(id, (j) => transition(j, 'cancelled', { statusMessage: 'Cancelled by the user' }, records.now()));
    await records.log(id, [{ level: 'info', message: 'Job cancelled', kind: 'status' }]);
    return job;
  }

  /** Deletes a job that is not running, with its log, metrics, checkpoints and adapter. */
  async deleteJob(id: string): Promise<void> {
    const { records, insights } = this.options;
    const job = await records.get(id);
    if (job.status === 'running' || this.active?.id === id) throw new JobRunnerError(`job ${id} is running: pause or cancel it first`);
    await insights.stop(id);
    const i = this.startRequested.indexOf(id);
    if (i >= 0) this.startRequested.splice(i, 1);
    await records.store.deleteJob(id);
  }

  /** Looks for queued jobs now (e.g. one another tab queued). */
  pump(): void {
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
    const queued = (await this.options.records.store.listJobs()).filter((j) => j.status === 'queued');
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
    this.active = { id, controller, done: new Promise<void>((r) => (finished = r)) };
    try {
      await new TrainingRun(this.options, id, controller.signal).run();
    } finally {
      this.active = null;
      finished();
    }
  }
}
