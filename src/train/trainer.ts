/**
 * The training loop of a fine-tuning job, as OpenAI's fine-tuning jobs run it, locally:
 * epochs over shuffled batches, gradient accumulation, a learning-rate schedule, AdamW with
 * gradient clipping, validation (a small batch every `evalEvery` steps, the whole set at the end
 * of each epoch), per-step metrics, an events log, checkpoints at the end of every epoch, and
 * stop/resume that continues exactly where it stopped.
 *
 * Each optimizer step is one batch plan of up to batchSize x gradientAccumulation examples
 * (bucketed by length, see data/batching), run as micro-batches of batchSize rows that share the
 * plan's T.
 *
 * Determinism: the step plans of epoch e are a function of (seed, e), the dropout masks of a
 * micro-batch of (seed, e, step in the epoch, micro-batch), the small validation batch of the
 * step number, so a resumed job replays the same computation as an uninterrupted one.
 */
import { buildBatch, planBatches, type BatchOptions, type BatchPlan } from '../data/batching';
import { exampleAt, type ExampleList } from '../data/exampleList';
import type { TokenSequence } from '../data/examples';
import { applyKernelPlan, type KernelPlanRecord } from '../kernels/matmulPlans';
import { LoraAdapter } from '../model/lora';
import type { RecomputePolicy } from '../model/memoryEstimate';
import type { CausalLM, LossTotals } from '../model/transformer';
import { sameJson } from '../util/canonicalJson';
import {
  captureCheckpoint,
  checkpointName,
  parseCheckpoint,
  restoreCheckpoint,
  saveAndPrune,
  serializeCheckpoint,
  CheckpointError,
  type Checkpoint,
  type CheckpointStore,
  type TrainerState,
} from './checkpoint';
import { divergedAdvice, DivergenceWatch } from './divergence';
import type { Hyperparameters } from './hyperparameters';
import { activationState, keptLayersOf, resolveKeptLayers } from './keptLayers';
import { formatValidationLoss, NO_STEP_TOKENS, trainedStep, type StepMetrics } from './metrics';
import { dropoutSeedOf, microBatches } from './microBatches';
import { LoraOptimizer, type OptimizerSettings } from './optimizer';
import { learningRateAt, warmupStepsFromRatio, type ScheduleSpec } from './schedule';

export { dropoutSeedOf } from './microBatches';

export type EventLevel = 'info' | 'warning' | 'error';

/** One line of the job's events log. */
export interface TrainingEvent {
  level: EventLevel;
  message: string;
  /** Optimizer step the event belongs to (null for job-level events before the first step). */
  step: number | null;
  /** Date.now() when it happened. */
  time: number;
}

/**
 * NaN or Infinity in the loss, or in the gradient norm MAX_SKIPPED_IN_A_ROW steps in a row: the
 * job cannot continue.
 */
export class TrainingDivergedError extends Error {
  override name = 'TrainingDivergedError';
  constructor(
    /** 1-based optimizer step that diverged. */
    readonly step: number,
    readonly quantity: 'training loss' | 'gradient norm',
    readonly value: number,
    /** Step of the last checkpoint saved, null when none was. */
    checkpointStep: number | null = null,
  ) {
    super(`Training diverged at step ${step}: the ${quantity} is ${value}. ${divergedAdvice(checkpointStep)}`);
  }
}

