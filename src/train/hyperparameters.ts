/**
 * A fine-tuning job's hyperparameters, each either given or 'auto', and the rules that turn
 * 'auto' into a number for a given dataset (and, when known, model and memory budget). The rules
 * are listed once, in HYPERPARAMETER_RULES, for the job form and the README.
 *
 * Vocabulary: a micro-batch is what one forward/backward pass sees (`batchSize` sequences); an
 * optimizer step accumulates `gradientAccumulation` micro-batches, so it sees
 * batchSize x gradientAccumulation examples (the effective batch, OpenAI's batch_size).
 */
import type { FinetuneSettings } from '../formats/finetuneSettings';
import type { ArchitectureFamily, ModelConfig } from '../model/config';
import { GPT2_ALL_LINEAR, LLAMA_ALL_LINEAR, type LoraConfig } from '../model/lora';
import { autoEpochs, autoLearningRate, REFERENCE_HIDDEN_SIZE, REFERENCE_LEARNING_RATE } from './autoRules';
import { SCHEDULE_KINDS, warmupStepsFromRatio, type ScheduleKind } from './schedule';

export type AutoOr<T> = T | 'auto';

/** What a user asks for; a missing field means 'auto'. */
export interface HyperparameterRequest {
  epochs?: AutoOr<number>;
  /** Sequences per micro-batch. */
  batchSize?: AutoOr<number>;
  /** Micro-batches per optimizer step. */
  gradientAccumulation?: AutoOr<number>;
  /** Peak learning rate; when given, learningRateMultiplier is not used. */
  learningRate?: AutoOr<number>;
  /** Multiplies the auto learning rate (the model's recommendation or the width rule) when learningRate is auto. */
  learningRateMultiplier?: AutoOr<number>;
  schedule?: AutoOr<ScheduleKind>;
  /** Warmup in optimizer steps; takes precedence over warmupRatio. */
  warmupSteps?: AutoOr<number>;
  /** Warmup as a share of all optimizer steps (rounded up, as transformers does). */
  warmupRatio?: AutoOr<number>;
  weightDecay?: AutoOr<number>;
  /** clip_grad_norm_'s max_norm; 0 turns clipping off. */
  maxGradNorm?: AutoOr<number>;
  /** Longest example in tokens; longer ones are truncated. */
  maxSeqLen?: AutoOr<number>;
  seed?: AutoOr<number>;
  loraR?: AutoOr<number>;
  loraAlpha?: AutoOr<number>;
  loraDropout?: AutoOr<number>;
  targetModules?: AutoOr<string[]>;
  useRslora?: AutoOr<boolean>;
  /** Optimizer steps between small validation batches. */
  evalEvery?: AutoOr<number>;
  beta1?: AutoOr<number>;
  beta2?: AutoOr<number>;
  eps?: AutoOr<number>;
}

/** What the rules may look at besides the training-set size. */
export interface ResolveContext {
  /**
   * The model: target modules follow its family, maxSeqLen its context length, the learning rate
   * its width; its whittle_finetune.json, when it has one, replaces the generic auto rules.
   */
  model?: { family: ArchitectureFamily; maxPositions: number; hiddenSize?: number; finetune?: FinetuneSettings | null };
  /** Largest micro-batch that fits in GPU memory at the resolved maxSeqLen (a memory estimate). */
  maxBatchByMemory?: number;
  /** Longest training example in tokens, when already tokenized. */
  longestExample?: number;
  /** Source of an auto seed; Math.random by default. */
  random?: () => number;
}

export interface Hyperparameters {
  epochs: number;
  batchSize: number;
  gradientAccumulation: number;
  /** batchSize x gradientAccumulation. */
  effectiveBatchSize: number;
  learningRate: number;
  /** The multiplier that produced learningRate (learningRate / baseLearningRate when given directly). */
  learningRateMultiplier: number;
  /** The auto learning rate before the multiplier: the model's recommendation, else the width rule. */
  baseLearningRate: number;
  schedule: ScheduleKind;
  /** Warmup steps for `totalSteps`. */
  warmupSteps: number;
  /** Set when warmup is a share of the job: the trainer recomputes warmupSteps from its exact step count. */
  warmupRatio: number | null;
  weightDecay: number;
  maxGradNorm: number;
  beta1: number;
  beta2: number;
  eps: number;
  maxSeqLen: number;
  seed: number;
  lora: LoraConfig;
  evalEvery: number;
  /** Optimizer steps per epoch: ceil(examples / effectiveBatchSize) (the trainer's exact count when no token cap is set). */
  stepsPerEpoch: number;
  /** epochs x stepsPerEpoch. */
  totalSteps: number;
  /** Names of the fields an 'auto' rule chose. */
  auto: (keyof HyperparameterRequest)[];
}

