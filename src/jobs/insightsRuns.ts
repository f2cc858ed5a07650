/**
 * Runs the "Computing validation insights" step (the computation is src/jobs/validationInsights.ts)
 * for a job: as the last step of its training run, and again on demand for a succeeded job.
 */
import { generationStopIds } from '../generation/generationText';
import type { LoraAdapter } from '../model/lora';
import type { JobAdapters } from './adapters';
import type { FileIntake } from './fileIntake';
import type { JobRecord } from './job';
import { errorMessage, JobRunnerError, type JobRecords } from './jobRecords';
import { padTokenId, weightDtypeFor, type ModelPool, type PooledModel } from './modelPool';
import { runValidationInsightsStep, type ValidationInsightsState } from './validationInsights';

export interface InsightsRunsDeps {
  records: JobRecords;
  pool: ModelPool;
  adapters: JobAdapters;
  intake: FileIntake;
  /** Keeps a background computation in the runner's idle() accounting. */
  track: (work: Promise<unknown>) => void;
}

export class InsightsRuns {
  /** On-demand computations in progress, by job id. */
  private readonly runs = new Map<string, { done: Promise<void>; controller: AbortController }>();

  constructor(private readonly deps: InsightsRunsDeps) {}

  has(jobId: string): boolean {
    return this.runs.has(jobId);
  }

  /** Stops an on-demand computation of the job, if one runs, and waits for it. */
  async stop(jobId: string): Promise<void> {
    const run = this.runs.get(jobId);
    if (run) {
      run.controller.abort();
      await run.done;
    }
  }

  /** The insights step on a leased model and adapter; null when `signal` stopped it. */
  step(id: string, lease: PooledModel, adapter: LoraAdapter, maxSeqLen: number, validationFileId: string | null, signal?: AbortSignal): Promise<ValidationInsightsState | null> {
    const { records, intake, pool } = this.deps;
    const text = lease.text;
    return runValidationInsightsStep(
      {
        model: lease.model,
        adapter,
        tokenizer: text.tokenizer,
        template: text.template,
        examples: async () => (validationFileId ? intake.examples(validationFileId) : null),
        maxSeqLen,
        padId: padTokenId(text),
        eosTokenIds: generationStopIds(lease.model.config.eosTokenIds, text.files.generationConfig, text.tokenizer),
        signal,
        now: records.now,
      },
      {
        log: (level, message) => records.log(id, [{ level, message, kind: 'insights' }]),
        progress: async (state, message) => {
          await records.update(id, (j) => ({ ...j, validationInsights: state, statusMessage: message }));
        },
        isFatal: (e) => pool.wasLost(lease.gpu, e),
      },
    );
  }

  /**
   * Computes a succeeded job's validation insights again, in the background (a job from before
   * insights existed, one whose computation failed, or one a reload interrupted). Resolves with
   * the record marked as computing; the result arrives as job updates.
   */
  async compute(jobId: string): Promise<JobRecord> {
    const { records } = this.deps;
    const job = await records.get(jobId);
    if (job.status !== 'succeeded') throw new JobRunnerError(`job ${jobId} is ${job.status}: validation insights are computed when it succeeds`);
    if (this.runs.has(jobId)) return job;
    const marked = await records.update(jobId, (j) => ({ ...j, validationInsights: { state: 'computing', phase: 'scoring', done: 0, total: 0 }, statusMessage: 'Computing validation insights' }));
    const controller = new AbortController();
    const done = this.onDemand(marked, controller.signal).finally(() => this.runs.delete(jobId));
    this.runs.set(jobId, { done, controller });
    this.deps.track(done);
    return marked;
  }

  private async onDemand(job: JobRecord, signal: AbortSignal): Promise<void> {
    const { records, pool, adapters } = this.deps;
    let lease: PooledModel | null = null;
    let adapter: LoraAdapter | null = null;
    let state: ValidationInsightsState;
    try {
      const hp = job.hyperparameters.resolved;
      if (!hp) throw new JobRunnerError('the job has no resolved hyperparameters');
      const gpu = await pool.gpu();
      lease = await pool.lease(gpu, job.baseModel.source, job.weightDtype ?? weightDtypeFor(gpu, job.dtype), false);
      adapter = await adapters.load(lease, { kind: 'job', jobId: job.id });
      state = (await this.step(job.id, lease, adapter!, hp.maxSeqLen, job.validationFile?.id ?? null, signal)) ?? { state: 'failed', message: 'interrupted' };
    } catch (e) {
      state = { state: 'failed', message: errorMessage(e) };
      await records.log(job.id, [{ level: 'warning', message: `Validation insights failed: ${state.message}`, kind: 'insights' }]).catch(() => {});
    } finally {
      adapter?.destroy();
      if (lease) pool.release(lease);
    }
    // The job may have been deleted meanwhile: then there is nothing to record.
    await records.update(job.id, (j) => ({ ...j, validationInsights: state, statusMessage: null })).catch(() => {});
  }
}