export interface TrainerOptions {
  model: CausalLM;
  /** Resolved hyperparameters (resolveHyperparameters). */
  hyperparameters: Hyperparameters;
  /** Tokenized training examples, each at most hyperparameters.maxSeqLen ids. */
  train: ExampleList<TokenSequence>;
  /** Tokenized validation examples (none: no validation metrics). */
  validation?: ExampleList<TokenSequence>;
  /** Token id of padded positions. Default 0 (masked anyway). */
  padId?: number;
  /** Batching choices besides size and length (strategy, padMultiple, tokensPerBatch, bucketWindow). */
  batching?: Pick<BatchOptions, 'strategy' | 'padMultiple' | 'tokensPerBatch' | 'bucketWindow'>;
  /**
   * Train this adapter (e.g. one loaded from a PEFT folder) instead of a new one initialised
   * with the seed. Its LoRA config must be hyperparameters.lora. The trainer does not destroy it.
   */
  adapter?: LoraAdapter;
  /** Where checkpoints go; none: checkpoints are only returned/on demand. */
  store?: CheckpointStore;
  /** Job id under which the store keeps this job's checkpoints. Default 'job'. */
  jobId?: string;
  /** Checkpoints kept in the store (older ones are deleted). Default 3. */
  keepCheckpoints?: number;
  onEvent?: (event: TrainingEvent) => void;
  onStep?: (metrics: StepMetrics) => void;
  /** A step event every this many steps (validation steps always log). Default 1. */
  logEvery?: number;
  /** Monotonic clock in ms (performance.now by default). */
  clock?: () => number;
  /**
   * Keep each layer's activations for the backward ('never' recompute) or recompute them
   * ('always'); 'auto' (default) resolves once from the memory estimate at batchSize x maxSeqLen.
   * A restored checkpoint's choice wins, so a resumed job computes what it did before.
   */
  recompute?: RecomputePolicy;
  /** How many layers keep their activations, as a job's first run resolved it; wins over `recompute`. */
  keptLayers?: number;
}

export interface TrainResult {
  /** 'completed': every epoch ran. 'cancelled': the signal stopped it between steps. */
  status: 'completed' | 'cancelled';
  /** signal.reason when cancelled. */
  reason?: unknown;
  state: TrainerState;
  metrics: StepMetrics[];
  /** The checkpoint of the state returned (also in the store when there is one). */
  checkpoint: { name: string; bytes: Uint8Array };
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  /** Trained tokens evaluated. */
  tokens: number;
}

/** Consecutive skipped steps (non-finite gradients) after which the job stops as diverged. */
export const MAX_SKIPPED_IN_A_ROW = 3;

/** A step whose passes are recorded and whose results are not taken yet. */
interface RecordedStep {
  /** 1-based optimizer step; 0-based epoch and plan index of its batch. */
  stepNo: number;
  epoch: number;
  planIndex: number;
  epochEnd: boolean;
  /** Tokens of its examples, padding left out, and of those the trained ones. */
  processed: number;
  trained: number;
  learningRate: number;
  /** Where its passes leave the loss totals. */
  totals: GPUBuffer;
  /** clock() when its recording started. */
  start: number;
}

/** Times of one run() call; lastFinish: clock() when its last step was finished. */
type RunClock = { elapsed: () => number; segmentStart: number; stepBefore: number; lastFinish: number };

const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

export class Trainer {
  readonly model: CausalLM;
  readonly hp: Hyperparameters;
  readonly adapter: LoraAdapter;
  readonly optimizer: LoraOptimizer;
  readonly jobId: string;
  /** Optimizer steps of each epoch (with a tokensPerBatch cap they can differ). */
  readonly stepsPerEpoch: number[];
  readonly totalSteps: number;
  readonly schedule: ScheduleSpec;
  /**
   * How many layers keep their activations for the backward in every step of this job (the others
   * are recomputed), resolved once from the memory estimate (see TrainerOptions.recompute).
   */
  keptLayers: number;
  /**
   * The kernel plan every step of this job uses, applied to the device when run() starts and
   * written into checkpoints; a restored checkpoint's plan replaces it. Null: the device's rules.
   */
  kernelPlan: KernelPlanRecord | null = null;
  private readonly ownsAdapter: boolean;
  private readonly train: ExampleList<TokenSequence>;
  private readonly validation: ExampleList<TokenSequence>;
  private readonly validationPlans: BatchPlan[];
  private readonly padId: number;
  private readonly settings: OptimizerSettings;
  private readonly clock: () => number;
  private readonly options: TrainerOptions;
  private st: TrainerState;
  private history: StepMetrics[] = [];
  private running = false;
  /** Consecutive steps skipped for a non-finite gradient. */
  private skippedInARow = 0;
  private checkpointRequested = false;
  /** The checkpoint last saved, so stopping right after one does not write the same state twice. */
  private lastSaved: { step: number; name: string; bytes: Uint8Array } | null = null;
  private readonly divergence = new DivergenceWatch();