export class HyperparameterError extends Error {
  override name = 'HyperparameterError';
  constructor(
    readonly field: keyof HyperparameterRequest,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** Share of the training set in one auto batch (OpenAI's rule of thumb: about 0.2%). */
export const AUTO_BATCH_SHARE = 0.002;
export const AUTO_BATCH_MAX = 8;
export const AUTO_WARMUP_RATIO = 0.03;
/** Longest auto maxSeqLen, to keep activations of a browser job modest. */
export const AUTO_MAX_SEQ_LEN = 1024;
/** Auto validation interval: about this many small validation batches per job. */
export const AUTO_EVALS_PER_JOB = 20;

export interface HyperparameterRule {
  key: keyof HyperparameterRequest;
  label: string;
  auto: string;
  rule: string;
}

/** The auto rules, one row per hyperparameter (job form tooltips, README table). */
export const HYPERPARAMETER_RULES: readonly HyperparameterRule[] = [
  { key: 'epochs', label: 'Epochs', auto: "OpenAI's rule", rule: 'The model\'s recommended epochs when it ships them, else 3, raised to floor(100 / n) (at most 25) when 3 epochs would see fewer than 100 examples, lowered to floor(25000 / n) (at least 1) when they would see more than 25,000.' },
  { key: 'batchSize', label: 'Batch size', auto: 'about 0.2% of examples, 1..8', rule: `The model's recommended batch size when it ships one, else round(${AUTO_BATCH_SHARE} x n) clamped to 1..${AUTO_BATCH_MAX}; when that does not fit in GPU memory, the largest micro-batch that does, with gradient accumulation making up the difference.` },
  { key: 'gradientAccumulation', label: 'Gradient accumulation', auto: '1, or what memory forces', rule: 'ceil(wanted batch / micro-batch) when the auto batch was cut for memory, else 1. Gradients of a step are averaged over all its trained tokens.' },
  {
    key: 'learningRate',
    label: 'Learning rate',
    auto: `${REFERENCE_LEARNING_RATE} x ${REFERENCE_HIDDEN_SIZE} / hidden size, x multiplier`,
    rule: `Peak learning rate = base x learning-rate multiplier, unless given directly. The base is the model's recommended rate when it ships one (whittle_finetune.json), else ${REFERENCE_LEARNING_RATE} (QLoRA's rate for 4096-wide 7B models) x ${REFERENCE_HIDDEN_SIZE} / hidden size, within 1e-5..1e-2: with Adam the largest stable rate falls as 1 / width (muP, Tensor Programs V).`,
  },
  { key: 'learningRateMultiplier', label: 'Learning-rate multiplier', auto: '1', rule: 'Scales the base learning rate, as OpenAI\'s learning_rate_multiplier does.' },
  { key: 'schedule', label: 'Schedule', auto: 'linear', rule: 'constant, linear or cosine decay after warmup, with the formulas of transformers\' get_*_schedule_with_warmup.' },
  { key: 'warmupSteps', label: 'Warmup steps', auto: `${AUTO_WARMUP_RATIO * 100}% of steps`, rule: `ceil(total steps x warmup ratio); the ratio defaults to ${AUTO_WARMUP_RATIO}. Explicit steps win over a ratio.` },
  { key: 'warmupRatio', label: 'Warmup ratio', auto: String(AUTO_WARMUP_RATIO), rule: 'Share of all optimizer steps spent warming up, used when warmup steps are auto.' },
  { key: 'weightDecay', label: 'Weight decay', auto: '0', rule: 'AdamW decoupled weight decay (PEFT and transformers default to 0).' },
  { key: 'maxGradNorm', label: 'Max grad norm', auto: '1', rule: 'Gradients are clipped to this global norm (transformers\' default); 0 turns clipping off.' },
  { key: 'maxSeqLen', label: 'Max sequence length', auto: `min(longest example, context, ${AUTO_MAX_SEQ_LEN})`, rule: `The longest training example, capped at the model's context length and at ${AUTO_MAX_SEQ_LEN}; longer examples are truncated from the end.` },
  { key: 'seed', label: 'Seed', auto: 'random', rule: 'A random integer, recorded with the job so it can be repeated; it fixes LoRA initialisation, data order and dropout.' },
  { key: 'loraR', label: 'LoRA rank', auto: '8', rule: 'Rank r of the A [r, in] and B [out, r] matrices; the model\'s recommended rank when it ships one.' },
  { key: 'loraAlpha', label: 'LoRA alpha', auto: '2 x rank', rule: 'Scale alpha / r (alpha / sqrt(r) with rsLoRA); with a model\'s recommendation, its alpha / r ratio times the rank.' },
  { key: 'loraDropout', label: 'LoRA dropout', auto: '0.05', rule: 'Dropout on the LoRA input during training only.' },
  { key: 'targetModules', label: 'Target modules', auto: 'all linear layers', rule: 'The model\'s recommended modules when it ships them, else q/k/v/o and gate/up/down projections (Llama family); c_attn, c_proj, c_fc (GPT-2).' },
  { key: 'useRslora', label: 'rsLoRA', auto: 'off', rule: 'Rank-stabilised scaling alpha / sqrt(r).' },
  { key: 'evalEvery', label: 'Validation interval', auto: `~${AUTO_EVALS_PER_JOB} per job`, rule: `A small validation batch every max(1, ceil(total steps / ${AUTO_EVALS_PER_JOB})) steps; a full validation pass at the end of every epoch.` },
  { key: 'beta1', label: 'Adam beta1', auto: '0.9', rule: 'AdamW first-moment decay.' },
  { key: 'beta2', label: 'Adam beta2', auto: '0.999', rule: 'AdamW second-moment decay.' },
  { key: 'eps', label: 'Adam epsilon', auto: '1e-8', rule: 'AdamW denominator epsilon.' },
];

/** The rules as a Markdown table. */
export function hyperparameterRulesMarkdown(): string {
  const rows = HYPERPARAMETER_RULES.map((r) => `| ${r.label} | ${r.auto} | ${r.rule} |`);
  return ['| Hyperparameter | Auto | Rule |', '|---|---|---|', ...rows].join('\n');
}

/** The model part of a ResolveContext, from its config and its whittle_finetune.json. */
export function modelResolveContext(config: Pick<ModelConfig, 'family' | 'maxPositions' | 'hidden'>, finetune: FinetuneSettings | null): NonNullable<ResolveContext['model']> {
  return { family: config.family, maxPositions: config.maxPositions, hiddenSize: config.hidden, finetune };
}

function isAuto<T>(v: AutoOr<T> | undefined): v is 'auto' | undefined {
  return v === undefined || v === 'auto';
}

function int(field: keyof HyperparameterRequest, v: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new HyperparameterError(field, `must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

function real(field: keyof HyperparameterRequest, v: number, ok: (x: number) => boolean, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new HyperparameterError(field, `must be ${what}, got ${String(v)}`);
  return v;
}

/**
 * Resolves every 'auto' for a training set of `datasetSize` examples. Throws HyperparameterError
 * naming the first field that is out of range.
 */
export function resolveHyperparameters(requested: HyperparameterRequest, datasetSize: number, context: ResolveContext = {}): Hyperparameters {
  const n = Math.floor(datasetSize);
  if (!(n >= 1)) throw new HyperparameterError('epochs', `the training set is empty (${datasetSize} examples)`);
  const auto: (keyof HyperparameterRequest)[] = [];
  const pick = <K extends keyof HyperparameterRequest, T>(key: K, given: (v: Exclude<HyperparameterRequest[K], 'auto' | undefined>) => T, fallback: () => T): T => {
    const v = requested[key];
    if (isAuto(v)) {
      auto.push(key);
      return fallback();
    }
    return given(v as Exclude<HyperparameterRequest[K], 'auto' | undefined>);
  };

  const recommended = context.model?.finetune ?? null;
  const epochs = pick('epochs', (v) => int('epochs', v, 1, 1000), () => recommended?.epochs ?? autoEpochs(n));

  const memoryCap = context.maxBatchByMemory === undefined ? Infinity : int('batchSize', context.maxBatchByMemory, 1);
  const wantedBatch = recommended?.batchSize ?? Math.min(AUTO_BATCH_MAX, Math.max(1, Math.round(AUTO_BATCH_SHARE * n)));
  const batchSize = pick('batchSize', (v) => int('batchSize', v, 1, 4096), () => Math.min(wantedBatch, memoryCap));
  const gradientAccumulation = pick(
    'gradientAccumulation',
    (v) => int('gradientAccumulation', v, 1, 4096),
    // Only an auto batch that memory cut short is made up by accumulation.
    () => (isAuto(requested.batchSize) ? Math.ceil(wantedBatch / batchSize) : 1),
  );

  const learningRateMultiplier = pick('learningRateMultiplier', (v) => real('learningRateMultiplier', v, (x) => x > 0, 'positive'), () => 1);
  const baseLearningRate = recommended?.learningRate ?? autoLearningRate(context.model?.hiddenSize);
  const learningRate = pick('learningRate', (v) => real('learningRate', v, (x) => x > 0, 'positive'), () => baseLearningRate * learningRateMultiplier);
  const schedule = pick(
    'schedule',
    (v) => {
      if (!SCHEDULE_KINDS.includes(v)) throw new HyperparameterError('schedule', `must be one of ${SCHEDULE_KINDS.join(', ')}, got ${String(v)}`);
      return v;
    },
    (): ScheduleKind => 'linear',
  );

  const stepsPerEpoch = Math.ceil(n / (batchSize * gradientAccumulation));
  const totalSteps = epochs * stepsPerEpoch;
  const warmupRatio = pick('warmupRatio', (v) => real('warmupRatio', v, (x) => x >= 0 && x < 1, 'in [0, 1)'), () => AUTO_WARMUP_RATIO);
  const explicitWarmup = pick('warmupSteps', (v) => int('warmupSteps', v, 0), () => null as number | null);
  const warmupSteps = explicitWarmup ?? warmupStepsFromRatio(totalSteps, warmupRatio);

  const weightDecay = pick('weightDecay', (v) => real('weightDecay', v, (x) => x >= 0, 'non-negative'), () => 0);
  const maxGradNorm = pick('maxGradNorm', (v) => real('maxGradNorm', v, (x) => x >= 0, 'non-negative (0: no clipping)'), () => 1);
  const beta1 = pick('beta1', (v) => real('beta1', v, (x) => x >= 0 && x < 1, 'in [0, 1)'), () => 0.9);
  const beta2 = pick('beta2', (v) => real('beta2', v, (x) => x >= 0 && x < 1, 'in [0, 1)'), () => 0.999);
  const eps = pick('eps', (v) => real('eps', v, (x) => x > 0, 'positive'), () => 1e-8);

  const context_ = context.model?.maxPositions ?? Infinity;
  const maxSeqLen = pick(
    'maxSeqLen',
    (v) => int('maxSeqLen', v, 2, Number.isFinite(context_) ? context_ : Number.MAX_SAFE_INTEGER),
    () => Math.max(2, Math.min(context_, AUTO_MAX_SEQ_LEN, context.longestExample ?? Infinity)),
  );

  const seed = pick('seed', (v) => int('seed', v, 0, 2 ** 31 - 1), () => Math.floor((context.random ?? Math.random)() * 2 ** 31));

  const r = pick('loraR', (v) => int('loraR', v, 1, 1024), () => recommended?.loraR ?? 8);
  const alpha = pick('loraAlpha', (v) => real('loraAlpha', v, (x) => x > 0, 'positive'), () => (recommended ? (recommended.loraAlpha / recommended.loraR) * r : 2 * r));
  const dropout = pick('loraDropout', (v) => real('loraDropout', v, (x) => x >= 0 && x < 1, 'in [0, 1)'), () => 0.05);
  const allLinear = context.model?.family === 'gpt2' ? GPT2_ALL_LINEAR : LLAMA_ALL_LINEAR;
  const targetModules = pick(
    'targetModules',
    (v) => {
      if (!Array.isArray(v) || v.length === 0 || !v.every((m) => typeof m === 'string' && m.length > 0)) {
        throw new HyperparameterError('targetModules', 'must be a non-empty list of module names');
      }
      return [...v];
    },
    () => [...(recommended?.targetModules ?? allLinear)],
  );
  const useRslora = pick('useRslora', (v) => Boolean(v), () => false);

  const evalEvery = pick('evalEvery', (v) => int('evalEvery', v, 1), () => Math.max(1, Math.ceil(totalSteps / AUTO_EVALS_PER_JOB)));

  return {
    epochs,
    batchSize,
    gradientAccumulation,
    effectiveBatchSize: batchSize * gradientAccumulation,
    learningRate,
    learningRateMultiplier: isAuto(requested.learningRate) ? learningRateMultiplier : learningRate / baseLearningRate,
    baseLearningRate,
    schedule,
    warmupSteps,
    warmupRatio: explicitWarmup === null ? warmupRatio : null,
    weightDecay,
    maxGradNorm,
    beta1,
    beta2,
    eps,
    maxSeqLen,
    seed,
    lora: { r, alpha, dropout, targetModules, useRslora },
    evalEvery,
    stepsPerEpoch,
    totalSteps,
    auto,
  };
}
