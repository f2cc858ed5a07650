import { appendFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { MAX_UNTRAINED_SHARE } from '../data/datasetReport';
import { trainedTargets, type TokenSequence } from '../data/examples';
import { exportPeftAdapter } from '../formats/peft';
import { defaultTuningCachePath, nodeTuningStore, nodeWebGpuRuntime } from '../kernels/tuningStoreNode';
import { describeKernelPlan, rulesPlanRecord, type KernelPlanRecord } from '../kernels/matmulPlans';
import type { LoraAdapter } from '../model/lora';
import type { CausalLM } from '../model/transformer';
import { loadLatestCheckpoint, type Checkpoint } from '../train/checkpoint';
import { NodeCheckpointStore } from '../train/checkpointStoreNode';
import { modelResolveContext, resolveHyperparameters, type Hyperparameters, type HyperparameterRequest } from '../train/hyperparameters';
import { formatValidationLoss, NO_STEP_TOKENS, resultsCsv, resultsCsvHeader, resultsCsvRow, trainedStep, type StepMetrics } from '../train/metrics';
import { planJobKernels } from '../train/kernelPlanning';
import { SCHEDULE_KINDS } from '../train/schedule';
import { describeKeptLayers, keptLayersOf } from '../train/keptLayers';
import { Trainer, type TrainingEvent } from '../train/trainer';
import { OutputWriteError, writeFileAtomic } from '../util/atomicWrite';
import { autoNumberOption, choiceOption, flag, KERNELS_OPTION, kernelsOption, listOption, numberOption, requiredString, stringOption, type CommandSpec, type ParsedCommand, type OptionValues, WEIGHT_DTYPE_OPTION, weightDtypeOption, LOG_EVERY_OPTION, logEveryOption } from './args';
import { loadDataset } from './dataset';
import { CliError, formatBytes, type CliContext } from './io';
import { baseModelName, loadAdapterFolder, openModel, padTokenId, writeAdapterFolder } from './model';
import { checkSameData, claimJobFolder, continueCommand, fingerprintFile, lockOutFolder, type FileFingerprint } from './outFolder';

export const METRICS_FILE = 'metrics.csv';
export const JOB_FILE = 'job.json';
export const CHECKPOINT_DIR = 'checkpoints';
/** Checkpoints of folders written before job.json named its job. */
const LEGACY_JOB_ID = 'job';

/** What job.json records about a job, as far as a resume reads it back. */
interface JobFileRecord {
  jobId?: string;
  train?: string;
  validation?: string | null;
  trainFile?: FileFingerprint;
  validationFile?: FileFingerprint | null;
  checkpointEvery?: number | null;
}

async function readJobRecord(out: string): Promise<JobFileRecord> {
  try {
    return JSON.parse(await readFile(join(out, JOB_FILE), 'utf8')) as JobFileRecord;
  } catch {
    return {};
  }
}

export const trainSpec: CommandSpec = {
  name: 'train',
  positionals: ['modelDir', 'train.jsonl'],
  summary: 'Fine-tune a LoRA adapter; writes a PEFT adapter, metrics.csv, job.json and checkpoints into --out.',
  options: {
    out: { type: 'string', arg: 'DIR', help: 'output folder (required)' },
    validation: { type: 'string', arg: 'FILE', help: 'validation JSONL: a batch every --eval-every steps, the whole file each epoch' },
    epochs: { type: 'string', arg: 'N|auto', help: "OpenAI's rule: 3, more for small files", default: 'auto' },
    'batch-size': { type: 'string', arg: 'N|auto', help: 'sequences per micro-batch', default: 'auto' },
    'grad-accum': { type: 'string', arg: 'N|auto', help: 'micro-batches per optimizer step', default: 'auto' },
    'learning-rate': { type: 'string', arg: 'X|auto', help: 'peak learning rate', default: 'auto (2e-4 x multiplier)' },
    'lr-multiplier': { type: 'string', arg: 'X|auto', help: 'multiplies the base learning rate when --learning-rate is auto', default: '1' },
    schedule: { type: 'string', arg: SCHEDULE_KINDS.join('|'), help: 'learning-rate schedule after warmup', default: 'linear' },
    warmup: { type: 'string', arg: 'N|auto', help: 'warmup steps', default: 'auto (3% of steps)' },
    'warmup-ratio': { type: 'string', arg: 'X|auto', help: 'warmup as a share of all steps (when --warmup is auto)', default: '0.03' },
    'weight-decay': { type: 'string', arg: 'X|auto', help: 'AdamW weight decay', default: '0' },
    'max-grad-norm': { type: 'string', arg: 'X|auto', help: 'gradient clipping norm, 0 = off', default: '1' },
    'adam-beta1': { type: 'string', arg: 'X|auto', help: 'AdamW beta1', default: '0.9' },
    'adam-beta2': { type: 'string', arg: 'X|auto', help: 'AdamW beta2', default: '0.999' },
    'adam-eps': { type: 'string', arg: 'X|auto', help: 'AdamW epsilon', default: '1e-8' },
    'lora-r': { type: 'string', arg: 'N|auto', help: 'LoRA rank', default: '8' },
    'lora-alpha': { type: 'string', arg: 'X|auto', help: 'LoRA alpha', default: '2 x rank' },
    'lora-dropout': { type: 'string', arg: 'X|auto', help: 'LoRA dropout', default: '0.05' },
    'target-modules': { type: 'string', arg: 'a,b,..', help: 'modules to adapt', default: 'all linear layers' },
    rslora: { type: 'boolean', help: 'rank-stabilised LoRA scaling alpha / sqrt(r)' },
    'max-seq-len': { type: 'string', arg: 'N|auto', help: 'longer examples are truncated', default: "auto (longest example, at most the context and 1024)" },
    seed: { type: 'string', arg: 'N|auto', help: 'LoRA init, data order and dropout', default: 'auto (random, recorded in job.json)' },
    'eval-every': { type: 'string', arg: 'N|auto', help: 'steps between validation batches', default: 'auto (~20 per job)' },
    'init-adapter': { type: 'string', arg: 'DIR', help: 'start from this PEFT adapter (its LoRA settings are used)' },
    resume: { type: 'boolean', help: "continue the job in --out from its latest checkpoint (the checkpoint's hyperparameters are used)" },
    overwrite: { type: 'boolean', help: 'replace the job already in --out (its adapter, metrics and checkpoints are deleted)' },
    'allow-small': { type: 'boolean', help: 'train on fewer than 10 examples (OpenAI refuses them)' },
    dtype: WEIGHT_DTYPE_OPTION,
    kernels: KERNELS_OPTION,
    'log-every': LOG_EVERY_OPTION,
    'checkpoint-every': { type: 'string', arg: 'N', help: 'also save a checkpoint every N steps (long epochs lose less to a stop; the last three are kept)', default: 'each epoch' },
    'allow-untrained': { type: 'boolean', help: `train even when over ${MAX_UNTRAINED_SHARE * 100}% of the examples lose every trained token to truncation` },
  },
  notes: [
    `Writes into --out: adapter_model.safetensors + adapter_config.json (PEFT), ${METRICS_FILE}`,
    `(step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy,learning_rate,...), ${JOB_FILE} and ${CHECKPOINT_DIR}/.`,
    'Ctrl-C stops after the current step, saving a checkpoint and the adapter so far; --resume continues.',
  ],
};

function splitList(values: string[]): string[] {
  return values.flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
}

/** The hyperparameter flags as a request ('auto' where not given). */
export function hyperparameterRequest(values: OptionValues): HyperparameterRequest {
  const int = { integer: true };
  const req: HyperparameterRequest = {
    epochs: autoNumberOption(values, 'epochs', { ...int, min: 1 }),
    batchSize: autoNumberOption(values, 'batch-size', { ...int, min: 1 }),
    gradientAccumulation: autoNumberOption(values, 'grad-accum', { ...int, min: 1 }),
    learningRate: autoNumberOption(values, 'learning-rate', { above: 0 }),
    learningRateMultiplier: autoNumberOption(values, 'lr-multiplier', { above: 0 }),
    warmupSteps: autoNumberOption(values, 'warmup', { ...int, min: 0 }),
    warmupRatio: autoNumberOption(values, 'warmup-ratio', { min: 0, below: 1 }),
    weightDecay: autoNumberOption(values, 'weight-decay', { min: 0 }),
    maxGradNorm: autoNumberOption(values, 'max-grad-norm', { min: 0 }),
    beta1: autoNumberOption(values, 'adam-beta1', { min: 0, below: 1 }),
    beta2: autoNumberOption(values, 'adam-beta2', { min: 0, below: 1 }),
    eps: autoNumberOption(values, 'adam-eps', { above: 0 }),
    loraR: autoNumberOption(values, 'lora-r', { ...int, min: 1 }),
    loraAlpha: autoNumberOption(values, 'lora-alpha', { above: 0 }),
    loraDropout: autoNumberOption(values, 'lora-dropout', { min: 0, below: 1 }),
    maxSeqLen: autoNumberOption(values, 'max-seq-len', { ...int, min: 2 }),
    seed: autoNumberOption(values, 'seed', { ...int, min: 0 }),
    evalEvery: autoNumberOption(values, 'eval-every', { ...int, min: 1 }),
    schedule: choiceOption(values, 'schedule', ['auto', ...SCHEDULE_KINDS] as const, 'auto'),
  };
  const targets = splitList(listOption(values, 'target-modules'));
  if (targets.length) req.targetModules = targets;
  if (flag(values, 'rslora')) req.useRslora = true;
  return req;
}

function describeHp(hp: Hyperparameters): string {
  const lr = `${hp.learningRate}${hp.auto.includes('learningRate') ? ` (${hp.learningRateMultiplier} x base)` : ''}`;
  return [
    `epochs ${hp.epochs}, batch ${hp.batchSize}${hp.gradientAccumulation > 1 ? ` x ${hp.gradientAccumulation}` : ''}, ${hp.totalSteps} steps`,
    `learning rate ${lr}, ${hp.schedule}, warmup ${hp.warmupSteps}, weight decay ${hp.weightDecay}, clip ${hp.maxGradNorm}`,
    `LoRA r ${hp.lora.r}, alpha ${hp.lora.alpha}, dropout ${hp.lora.dropout}${hp.lora.useRslora ? ', rsLoRA' : ''}, targets ${hp.lora.targetModules.join(',')}`,
    `max seq len ${hp.maxSeqLen}, seed ${hp.seed}`,
  ].join('\n  ');
}

function stepLine(m: StepMetrics, total: number): string {
  const parts = [
    `step ${String(m.step).padStart(String(total).length)}/${total}`,
    `epoch ${m.epoch}`,
  ];
  const trained = trainedStep(m);
  parts.push(trained ? `loss ${trained.loss.toFixed(4)}  acc ${trained.accuracy.toFixed(3)}` : `loss none (${NO_STEP_TOKENS})`);
  if (m.validLoss !== undefined) parts.push(`valid ${formatValidationLoss(m.validLoss)}`);
  if (m.fullValidLoss !== undefined) {
    parts.push(Number.isFinite(m.fullValidLoss) ? `full valid ${m.fullValidLoss.toFixed(4)} (acc ${m.fullValidAccuracy!.toFixed(3)})` : `full valid ${formatValidationLoss(m.fullValidLoss)}`);
  }
  parts.push(`lr ${m.learningRate.toExponential(2)}`, `grad ${m.gradNorm.toFixed(3)}`, `${Math.round(m.tokensPerSecond)} tok/s`);
  if (m.etaMs !== null) parts.push(`eta ${(m.etaMs / 1000).toFixed(0)} s`);
  return parts.join('  ');
}

/** One training run: what `whittle train` parses from its arguments and `whittle try` builds. */
export interface TrainRun {
  modelDir: string;
  trainFile: string;
  validFile?: string;
  out: string;
  request: HyperparameterRequest;
  dtype: 'f16' | 'f32';
  logEvery: number;
  initDir?: string;
  resume: boolean;
  /** Train even when more than MAX_UNTRAINED_SHARE of the examples train nothing. */
  allowUntrained?: boolean;
  /** Replace the job already in `out`. */
  overwrite?: boolean;
  /** Train on fewer than 10 examples. */
  allowSmall?: boolean;
  /** A checkpoint every this many steps as well as at epoch ends. */
  checkpointEvery?: number;
}

/**
 * After a checkpoint could not be written (a full disk), the adapter and metrics of the steps
 * trained so far are smaller: they are written if they fit, and the user is told either way.
 */
async function saveSoFar(ctx: CliContext, trainer: Trainer, out: string, modelDir: string): Promise<void> {
  const step = trainer.state.step;
  try {
    await writeFileAtomic(join(out, METRICS_FILE), resultsCsv(trainer.metrics));
    await writeAdapterFolder(out, await exportPeftAdapter(trainer.adapter, { baseModelNameOrPath: baseModelName(modelDir) }));
    ctx.note(`the adapter after step ${step} and its metrics were saved to ${out}`);
  } catch (e) {
    ctx.note(`the adapter after step ${step} could not be saved either: ${(e as Error).message}`);
  }
}

export async function runTrain(ctx: CliContext, { values, positionals }: ParsedCommand): Promise<number> {
  const [modelDir, trainFile] = positionals as [string, string];
  const out = requiredString(trainSpec, values, 'out', '--out DIR');
  const validFile = stringOption(values, 'validation');
  const initDir = stringOption(values, 'init-adapter');
  const checkpointEvery = numberOption(values, 'checkpoint-every', 0, { integer: true, min: 1 });
  ctx.useKernels(kernelsOption(values));
  return trainModel(ctx, {
    modelDir,
    trainFile,
    ...(validFile !== undefined ? { validFile } : {}),
    out,
    request: hyperparameterRequest(values),
    dtype: weightDtypeOption(values),
    logEvery: logEveryOption(values),
    ...(initDir !== undefined ? { initDir } : {}),
    resume: flag(values, 'resume'),
    allowUntrained: flag(values, 'allow-untrained'),
    overwrite: flag(values, 'overwrite'),
    allowSmall: flag(values, 'allow-small'),
    ...(checkpointEvery > 0 ? { checkpointEvery } : {}),
  });
}

/** Trains a LoRA adapter into run.out; resolves to the exit code (1 when stopped early). */
export async function trainModel(ctx: CliContext, run: TrainRun): Promise<number> {
  const { trainFile, validFile, out, initDir, resume } = run;
  if (resume && initDir !== undefined) throw new CliError('--resume and --init-adapter cannot be combined (a checkpoint holds the adapter)');
  if (resume && run.overwrite) throw new CliError('--resume and --overwrite cannot be combined');

  const releaseLock = await lockOutFolder(out);
  try {
    await claimJobFolder(out, { resume, overwrite: run.overwrite === true });
    const store = new NodeCheckpointStore(join(out, CHECKPOINT_DIR), ctx.io.writeFs);
    let checkpoint: Checkpoint | null = null;
    // Each job checkpoints under its own id, so pruning never touches another job's files.
    let jobId = `job-${Date.now().toString(36)}`;
    let checkpointEvery = run.checkpointEvery;
    if (resume) {
      const record = await readJobRecord(out);
      jobId = record.jobId ?? LEGACY_JOB_ID;
      checkpoint = await loadLatestCheckpoint(store, jobId);
      if (!checkpoint) throw new CliError(`--resume: no checkpoint in ${join(out, CHECKPOINT_DIR, jobId)}`);
      await checkSameData('training file', trainFile, record.trainFile, record.train ?? null);
      await checkSameData('validation file', validFile ?? null, record.validationFile, record.validation ?? null);
      // A resumed job keeps its checkpoint cadence unless the flag is given again.
      if (checkpointEvery === undefined && typeof record.checkpointEvery === 'number') checkpointEvery = record.checkpointEvery;
    }
    return await trainInto(ctx, { ...run, ...(checkpointEvery !== undefined ? { checkpointEvery } : {}) }, store, jobId, checkpoint);
  } finally {
    await releaseLock();
  }
}

/**
 * The kernel plan of a job: a resumed job's from its checkpoint (the same kernels, so the same
 * losses bit for bit), else chosen now (rules, tuning cache or a tuning pass; see
 * kernelPlanChoice.ts). WHITTLE_TUNE=force tunes on CPU adapters too (CI runs the pass on
 * lavapipe so), WHITTLE_TUNE_CANDIDATES=N tries at most N launches per shape.
 */
async function jobKernelPlan(ctx: CliContext, model: CausalLM, adapter: LoraAdapter, hp: Hyperparameters, checkpoint: Checkpoint | null): Promise<KernelPlanRecord> {
  const gpu = model.gpu;
  const recorded = checkpoint?.state.kernelPlan;
  if (recorded) {
    if (recorded.family !== gpu.kernels) {
      throw new CliError(`the checkpoint ran the ${recorded.family} kernel plan and this GPU runs the ${gpu.kernels} plan; resume with --kernels ${recorded.family} to continue with the same kernels`);
    }
    return recorded;
  }
  if (checkpoint) return rulesPlanRecord(gpu, 'the checkpoint predates recorded plans');
  const env = process.env;
  const max = Number(env.WHITTLE_TUNE_CANDIDATES);
  return planJobKernels(model, adapter, hp.batchSize * hp.maxSeqLen, {
    store: nodeTuningStore(defaultTuningCachePath(env)),
    runtime: nodeWebGpuRuntime(),
    force: env.WHITTLE_TUNE === 'force',
    log: (line) => ctx.note(`  ${line}`),
    ...(Number.isInteger(max) && max > 0 ? { tuning: { maxCandidates: max } } : {}),
  });
}

async function trainInto(ctx: CliContext, run: TrainRun, store: NodeCheckpointStore, jobId: string, checkpoint: Checkpoint | null): Promise<number> {
  const { modelDir, trainFile, validFile, out, request, dtype, logEvery, initDir } = run;
  const opened = await openModel(ctx, modelDir, dtype);
  const { model, config } = opened;
  const gpu = model.gpu;
  let initAdapter: LoraAdapter | null = null;
  let trainer: Trainer | null = null;
  try {
    if (initDir !== undefined) {
      initAdapter = await loadAdapterFolder(ctx, model, initDir);
      const c = initAdapter.config;
      const clash = (flagName: string, given: unknown, has: unknown) => {
        if (given !== 'auto' && given !== undefined && JSON.stringify(given) !== JSON.stringify(has)) {
          throw new CliError(`--${flagName} ${JSON.stringify(given)} differs from the --init-adapter's ${JSON.stringify(has)}; LoRA settings come from the adapter`);
        }
      };
      clash('lora-r', request.loraR, c.r);
      clash('lora-alpha', request.loraAlpha, c.alpha);
      clash('lora-dropout', request.loraDropout, c.dropout);
      if (request.targetModules && [...request.targetModules].sort().join() !== [...c.targetModules].sort().join()) clash('target-modules', request.targetModules, c.targetModules);
      if (request.useRslora && !c.useRslora) clash('rslora', true, false);
      Object.assign(request, { loraR: c.r, loraAlpha: c.alpha, loraDropout: c.dropout, targetModules: [...c.targetModules], useRslora: c.useRslora });
    }

    // Tokenized uncut first: the auto max sequence length is the longest example.
    const explicitLen = checkpoint ? checkpoint.hyperparameters.maxSeqLen : request.maxSeqLen === 'auto' ? undefined : request.maxSeqLen;
    if (explicitLen !== undefined && explicitLen > config.maxPositions) {
      throw new CliError(`--max-seq-len ${explicitLen} exceeds the model's context of ${config.maxPositions} positions`);
    }
    const trainData = await loadDataset(trainFile, opened, explicitLen, 'training file', { tooFewIsError: run.allowSmall !== true });
    const hp = checkpoint
      ? checkpoint.hyperparameters
      : resolveHyperparameters(request, trainData.examples.count, { model: modelResolveContext(config, opened.files.finetune), longestExample: trainData.examples.longest });
    const validData = validFile === undefined ? null : await loadDataset(validFile, opened, hp.maxSeqLen, 'validation file');

    // Examples with nothing left to train on after truncation would only cost compute. An
    // example tokenized uncut is cut here to its first maxSeqLen tokens, as tokenizing it with
    // that maxSeqLen would.
    const hasTarget = (e: TokenSequence) => trainedTargets(e) > 0;
    const train = trainData.examples.list(hp.maxSeqLen, hasTarget);
    const total = trainData.examples.count;
    const dropped = total - train.length;
    if (dropped > 0) ctx.note(`note: ${dropped} training example${dropped === 1 ? '' : 's'} have no trained token within ${hp.maxSeqLen} tokens and are skipped`);
    if (train.length === 0) throw new CliError(`${trainFile} has no example with a trained token within ${hp.maxSeqLen} tokens`);
    if (dropped / total > MAX_UNTRAINED_SHARE && !run.allowUntrained) {
      throw new CliError(
        `${dropped} of ${total} training examples (over ${MAX_UNTRAINED_SHARE * 100}%) lose every trained token at ${hp.maxSeqLen} tokens ` +
          `(the model's context is ${config.maxPositions}): shorten them, or pass --allow-untrained to train on the rest`,
      );
    }
    const validation = validData ? validData.examples.list(hp.maxSeqLen, hasTarget) : [];
    if (validData && validation.length === 0) throw new CliError(`${validFile} has no example with a trained token within ${hp.maxSeqLen} tokens`);

    ctx.print(`training ${opened.path} (${config.modelType}, ${config.layers} layers, weights ${dtype}) on ${train.length} examples${validation.length ? `, validating on ${validation.length}` : ''}`);
    ctx.print(`  ${describeHp(hp)}`);
    // Written as the job goes, so a crash keeps the steps so far (a resumed job's history first).
    const metricsPath = join(out, METRICS_FILE);
    await writeFileAtomic(metricsPath, checkpoint ? resultsCsv(checkpoint.metrics) : resultsCsvHeader() + '\n');
    let appendFailed = false;
    const controller = new AbortController();
    const onAbort = () => controller.abort(ctx.io.signal?.reason ?? 'interrupted');
    ctx.io.signal?.addEventListener('abort', onAbort);

    trainer = new Trainer({
      model,
      hyperparameters: hp,
      train,
      validation,
      padId: padTokenId(opened, config),
      ...(initAdapter ? { adapter: initAdapter } : {}),
      store,
      jobId,
      onStep: (m) => {
        if (run.checkpointEvery && m.step % run.checkpointEvery === 0) trainer!.requestCheckpoint();
        // A row that cannot be appended (a full disk) must not stop the job: the whole history is
        // written again at the end.
        try {
          if (!appendFailed) appendFileSync(metricsPath, resultsCsvRow(m) + '\n');
        } catch (e) {
          appendFailed = true;
          ctx.note(`warning: ${metricsPath} could not be appended to (${(e as Error).message}); it is written whole at the end`);
        }
        if (m.step % logEvery === 0 || m.step === trainer!.totalSteps || m.fullValidLoss !== undefined) {
          // Clear the progress line first so the log line does not land on it.
          if (ctx.io.progress) ctx.io.stderr('\r\x1b[2K');
          ctx.print(stepLine(m, trainer!.totalSteps));
        }
        const eta = m.etaMs === null ? '' : `, ETA ${Math.ceil(m.etaMs / 1000)} s`;
        ctx.io.progress?.(m.step, trainer!.totalSteps, `step ${m.step}/${trainer!.totalSteps}, loss ${trainedStep(m)?.loss.toFixed(4) ?? 'none'}${eta}`);
      },
      onEvent: (e: TrainingEvent) => {
        // Step events repeat what the step lines say.
        if (/^Step \d+\/\d+:/.test(e.message)) return;
        if (e.level === 'info') ctx.print(e.message);
        else ctx.note(`${e.level}: ${e.message}`);
      },
    });
    // A resumed job keeps the activation choice its checkpoint recorded.
    const recordedKept = checkpoint ? keptLayersOf(checkpoint.state, model.config.layers) : null;
    if (recordedKept !== null) trainer.keptLayers = recordedKept;
    const kernelPlan = await jobKernelPlan(ctx, model, trainer.adapter, hp, checkpoint);
    trainer.kernelPlan = kernelPlan;
    ctx.print(`  kernels: ${describeKernelPlan(kernelPlan)}${checkpoint?.state.kernelPlan ? ' (as the checkpoint recorded)' : ''}`);
    ctx.print(`  activations: ${describeKeptLayers(trainer.keptLayers, model.config.layers)}`);
    await writeFileAtomic(
      join(out, JOB_FILE),
      JSON.stringify(
        {
          jobId,
          model: baseModelName(modelDir),
          train: trainFile,
          validation: validFile ?? null,
          trainFile: await fingerprintFile(trainFile),
          validationFile: validFile === undefined ? null : await fingerprintFile(validFile),
          initAdapter: initDir ?? null,
          dtype,
          kernels: gpu.kernels,
          kernelPlan,
          checkpointEvery: run.checkpointEvery ?? null,
          hyperparameters: hp,
          recompute: trainer.recompute,
          keptLayers: trainer.keptLayers,
        },
        null,
        2,
      ) + '\n',
    );

    let result;
    try {
      result = checkpoint ? await trainer.resume(checkpoint, controller.signal) : await trainer.run(controller.signal);
    } catch (e) {
      if (e instanceof OutputWriteError) await saveSoFar(ctx, trainer, out, modelDir);
      throw e;
    } finally {
      ctx.io.signal?.removeEventListener('abort', onAbort);
    }
    // The whole history (a resumed job's earlier steps included).
    await writeFileAtomic(metricsPath, resultsCsv(result.metrics));
    const files = await exportPeftAdapter(trainer.adapter, { baseModelNameOrPath: baseModelName(modelDir) });
    await writeAdapterFolder(out, files);
    const last = result.metrics[result.metrics.length - 1];
    ctx.print(
      `${result.status === 'completed' ? 'done' : 'stopped'}: ${result.state.step}/${trainer.totalSteps} steps in ${(result.state.elapsedMs / 1000).toFixed(1)} s` +
        `${last ? `, last training loss ${last.trainLoss.toFixed(4)}` : ''}, peak GPU memory ${formatBytes(gpu.memory().peakBytes)}`,
    );
    ctx.print(`adapter written to ${out} (adapter_model.safetensors, adapter_config.json); metrics in ${metricsPath}`);
    if (result.status !== 'completed') ctx.print(`continue with: ${continueCommand({ modelDir, trainFile, out, validation: validFile ?? null, dtype, logEvery, allowSmall: run.allowSmall === true, allowUntrained: run.allowUntrained === true, checkpointEvery: run.checkpointEvery })}`);
    return result.status === 'completed' ? 0 : 1;
  } finally {
    trainer?.destroy();
    initAdapter?.destroy();
    model.destroy();
  }
}