  constructor(options: TrainerOptions) {
    const hp = options.hyperparameters;
    this.options = options;
    this.model = options.model;
    this.hp = hp;
    this.train = options.train;
    this.validation = options.validation ?? [];
    this.padId = options.padId ?? 0;
    this.jobId = options.jobId ?? 'job';
    this.clock = options.clock ?? (() => performance.now());
    if (this.train.length === 0) throw new RangeError('the training set is empty');
    if (hp.maxSeqLen > this.model.config.maxPositions) {
      throw new RangeError(`maxSeqLen ${hp.maxSeqLen} exceeds the model's ${this.model.config.maxPositions} positions`);
    }

    // Plans only (no arrays), to count each epoch's steps for the schedule.
    this.stepsPerEpoch = Array.from({ length: hp.epochs }, (_, epoch) => this.plans(epoch).length);
    this.totalSteps = this.stepsPerEpoch.reduce((s, n) => s + n, 0);
    const warmupSteps = hp.warmupRatio === null ? hp.warmupSteps : warmupStepsFromRatio(this.totalSteps, hp.warmupRatio);
    this.schedule = { kind: hp.schedule, baseLr: hp.learningRate, warmupSteps, totalSteps: this.totalSteps };
    this.settings = { lr: hp.learningRate, beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps, weightDecay: hp.weightDecay, maxGradNorm: hp.maxGradNorm };
    this.validationPlans = this.validation.length
      ? planBatches(this.validation, { ...this.batchOptions(0), strategy: 'pad' })
      : [];

    if (options.adapter) {
      const c = options.adapter.config;
      const want = hp.lora;
      const same = c.r === want.r && c.alpha === want.alpha && c.dropout === want.dropout && c.useRslora === want.useRslora && sameJson(c.targetModules, want.targetModules);
      if (!same) throw new RangeError('the adapter was made with a LoRA config other than hyperparameters.lora');
      this.adapter = options.adapter;
      this.ownsAdapter = false;
    } else {
      this.adapter = new LoraAdapter(this.model.gpu, this.model.config, this.model.weights, hp.lora);
      this.adapter.initialize(hp.seed);
      this.ownsAdapter = true;
    }
    this.optimizer = new LoraOptimizer(this.model.gpu, this.adapter);
    this.adapter.resetOptimizer();
    this.keptLayers = resolveKeptLayers(this.model, options, hp.batchSize, hp.maxSeqLen, this.adapter);
    this.st = { step: 0, epoch: 0, batchIndex: 0, totalSteps: this.totalSteps, seed: hp.seed, elapsedMs: 0, finished: false, ...this.activationState() };
  }

  /** 'never' when every layer keeps its activations, else 'always' (some or all are recomputed). */
  get recompute(): 'always' | 'never' {
    return this.activationState().recompute;
  }

  private activationState(): ReturnType<typeof activationState> {
    return activationState(this.keptLayers, this.model.config.layers);
  }

  /** A copy of the current position. */
  get state(): TrainerState {
    return { ...this.st };
  }

  /** Every step's metrics so far (restored ones included). */
  get metrics(): StepMetrics[] {
    return this.history.map((m) => ({ ...m }));
  }

  private batchOptions(epoch: number): BatchOptions {
    return { ...this.options.batching, batchSize: this.hp.batchSize, maxSeqLen: this.hp.maxSeqLen, seed: this.hp.seed, epoch, padId: this.padId };
  }

  /**
   * The optimizer steps of an epoch, one plan each: its examples (up to batchSize x
   * gradientAccumulation, bucketed by length) and the T they share.
   */
  private plans(epoch: number): BatchPlan[] {
    const accum = this.hp.gradientAccumulation;
    const budget = this.options.batching?.tokensPerBatch;
    return planBatches(this.train, {
      ...this.batchOptions(epoch),
      batchSize: this.hp.batchSize * accum,
      ...(budget === undefined ? {} : { tokensPerBatch: budget * accum }),
    });
  }

  private emit(level: EventLevel, message: string, step: number | null = this.st.step || null): void {
    this.options.onEvent?.({ level, message, step, time: Date.now() });
  }

  /** Ask for a checkpoint after the current step (while running; saveCheckpoint when idle). */
  requestCheckpoint(): void {
    this.checkpointRequested = true;
  }

  private idle(what: string): void {
    // Between awaits of a step the GPU state is half-updated and the scratch buffers are shared.
    if (this.running) throw new Error(`${what} while training runs: use requestCheckpoint(), or stop the run first`);
  }

