/**
 * One queued job's run, from `running` to its next status: the model leased alone, the files
 * tokenized, the Trainer started (or resumed from the newest checkpoint), metrics, events and
 * checkpoints written to the store as they happen, and at the end the adapter stored in PEFT
 * layout and the validation insights computed.
 *
 * - A lost device (GpuDeviceLostError) pauses the job with a message; resuming continues it
 *   from the last checkpoint on a new device.
 * - Pause and cancel (the signal's reason) stop the trainer between optimizer steps; it saves a
 *   checkpoint there.
 */
import { exportPeftAdapter } from '../formats/peft';
import { GpuDeviceLostError, type Gpu } from '../gpu';
import type { TuningStore } from '../kernels/kernelPlanChoice';
import { describeKernelPlan } from '../kernels/matmulPlans';
import { loadLatestCheckpoint, type CheckpointStore } from '../train/checkpoint';
import { planJobKernels } from '../train/kernelPlanning';
import type { StepMetrics } from '../train/metrics';
import { describeKeptLayers } from '../train/keptLayers';
import { Trainer, type TrainerOptions, type TrainingEvent } from '../train/trainer';
import type { FileIntake } from './fileIntake';
import type { InsightsRuns } from './insightsRuns';
import { fineTunedModelName, isTerminal, JobTransitionError, transition, type CheckpointInfo, type JobRecord } from './job';
import { errorMessage, errorName, JobRunnerError, type JobRecords } from './jobRecords';
import { padTokenId, weightDtypeFor, type ModelPool, type PooledModel } from './modelPool';
import { adapterBlobKey, adapterConfigBlobKey } from './store';

/** Abort reasons of a run's signal. */
export const PAUSE = 'pause';
export const CANCEL = 'cancel';

export interface TrainingRunDeps {
  records: JobRecords;
  pool: ModelPool;
  intake: FileIntake;
  insights: InsightsRuns;
  /** Checkpoints kept per job (the trainer's default when absent). */
  keepCheckpoints?: number;
  /** Batching choices passed to the trainer. */
  batching?: TrainerOptions['batching'];
  /** Where kernel tuning results persist (IndexedDB in the worker); absent: every job tunes afresh. */
  tuningStore?: TuningStore;
  /** Browser build, part of the tuning cache key (default: navigator.userAgent). */
  runtime?: string;
}

export class TrainingRun {
  private writes: Promise<void> = Promise.resolve();
  private writeError: unknown = null;

  constructor(
    private readonly deps: TrainingRunDeps,
    private readonly id: string,
    private readonly signal: AbortSignal,
  ) {}

