import { countParameters } from '../model/config';
import { defaultLoraConfig, LoraAdapter } from '../model/lora';
import { estimateLoraJobMemory, type MemoryEstimate } from '../model/memoryEstimate';
import type { WeightDtype } from '../model/weights';
import { Rng } from '../util/random';
import { DEFAULT_OPTIMIZER, LoraOptimizer } from '../train/optimizer';
import { flag, listOption, numberOption, type CommandSpec, type ParsedCommand, WEIGHT_DTYPE_OPTION, weightDtypeOption } from './args';
import { CliError, formatBytes, type CliContext } from './io';
import { openModel, readModelFolder } from './model';

export const infoSpec: CommandSpec = {
  name: 'info',
  positionals: ['modelDir'],
  summary: 'Describe a Hugging Face model folder and estimate the GPU memory of a LoRA job on it.',
  options: {
    batch: { type: 'string', arg: 'N', help: 'sequences per micro-batch for the estimate', default: '4' },
    seq: { type: 'string', arg: 'T', help: "tokens per sequence (capped at the model's context)", default: '512' },
    rank: { type: 'string', arg: 'R', help: 'LoRA rank', default: '16' },
    'target-modules': { type: 'string', arg: 'a,b', help: 'LoRA target modules', default: 'all linear layers' },
    dtype: WEIGHT_DTYPE_OPTION,
    measure: { type: 'boolean', help: 'load the model and run one training step of that shape; report the measured peak' },
    json: { type: 'boolean', help: 'print one JSON object' },
  },
};

export interface InfoResult {
  model: string;
  architecture: string | null;
  modelType: string;
  family: string;
  layers: number;
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  tieWordEmbeddings: boolean;
  parameters: number;
  /** safetensors dtype -> number of tensors stored in it. */
  diskDtypes: Record<string, number>;
  torchDtype: string | null;
  hasTokenizer: boolean;
  hasChatTemplate: boolean;
  job: { batch: number; seq: number; rank: number; dtype: WeightDtype; targetModules: string[]; seqCapped: boolean };
  estimate: MemoryEstimate;
  /** Present with --measure. */
  measured?: { peakBytes: number; loss: number };
}

function splitList(values: string[]): string[] {
  return values.flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
}

export async function runInfo(ctx: CliContext, { values, positionals }: ParsedCommand): Promise<number> {
  const path = positionals[0]!;
  const batch = numberOption(values, 'batch', 4, { integer: true, min: 1 });
  const seqWanted = numberOption(values, 'seq', 512, { integer: true, min: 1 });
  const rank = numberOption(values, 'rank', 16, { integer: true, min: 1 });
  const dtype = weightDtypeOption(values);

  const folder = await readModelFolder(path);
  const c = folder.config;
  const targets = splitList(listOption(values, 'target-modules'));
  const targetModules = targets.length ? targets : defaultLoraConfig(c).targetModules;
  const seq = Math.min(seqWanted, c.maxPositions);
  const diskDtypes: Record<string, number> = {};
  for (const t of folder.files.weights.tensors.values()) diskDtypes[t.dtype] = (diskDtypes[t.dtype] ?? 0) + 1;
  const rawConfig = folder.files.config as { architectures?: unknown };
  const architecture = Array.isArray(rawConfig.architectures) && typeof rawConfig.architectures[0] === 'string' ? rawConfig.architectures[0] : null;
  const tok = folder.files.tokenizerConfig as { chat_template?: unknown } | null;

  const result: InfoResult = {
    model: path,
    architecture,
    modelType: c.modelType,
    family: c.family,
    layers: c.layers,
    hidden: c.hidden,
    intermediate: c.intermediate,
    heads: c.heads,
    kvHeads: c.kvHeads,
    headDim: c.headDim,
    vocabSize: c.vocabSize,
    maxPositions: c.maxPositions,
    tieWordEmbeddings: c.tieWordEmbeddings,
    parameters: countParameters(c),
    diskDtypes,
    torchDtype: c.torchDtype,
    hasTokenizer: folder.files.tokenizerJson !== null,
    hasChatTemplate: folder.files.chatTemplate !== null || (tok !== null && tok.chat_template !== undefined && tok.chat_template !== null),
    job: { batch, seq, rank, dtype, targetModules, seqCapped: seq < seqWanted },
    estimate: estimateLoraJobMemory(c, { batch, seq, rank, dtype, targetModules }),
  };
  // Checked before any GPU work so a typo fails fast.
  const available = new Set(defaultLoraConfig(c).targetModules);
  const unknown = targetModules.filter((t) => !available.has(t));
  if (unknown.length) throw new CliError(`--target-modules ${unknown.join(', ')} not in this ${c.modelType} model (it has ${[...available].join(', ')})`);

  if (flag(values, 'measure')) {
    const gpu = await ctx.gpu();
    result.estimate = estimateLoraJobMemory(c, { batch, seq, rank, dtype, targetModules, maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize });
    result.measured = await measure(ctx, path, result);
  }

  if (flag(values, 'json')) {
    ctx.print(JSON.stringify(result));
    return 0;
  }
  printInfo(ctx, result);
  return 0;
}