  /** The current state as a checkpoint, saved to the store when there is one (idle trainer only). */
  async saveCheckpoint(): Promise<{ name: string; bytes: Uint8Array }> {
    this.idle('saveCheckpoint');
    return this.save(false);
  }

  /** The current state as a checkpoint file, not stored (idle trainer only). */
  async snapshot(): Promise<{ name: string; bytes: Uint8Array }> {
    this.idle('snapshot');
    return this.serialize(false);
  }

  private async save(epochEnd: boolean): Promise<{ name: string; bytes: Uint8Array }> {
    const saved = await this.serialize(epochEnd);
    this.lastSaved = { step: this.st.step, ...saved };
    if (this.options.store) await saveAndPrune(this.options.store, this.jobId, saved.name, saved.bytes, this.options.keepCheckpoints ?? 3);
    return saved;
  }

  private async serialize(epochEnd: boolean): Promise<{ name: string; bytes: Uint8Array }> {
    // At an epoch end the position already points at the next epoch, so st.epoch counts the
    // epochs done: the name carries the 1-based number of the epoch that ended.
    const name = checkpointName(this.st, epochEnd);
    const cp = await captureCheckpoint(this.model.gpu, this.adapter, { name, state: this.st, hyperparameters: this.hp, metrics: this.history });
    return { name, bytes: serializeCheckpoint(cp) };
  }

  /**
   * Loads a checkpoint of this job (same hyperparameters): adapter, AdamW moments and step, data
   * position, metrics. The next run() continues from there.
   */
  async restore(checkpoint: Uint8Array | Checkpoint): Promise<void> {
    this.idle('restore');
    const cp = checkpoint instanceof Uint8Array ? await parseCheckpoint(checkpoint) : checkpoint;
    if (!sameJson(cp.hyperparameters, this.hp)) {
      throw new CheckpointError(`checkpoint ${cp.name} belongs to a job with other hyperparameters; create the trainer with the checkpoint's hyperparameters`);
    }
    if (cp.state.totalSteps !== this.totalSteps) {
      throw new CheckpointError(`checkpoint ${cp.name} is of a ${cp.state.totalSteps}-step job, this one has ${this.totalSteps} steps (different training data?)`);
    }
    restoreCheckpoint(this.model.gpu, this.adapter, this.optimizer, cp);
    const kept = keptLayersOf(cp.state, this.model.config.layers);
    if (kept !== null) this.keptLayers = kept;
    if (cp.state.kernelPlan) this.kernelPlan = cp.state.kernelPlan;
    this.st = { ...cp.state, ...this.activationState() };
    this.lastSaved = null;
    this.history = cp.metrics.map((m) => ({ ...m }));
    let run = 0;
    while (run < this.history.length && this.history[this.history.length - 1 - run]!.skipped) run++;
    this.skippedInARow = run;
  }

  /** restore() then run(). */
  async resume(checkpoint: Uint8Array | Checkpoint, signal?: AbortSignal): Promise<TrainResult> {
    await this.restore(checkpoint);
    this.emit('info', `Resuming from step ${this.st.step}/${this.totalSteps} (epoch ${Math.min(this.st.epoch + 1, this.hp.epochs)}, batch ${this.st.batchIndex})`);
    return this.run(signal);
  }

  /** Loss and token accuracy of the adapted model over batches of the validation set. */
  private async evaluatePlans(plans: readonly BatchPlan[]): Promise<EvalResult> {
    const sum: LossTotals = { lossSum: 0, tokens: 0, correct: 0 };
    for (const plan of plans) {
      const t = await this.model.evaluate(buildBatch(this.validation, plan, this.padId), this.adapter);
      sum.lossSum += t.lossSum;
      sum.tokens += t.tokens;
      sum.correct += t.correct;
    }
    return { loss: sum.tokens > 0 ? sum.lossSum / sum.tokens : NaN, accuracy: sum.tokens > 0 ? sum.correct / sum.tokens : NaN, tokens: sum.tokens };
  }

  /** The whole validation set (null without one); idle trainer only. */
  async evaluateValidation(): Promise<EvalResult | null> {
    this.idle('evaluateValidation');
    return this.validationPlans.length ? this.evaluatePlans(this.validationPlans) : null;
  }