  /** Runs the job; every outcome is recorded in the store, so this never throws. */
  async run(): Promise<void> {
    const { records, pool } = this.deps;
    const { id, signal } = this;
    const store = records.store;
    const now = records.now;
    let gpu: Gpu | null = null;
    let lease: PooledModel | null = null;
    let trainer: Trainer | null = null;
    let lastCheckpoint: string | null = null;
    try {
      let job: JobRecord;
      try {
        job = await records.update(id, (j) => transition(j, 'running', {}, now()));
      } catch (e) {
        if (e instanceof JobTransitionError) return; // cancelled or paused while waiting
        throw e;
      }
      try {
        try {
          gpu = await pool.gpu();
        } catch (e) {
          // No device now (WebGPU missing, adapter busy after a loss): the job waits, it does not fail.
          const message = `No GPU device could be opened (${errorMessage(e)}). Resume the job when one is available.`;
          await records.update(id, (j) => transition(j, 'paused', { statusMessage: message }, now()));
          await records.log(id, [{ level: 'error', message, kind: 'no_gpu' }]);
          return;
        }
        const dtype = job.weightDtype ?? weightDtypeFor(gpu, job.dtype);
        if (job.weightDtype === null) job = await records.update(id, (j) => ({ ...j, weightDtype: dtype }));
        const hp = job.hyperparameters.resolved;
        if (!hp) throw new JobRunnerError('the job has no resolved hyperparameters (its files were never validated)');
        await records.log(id, [{ level: 'info', message: `Loading ${job.baseModel.source.name} (${dtype} weights)`, step: job.step || null, kind: 'status' }]);
        lease = await pool.lease(gpu, job.baseModel.source, dtype, true);
        const text = lease.text;
        const tokenize = async (fileId: string) => (await this.deps.intake.packedExamples(fileId, text.tokenizer, text.template, hp.maxSeqLen)).list();
        const train = await tokenize(job.trainingFile.id);
        const validation = job.validationFile ? await tokenize(job.validationFile.id) : undefined;
        const latest = await loadLatestCheckpoint(store.checkpoints, id);
        if (signal.aborted) {
          await this.stopped(signal.reason, latest?.name ?? null, job.step);
          return;
        }

        let trainedTokens = latest ? latest.metrics.reduce((s, m) => s + m.trainTokens, 0) : 0;
        let lastLoss: number | null = latest?.metrics.at(-1)?.trainLoss ?? null;
        lastCheckpoint = latest?.name ?? null;
        const checkpoints = this.trackedCheckpoints(() => ({ state: trainer!.state, trainLoss: lastLoss }));
        const created: Trainer = new Trainer({
          model: lease.model,
          hyperparameters: hp,
          train,
          validation,
          padId: padTokenId(text),
          batching: this.deps.batching,
          ...(job.recompute ? { recompute: job.recompute } : {}),
          ...(job.keptLayers !== undefined ? { keptLayers: job.keptLayers } : {}),
          store: checkpoints,
          jobId: id,
          keepCheckpoints: this.deps.keepCheckpoints,
          onEvent: (e: TrainingEvent) => this.enqueue(() => records.log(id, [{ level: e.level, message: e.message, step: e.step, time: e.time, kind: 'trainer' }])),
          onStep: (m: StepMetrics) => {
            trainedTokens += m.trainTokens;
            lastLoss = m.trainLoss;
            if (job.checkpointEvery && m.step % job.checkpointEvery === 0) created.requestCheckpoint();
            const tokens = trainedTokens;
            this.enqueue(async () => {
              await store.putMetrics(id, [m]);
              records.emit({ type: 'metrics', jobId: id, rows: [m] });
              await records.update(id, (j) => ({ ...j, step: m.step, totalSteps: created.totalSteps, trainedTokens: tokens }));
            });
          },
        });
        trainer = created;
        if (job.recompute !== created.recompute || job.keptLayers !== created.keptLayers) {
          job = await records.update(id, (j) => ({ ...j, recompute: created.recompute, keptLayers: created.keptLayers }));
          const what = describeKeptLayers(created.keptLayers, lease.model.config.layers);
          await records.log(id, [{ level: 'info', message: `Activations: ${what}`, step: job.step || null, kind: 'status' }]);
        }

        // A resumed job runs the plan its checkpoint recorded (the same kernels, the same losses).
        const recorded = latest?.state.kernelPlan;
        const plan =
          recorded ??
          (await planJobKernels(lease.model, created.adapter, hp.batchSize * hp.maxSeqLen, {
            ...(this.deps.tuningStore ? { store: this.deps.tuningStore } : {}),
            runtime: this.deps.runtime ?? (typeof navigator === 'undefined' ? 'unknown' : navigator.userAgent),
            log: (message) => this.enqueue(() => records.log(id, [{ level: 'info', message: `Kernel tuning: ${message}`, step: null, kind: 'status' }])),
          }));
        created.kernelPlan = plan;
        const described = `${describeKernelPlan(plan)}${recorded ? ' (as the checkpoint recorded)' : ''}`;
        job = await records.update(id, (j) => ({ ...j, kernelPlan: described }));
        await records.log(id, [{ level: 'info', message: `Kernels: ${described}`, step: job.step || null, kind: 'status' }]);

        let result;
        if (latest) {
          // Steps after the checkpoint are redone: their old rows go, the checkpoint's rows stay.
          await store.deleteMetricsAfter(id, latest.state.step);
          await store.putMetrics(id, latest.metrics);
          await records.update(id, (j) => ({ ...j, step: latest.state.step, trainedTokens, totalSteps: created.totalSteps, resumes: j.resumes + 1 }));
          result = await created.resume(latest, signal);
        } else {
          await store.deleteMetricsAfter(id, 0);
          await records.update(id, (j) => ({ ...j, step: 0, trainedTokens: 0, totalSteps: created.totalSteps }));
          result = await created.run(signal);
        }
        await this.flush();

        if (result.status === 'cancelled') {
          await this.stopped(result.reason, result.checkpoint.name, result.state.step);
          return;
        }
        const peft = await exportPeftAdapter(created.adapter, { baseModelNameOrPath: job.baseModel.source.name });
        await store.blobs.put(adapterBlobKey(id), peft.adapterModel);
        await store.blobs.put(adapterConfigBlobKey(id), new TextEncoder().encode(JSON.stringify(peft.adapterConfig, null, 2)));
        // Still `running` while insights compute: a reload resumes from the final checkpoint and
        // computes them again; a pause or cancel stops the job as it would between steps.
        const insights = await this.deps.insights.step(id, lease, created.adapter, hp.maxSeqLen, job.validationFile?.id ?? null, signal);
        if (insights === null) {
          await records.update(id, (j) => ({ ...j, validationInsights: null }));
          await this.stopped(signal.reason, result.checkpoint.name, result.state.step);
          return;
        }
        const done = await records.update(id, (j) =>
          transition(
            j,
            'succeeded',
            { fineTunedModel: fineTunedModelName(j), adapterKey: adapterBlobKey(id), step: result.state.step, trainedTokens, validationInsights: insights },
            now(),
          ),
        );
        await records.log(id, [{ level: 'info', message: `New fine-tuned model created: ${done.fineTunedModel}`, step: result.state.step, kind: 'status' }]);
      } catch (e) {
        await this.flush().catch(() => {});
        if (await pool.wasLost(gpu, e)) {
          if (gpu) pool.dropGpu(gpu);
          const latest = (await store.checkpoints.list(id)).at(-1) ?? lastCheckpoint;
          const message =
            `The GPU device was lost (${e instanceof GpuDeviceLostError ? e.reason : 'device lost'}). ` +
            (latest ? `Resume to continue from checkpoint ${latest} on a new device.` : 'Resume to start again on a new device (there was no checkpoint yet).');
          await records.update(id, (j) => transition(j, 'paused', { statusMessage: message }, now()));
          await records.log(id, [{ level: 'error', message, kind: 'device_lost' }]);
        } else {
          const message = errorMessage(e);
          await records.update(id, (j) => (isTerminal(j.status) ? j : transition(j, 'failed', { error: { message, code: errorName(e) } }, now())));
          await records.log(id, [{ level: 'error', message: `Fine-tuning failed: ${message}`, kind: 'status' }]);
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
      if (lease) pool.release(lease);
    }
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

  /** Final status after a pause or cancel stopped the trainer (or stopped it before it began). */
  private async stopped(reason: unknown, checkpoint: string | null, step: number): Promise<void> {
    const { records } = this.deps;
    const { id } = this;
    if (reason === CANCEL) {
      await records.update(id, (j) => transition(j, 'cancelled', { statusMessage: 'Cancelled by the user' }, records.now()));
      await records.log(id, [{ level: 'info', message: 'Job cancelled', step: step || null, kind: 'status' }]);
      return;
    }
    const message = checkpoint ? `Paused at step ${step}; resume continues from checkpoint ${checkpoint}` : 'Paused before the first step';
    await records.update(id, (j) => transition(j, 'paused', { statusMessage: message }, records.now()));
    await records.log(id, [{ level: 'info', message, step: step || null, kind: 'status' }]);
  }

  /** The store's checkpoints, with every save and prune mirrored in the job record. */
  private trackedCheckpoints(current: () => { state: { step: number; epoch: number }; trainLoss: number | null }): CheckpointStore {
    const { records } = this.deps;
    const { id } = this;
    const inner = records.store.checkpoints;
    return {
      save: async (jobId, name, bytes) => {
        await inner.save(jobId, name, bytes);
        const { state, trainLoss } = current();
        const info: CheckpointInfo = { name, epoch: state.epoch, step: state.step, createdAt: records.now(), bytes: bytes.byteLength, trainLoss };
        // Metrics and events of the steps before it are written first, so a crash right after
        // the checkpoint never leaves rows missing before its step.
        await this.flush();
        await records.update(id, (j) => ({ ...j, checkpoints: [...j.checkpoints.filter((c) => c.name !== name), info].sort((a, b) => (a.name < b.name ? -1 : 1)) }));
      },
      load: (jobId, name) => inner.load(jobId, name),
      list: (jobId) => inner.list(jobId),
      delete: async (jobId, name) => {
        await inner.delete(jobId, name);
        await records.update(id, (j) => ({ ...j, checkpoints: j.checkpoints.filter((c) => c.name !== name) }));
      },
    };
  }
}