/** One real training step (forward, backward, AdamW) of the job's shape; the pool's peak bytes. */
async function measure(ctx: CliContext, path: string, info: InfoResult): Promise<{ peakBytes: number; loss: number }> {
  const gpu = await ctx.gpu();
  // Idle pooled buffers from earlier work would count towards the peak.
  gpu.pool.trim();
  gpu.pool.resetPeak();
  const before = gpu.memory().liveBytes;
  const opened = await openModel(ctx, path, info.job.dtype);
  const { model, config } = opened;
  const adapter = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: info.job.rank, alpha: 2 * info.job.rank, targetModules: info.job.targetModules }));
  const optimizer = new LoraOptimizer(gpu, adapter);
  try {
    adapter.initialize(0);
    const { batch: B, seq: T } = info.job;
    const rng = new Rng(1);
    const tokens = Uint32Array.from({ length: B * T }, () => rng.int(config.vocabSize));
    const targets = Uint32Array.from({ length: B * T }, () => rng.int(config.vocabSize));
    const mask = new Float32Array(B * T).fill(1);
    const totals = (await model.forwardBackward({ B, T, tokens, targets, mask }, adapter, { gradScale: 1 / (B * T), accumulate: false }))!;
    optimizer.apply(DEFAULT_OPTIMIZER);
    await gpu.sync();
    return { peakBytes: gpu.memory().peakBytes - before, loss: totals.lossSum / totals.tokens };
  } finally {
    optimizer.destroy();
    adapter.destroy();
    model.destroy();
  }
}

function printInfo(ctx: CliContext, r: InfoResult): void {
  const p = (label: string, value: string | number) => ctx.print(`${label.padEnd(22)}${value}`);
  p('model', r.model);
  p('architecture', `${r.architecture ?? '?'} (model_type ${r.modelType}, ${r.family} family)`);
  p('layers', r.layers);
  p('hidden', r.hidden);
  p('intermediate', r.intermediate);
  p('heads', `${r.heads} (kv heads ${r.kvHeads}, head dim ${r.headDim})`);
  p('vocab', r.vocabSize);
  p('context', `${r.maxPositions} positions`);
  p('tied embeddings', r.tieWordEmbeddings ? 'yes' : 'no');
  p('parameters', `${r.parameters.toLocaleString('en-US')} (${(r.parameters / 1e6).toFixed(2)} M)`);
  const dtypes = Object.entries(r.diskDtypes).map(([d, n]) => `${d} x${n}`).join(', ');
  p('weights on disk', `${dtypes}${r.torchDtype ? ` (torch_dtype ${r.torchDtype})` : ''}`);
  p('tokenizer', `${r.hasTokenizer ? 'yes' : 'no'}, chat template ${r.hasChatTemplate ? 'yes' : 'no'}`);
  const j = r.job;
  ctx.print();
  ctx.print(
    `LoRA job memory estimate: batch ${j.batch} x seq ${j.seq}${j.seqCapped ? ' (capped at the context)' : ''}, rank ${j.rank}, ` +
      `weights ${j.dtype}, targets ${j.targetModules.join(',')}`,
  );
  const e = r.estimate;
  p('  weights', formatBytes(e.weightsBytes));
  p('  LoRA + grads + Adam', `${formatBytes(e.loraBytes)} (${e.loraParameters.toLocaleString('en-US')} trainable parameters)`);
  p('  saved residuals', formatBytes(e.residualBytes));
  p('  layer scratch', formatBytes(e.layerScratchBytes));
  p(
    '  kept activations',
    e.recompute === 'never'
      ? `${formatBytes(e.keptActivationsBytes)} (every layer's kept for the backward: it fits the budget)`
      : e.keptLayers > 0
        ? `${formatBytes(e.keptActivationsBytes)} (${e.keptLayers} of ${r.layers} layers kept; the others recomputed before their backward to fit the budget)`
        : 'none (each layer recomputed before its backward: keeping them would not fit the budget)',
  );
  p('  logits', `${formatBytes(e.logitsBytes)} (${e.keptLogits ? "every vocabulary chunk's, kept for the backward: it fits the budget" : 'one vocabulary chunk at a time'})`);
  p('  optimizer scratch', formatBytes(e.optimizerScratchBytes));
  p('  kernel parameters', `${formatBytes(e.kernelParamsBytes)} (approximate)`);
  p('  total', formatBytes(e.totalBytes));
  if (r.measured) {
    const ratio = r.measured.peakBytes / e.totalBytes;
    p('measured peak', `${formatBytes(r.measured.peakBytes)} (${(ratio * 100).toFixed(1)}% of the estimate; step loss ${r.measured.loss.toFixed(4)})`);
  }
}