  /**
   * Trains from the current state to the end of the last epoch, or until `signal` aborts
   * (checked between optimizer steps). Throws TrainingDivergedError on NaN/Inf, leaving the
   * store's checkpoints as they were.
   */
  async run(signal?: AbortSignal): Promise<TrainResult> {
    if (this.running) throw new Error('this trainer is already running');
    this.running = true;
    const modelKept = this.model.pinnedKeptLayers;
    this.model.pinnedKeptLayers = this.keptLayers;
    Object.assign(this.st, this.activationState());
    if (this.kernelPlan) {
      const dropped = applyKernelPlan(this.model.gpu, this.kernelPlan);
      if (dropped.length) this.emit('warning', `the recorded kernel plan's launches for ${dropped.join(', ')} do not fit this GPU; the rules run them, so the losses may differ in the last bits`);
      this.st.kernelPlan = this.kernelPlan;
    }
    try {
      return await this.loop(signal);
    } finally {
      this.model.pinnedKeptLayers = modelKept;
      // A step applied ahead of one that threw (a lost device): its verdict is dropped.
      while (this.optimizer.pending > 0) await this.optimizer.readVerdict().catch(() => null);
      this.running = false;
    }
  }

  private async loop(signal: AbortSignal | undefined): Promise<TrainResult> {
    const hp = this.hp;
    const segmentStart = this.clock();
    const elapsedBefore = this.st.elapsedMs;
    const stepBefore = this.st.step;
    const run: RunClock = { elapsed: () => elapsedBefore + (this.clock() - segmentStart), segmentStart, stepBefore, lastFinish: segmentStart };

    if (this.st.step === 0 && this.st.epoch === 0 && this.st.batchIndex === 0) {
      this.emit(
        'info',
        `Fine-tuning started: ${this.train.length} training examples${this.validation.length ? `, ${this.validation.length} validation examples` : ''}, ` +
          `${hp.epochs} epochs, ${this.totalSteps} steps, batch ${hp.batchSize}${hp.gradientAccumulation > 1 ? ` x ${hp.gradientAccumulation} accumulated` : ''}, ` +
          `learning rate ${hp.learningRate} (${hp.schedule}, ${this.schedule.warmupSteps} warmup steps), LoRA r=${hp.lora.r} alpha=${hp.lora.alpha}, ` +
          `${this.adapter.parameterCount} trainable parameters`,
        null,
      );
    }

    // The passes of step n+1 are recorded (and on the GPU's queue) before the CPU waits for step
    // n's loss and verdict, so the GPU does not idle while the CPU takes results and records; its
    // optimizer update follows once step n is finished, so a stop or a checkpoint after step n
    // sees step n's weights. A step whose results need the weights it left (validation, the end
    // of an epoch, the last step) is finished before the next one is recorded.
    const cursor = { epoch: this.st.epoch, batchIndex: this.st.batchIndex, plans: null as BatchPlan[] | null };
    let pending: RecordedStep | null = null;
    for (;;) {
      const mayRecord: boolean = cursor.epoch < hp.epochs && !signal?.aborted && !(pending && this.needsDrain(pending));
      const next: RecordedStep | null = mayRecord ? await this.recordPasses(cursor, pending ? pending.stepNo + 1 : this.st.step + 1) : null;
      if (pending) {
        const done = await this.finishStep(pending, run);
        if (done) return done;
        pending = null;
      }
      // Stopped: the recorded passes are dropped (the next run records them again).
      if (signal?.aborted) return this.stop(signal, run.elapsed());
      if (next) {
        this.applyStep(next);
        pending = next;
      } else if (cursor.epoch >= hp.epochs) {
        break;
      }
    }
    // Already finished when run() was called.
    this.st.finished = true;
    return { status: 'completed', state: this.state, metrics: this.metrics, checkpoint: await this.serialize(true) };
  }

  /** Whether a step's results must be taken before the next step's passes run (they share buffers). */
  private needsDrain(step: RecordedStep): boolean {
    const validates = this.validationPlans.length > 0 && step.stepNo % this.hp.evalEvery === 0;
    return step.epochEnd || validates || step.stepNo >= this.totalSteps;
  }

  /** Records and submits the forward and backward passes of the step at `cursor`, and moves the cursor on. */
  private async recordPasses(cursor: { epoch: number; batchIndex: number; plans: BatchPlan[] | null }, stepNo: number): Promise<RecordedStep> {
    const hp = this.hp;
    const plans = (cursor.plans ??= this.plans(cursor.epoch));
    if (cursor.batchIndex >= plans.length) throw new CheckpointError(`batch ${cursor.batchIndex} is past the ${plans.length} batches of epoch ${cursor.epoch + 1}`);
    const start = this.clock();
    const epoch = cursor.epoch;
    const planIndex = cursor.batchIndex;
    const plan = plans[planIndex]!;
    const batches = microBatches(this.train, plan, { batchSize: this.hp.batchSize, tokensPerBatch: this.options.batching?.tokensPerBatch, padId: this.padId });
    const trained = batches.reduce((s, b) => s + b.trainedTokens, 0);
    let processed = 0;
    for (const i of plan.examples) processed += exampleAt(this.train, i).ids.length;

    // All micro-batches share 1 / (trained tokens of the step): the step's gradient is the
    // token-weighted mean over its examples, whatever the split. Every micro-batch and the
    // optimizer step are recorded before the CPU waits: the loss totals accumulate on the GPU.
    const gradScale = 1 / Math.max(1, trained);
    for (const [i, batch] of batches.entries()) {
      await this.model.forwardBackward(batch, this.adapter, { gradScale, accumulate: i > 0, dropoutSeed: dropoutSeedOf(hp.seed, epoch, planIndex, i) }, false);
    }
    const last = batches.at(-1)!;
    const totals = this.model.stepTotals(last.B, last.T, this.adapter);
    cursor.batchIndex = planIndex + 1;
    const epochEnd = cursor.batchIndex >= plans.length;
    if (epochEnd) {
      cursor.epoch++;
      cursor.batchIndex = 0;
      cursor.plans = null;
    }
    return { stepNo, epoch, planIndex, epochEnd, processed, trained, learningRate: learningRateAt(this.schedule, stepNo - 1), totals, start };
  }

  /** Submits a recorded step's clip + AdamW, with a copy of its loss totals into the optimizer's staging ring. */
  private applyStep(step: RecordedStep): void {
    if (step.trained === 0) this.emit('warning', `Step ${step.stepNo} has no trained tokens (its examples train on nothing); its gradient is zero`, step.stepNo);
    // A non-finite gradient (a NaN or infinite loss gives one) is caught on the GPU, which
    // skips the update, so a diverged step never reaches the weights.
    this.optimizer.apply(this.settings, step.learningRate, step.totals);
  }

  /**
   * Takes a recorded step's results (its loss totals and the optimizer's verdict, one late read)
   * and does everything that follows a step: position, metrics, validation, events, divergence,
   * checkpoints. Returns the run's result when this was the last step.
   */
  private async finishStep(step: RecordedStep, run: RunClock): Promise<TrainResult | null> {
    const hp = this.hp;
    const { stepNo, epoch, learningRate, epochEnd } = step;
    const verdict = await this.optimizer.readVerdict();
    const totals = verdict.totals!;
    const gradNorm = verdict.gradNorm;
    const trainLoss = totals.tokens > 0 ? totals.lossSum / totals.tokens : 0;
    const trainAccuracy = totals.tokens > 0 ? totals.correct / totals.tokens : 0;
    if (!Number.isFinite(trainLoss)) this.diverged(new TrainingDivergedError(stepNo, 'training loss', trainLoss, this.lastSaved?.step ?? null));
    if (verdict.skipped) {
      this.skippedInARow++;
      this.emit('warning', `Step ${stepNo} skipped: the gradient norm is ${gradNorm}, so the adapter was not updated`, stepNo);
      if (this.skippedInARow >= MAX_SKIPPED_IN_A_ROW) this.diverged(new TrainingDivergedError(stepNo, 'gradient norm', gradNorm, this.lastSaved?.step ?? null));
    } else {
      this.skippedInARow = 0;
    }
    // A step recorded while the previous one ran is timed from when that one finished.
    const now = this.clock();
    const stepMs = now - Math.max(step.start, run.lastFinish);
    run.lastFinish = now;

    this.st.step = stepNo;
    this.st.batchIndex = step.planIndex + 1;
    if (epochEnd) {
      this.st.epoch++;
      this.st.batchIndex = 0;
    }
    this.st.finished = this.st.epoch >= hp.epochs;
    // Recorded only once a step was skipped, so the states of jobs without one read as before.
    if (this.optimizer.step !== stepNo || this.st.optimizerStep !== undefined) this.st.optimizerStep = this.optimizer.step;
    const m: StepMetrics = {
      step: stepNo,
      epoch: epoch + 1,
      trainLoss,
      trainAccuracy,
      trainTokens: totals.tokens,
      learningRate,
      gradNorm,
      tokensPerSecond: stepMs > 0 ? (step.processed * 1000) / stepMs : 0,
      elapsedMs: 0,
      etaMs: null,
      gpuBytes: 0,
      ...(verdict.skipped ? { skipped: true } : {}),
    };
    if (this.validationPlans.length && stepNo % hp.evalEvery === 0) {
      const index = (stepNo / hp.evalEvery - 1) % this.validationPlans.length;
      const v = await this.evaluatePlans([this.validationPlans[index]!]);
      m.validLoss = v.loss;
      m.validAccuracy = v.accuracy;
    }
    if (epochEnd && this.validationPlans.length) {
      const v = await this.evaluatePlans(this.validationPlans);
      m.fullValidLoss = v.loss;
      m.fullValidAccuracy = v.accuracy;
    }
    this.st.elapsedMs = run.elapsed();
    m.elapsedMs = this.st.elapsedMs;
    const done = stepNo - run.stepBefore;
    m.etaMs = done > 0 ? ((this.clock() - run.segmentStart) / done) * (this.totalSteps - stepNo) : null;
    m.gpuBytes = this.model.gpu.memory().liveBytes;
    this.history.push(m);
    this.options.onStep?.({ ...m });
    const divergenceWarning = this.divergence.observe(m);
    if (divergenceWarning !== null) this.emit('warning', divergenceWarning, stepNo);

    const logEvery = this.options.logEvery ?? 1;
    if (stepNo % logEvery === 0 || m.validLoss !== undefined || stepNo === this.totalSteps) {
      let line = `Step ${stepNo}/${this.totalSteps}: training loss=${trainedStep(m) ? fmt(trainLoss) : `none (${NO_STEP_TOKENS})`}`;
      if (m.validLoss !== undefined) line += `, validation loss=${formatValidationLoss(m.validLoss)}`;
      this.emit('info', line, stepNo);
    }
    if (m.fullValidLoss !== undefined) {
      const accuracy = Number.isFinite(m.fullValidLoss) ? `, token accuracy=${fmt(m.fullValidAccuracy!)}` : '';
      this.emit('info', `Epoch ${epoch + 1}/${hp.epochs}: full validation loss=${formatValidationLoss(m.fullValidLoss)}${accuracy}`, stepNo);
    }
    if (epochEnd || this.checkpointRequested) {
      this.checkpointRequested = false;
      const saved = await this.save(epochEnd);
      this.emit('info', epochEnd ? `Checkpoint saved at epoch ${epoch + 1} (step ${stepNo})` : `Checkpoint saved at step ${stepNo}`, stepNo);
      if (this.st.finished) {
        this.emit('info', `The job has successfully completed: ${stepNo} steps in ${(this.st.elapsedMs / 1000).toFixed(1)} s`, stepNo);
        return { status: 'completed', state: this.state, metrics: this.metrics, checkpoint: saved };
      }
    }
    return null;
  }

  private diverged(error: TrainingDivergedError): never {
    this.emit('error', error.message, error.step);
    throw error;
  }

  private async stop(signal: AbortSignal, elapsedMs: number): Promise<TrainResult> {
    this.st.elapsedMs = elapsedMs;
    const last = this.lastSaved;
    const saved = last && last.step === this.st.step ? { name: last.name, bytes: last.bytes } : await this.save(false);
    this.emit('info', `Training stopped at step ${this.st.step}/${this.totalSteps}; checkpoint ${saved.name} saved, the job can resume from it`);
    return { status: 'cancelled', reason: signal.reason, state: this.state, metrics: this.metrics, checkpoint: saved };
  }

  /** Frees the optimizer's buffers, and the adapter when the trainer made it. */
  destroy(): void {
    this.optimizer.destroy();
    if (this.ownsAdapter) this.adapter.destroy();
  }
}

