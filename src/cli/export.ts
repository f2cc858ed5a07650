// whittle export: an adapter out of Whittle in the form the next tool wants: a PEFT folder, the
// base model with the adapter merged in (Hugging Face folder), that merged model as ONNX in a
// transformers.js folder, or the training job as an Axolotl config + TRL script for a cluster.
// Merging and ONNX run on the CPU from the files (no GPU); only `peft` loads the model, to
// validate the adapter by importing it.

import { readFile, readdir, rm, stat, mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import {
  ClusterHandoffError,
  exportClusterConfig,
  promptCompletionToMessages,
  type ClusterJob,
} from '../formats/clusterHandoff';
import { bytesModelDir, loadHfModelDir, SAFETENSORS_INDEX, type HfModelFiles } from '../formats/hfModelDir';
import { DEFAULT_MAX_SHARD_BYTES, exportMergedModel, MergeError, readPeftAdapterTensors, type AdapterTensors, type MergedDtype } from '../formats/mergedModel';
import type { ClosableModelDir } from '../formats/nodeByteSource';
import { exportTransformersJsFolder, OnnxExportError } from '../formats/onnx';
import { ADAPTER_CONFIG_FILE, ADAPTER_MODEL_FILE, exportPeftAdapter, importPeftAdapter, PeftAdapterError } from '../formats/peft';
import { SafetensorsError } from '../formats/safetensors';
import { zipFiles } from '../formats/zip';
import { parseModelConfig, type ModelConfig } from '../model/config';
import { loadCausalLM } from '../model/load';
import type { LoraConfig } from '../model/lora';
import { HyperparameterError, modelResolveContext, resolveHyperparameters, type Hyperparameters } from '../train/hyperparameters';
import { nodeWriteFs, writeFileAtomic, type WriteFs } from '../util/atomicWrite';
import { choiceOption, flag, numberOption, requiredString, stringOption, type CommandSpec, type ParsedCommand, type OptionSpec, type OptionValues } from './args';
import { loadDataset } from './dataset';
import { CliError, formatBytes, type CliContext } from './io';
import { openDir, textTools } from './model';
import { hyperparameterRequest, JOB_FILE, trainSpec } from './train';

export const EXPORT_FORMATS = ['peft', 'merged', 'onnx', 'cluster'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The train flags that describe a job's hyperparameters, for `--format cluster` without --job. */
const HYPERPARAMETER_FLAGS = [
  'epochs',
  'batch-size',
  'grad-accum',
  'learning-rate',
  'lr-multiplier',
  'schedule',
  'warmup',
  'warmup-ratio',
  'weight-decay',
  'max-grad-norm',
  'adam-beta1',
  'adam-beta2',
  'adam-eps',
  'lora-r',
  'lora-alpha',
  'lora-dropout',
  'target-modules',
  'rslora',
  'max-seq-len',
  'seed',
  'eval-every',
] as const;

const hyperparameterOptions: Record<string, OptionSpec> = Object.fromEntries(
  HYPERPARAMETER_FLAGS.map((name) => {
    const spec = trainSpec.options[name]!;
    return [name, { ...spec, help: `cluster: ${spec.help}` }];
  }),
);

export const exportSpec: CommandSpec = {
  name: 'export',
  positionals: ['modelDir'],
  summary: 'Write an adapter as a PEFT folder, a merged Hugging Face model, an ONNX (transformers.js) folder, or a job as Axolotl + TRL files.',
  options: {
    out: { type: 'string', arg: 'DIR', help: 'output folder, new or empty (required); with --zip the archive DIR.zip' },
    format: { type: 'string', arg: EXPORT_FORMATS.join('|'), help: 'what to write (required; see below)' },
    adapter: { type: 'string', arg: 'DIR', help: 'PEFT adapter folder (e.g. the --out of whittle train); required for peft and merged' },
    dtype: { type: 'string', arg: 'F32|F16|BF16', help: 'merged: storage dtype of the floating-point weights (either case)', default: "the base model's" },
    'max-shard-bytes': { type: 'string', arg: 'N', help: 'merged: largest safetensors shard', default: String(DEFAULT_MAX_SHARD_BYTES) },
    opset: { type: 'string', arg: 'N', help: 'onnx: ONNX opset, 17 to 21', default: '17' },
    zip: { type: 'boolean', help: 'write one zip archive instead of a folder' },
    job: { type: 'string', arg: 'DIR', help: `cluster: a whittle train --out folder; its ${JOB_FILE} gives the hyperparameters and data files` },
    'train-file': {
      type: 'string',
      arg: 'NAME',
      help: "cluster: training JSONL's name in the folder (with --job; default the job's) or, without --job, its path",
    },
    'validation-file': { type: 'string', arg: 'NAME', help: 'cluster: validation JSONL, as --train-file' },
    'base-model': { type: 'string', arg: 'ID', help: 'cluster: Hub repo id or cluster path of the base model', default: 'modelDir as an absolute path' },
    ...hyperparameterOptions,
  },
  notes: [
    'Formats:',
    '  peft     the adapter re-exported after importing it onto the model (checks it fits); mainly with --zip',
    '  merged   base + adapter merged (W + scale B A) into a Hugging Face folder, sharded above --max-shard-bytes',
    '  onnx     the merged model as onnx/model.onnx with config and tokenizer files (transformers.js layout);',
    '           without --adapter, the base model alone',
    '  cluster  axolotl.yaml, train_trl.py and README.md, with the data files copied in when they exist;',
    `           hyperparameters from --job DIR (${JOB_FILE}) or from the train flags (--epochs ... --eval-every, as`,
    '           whittle train takes them; auto values are resolved against --train-file)',
  ],
};

type Files = Map<string, Uint8Array>;

const encoder = new TextEncoder();
const text = (s: string) => encoder.encode(s);

async function isFolder(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}


/** Adapter problems name the adapter and the model, whichever layer found them. */
function adapterMismatch(e: unknown, adapterPath: string, modelDir: string): never {
  if (e instanceof PeftAdapterError || e instanceof MergeError || e instanceof SafetensorsError) {
    throw new CliError(`the adapter in ${adapterPath} does not fit the model in ${modelDir}: ${e.message}`);
  }
  throw e;
}

async function openAdapterFolder(path: string): Promise<ClosableModelDir> {
  const dir = await openDir(path, 'adapter folder');
  for (const name of [ADAPTER_CONFIG_FILE, ADAPTER_MODEL_FILE]) {
    if (!dir.fileNames.includes(name)) {
      await dir.close();
      throw new CliError(`adapter folder ${path} has no ${name} (is it a PEFT adapter?)`);
    }
  }
  return dir;
}

async function readAdapterConfig(dir: ClosableModelDir, path: string): Promise<unknown> {
  const source = await dir.open(ADAPTER_CONFIG_FILE);
  try {
    return JSON.parse(new TextDecoder().decode(await source.read(0, source.size)));
  } catch (e) {
    throw new CliError(`${join(path, ADAPTER_CONFIG_FILE)} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Writes the files as a folder (which must be new or empty) or as one zip archive. Returns where. */
async function writeOutput(out: string, files: Files, zip: boolean, fs: WriteFs = nodeWriteFs): Promise<string> {
  if (zip) {
    const path = out.replace(/[/\\]+$/, '') + '.zip';
    if ((await isFile(path)) || (await isFolder(path))) throw new CliError(`${path} already exists; choose another --out or remove it`);
    await mkdir(dirname(resolve(path)), { recursive: true });
    await writeFileAtomic(path, zipFiles(files), fs);
    return path;
  }
  if (await isFile(out)) throw new CliError(`--out ${out} is a file`);
  if ((await isFolder(out)) && (await readdir(out)).length > 0) {
    throw new CliError(`--out ${out} is not empty; choose a new or empty folder`);
  }
  // A failed export (a full disk, say) leaves no part of itself behind.
  const written: string[] = [];
  try {
    for (const [name, data] of files) {
      const path = join(out, name);
      await mkdir(dirname(path), { recursive: true });
      await writeFileAtomic(path, data, fs);
      written.push(path);
    }
  } catch (e) {
    for (const path of written) await rm(path, { force: true });
    throw e;
  }
  return out;
}

function describeFiles(files: Files): string[] {
  return [...files].sort(([a], [b]) => a.localeCompare(b)).map(([name, data]) => `  ${name}  ${formatBytes(data.byteLength)}`);
}

// ---------------------------------------------------------------------------------------------
// peft

async function peftFiles(ctx: CliContext, modelDir: string, adapterPath: string): Promise<Files> {
  const modelFolder = await openDir(modelDir, 'model folder');
  const gpu = await ctx.gpu();
  let loaded;
  try {
    // f16 is enough: the import checks names and shapes, and A and B are kept in f32 regardless.
    loaded = await loadCausalLM(gpu, modelFolder, { dtype: 'f16' });
  } finally {
    await modelFolder.close();
  }
  const { model } = loaded;
  const dir = await openAdapterFolder(adapterPath);
  try {
    const original = await readAdapterConfig(dir, adapterPath);
    const adapter = await importPeftAdapter(gpu, model, dir).catch((e: unknown) => adapterMismatch(e, adapterPath, modelDir));
    try {
      const recorded = (original as { base_model_name_or_path?: unknown }).base_model_name_or_path;
      const exported = await exportPeftAdapter(adapter, { baseModelNameOrPath: typeof recorded === 'string' && recorded ? recorded : resolve(modelDir) });
      return new Map([
        [ADAPTER_MODEL_FILE, exported.adapterModel],
        [ADAPTER_CONFIG_FILE, text(JSON.stringify(exported.adapterConfig, null, 2) + '\n')],
      ]);
    } finally {
      adapter.destroy();
    }
  } finally {
    await dir.close();
    model.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// merged, onnx

/** Files of the base folder that a merged folder carries along as they are (tokenizer extras). */
const NOT_CARRIED = /(\.safetensors|\.bin|\.pt|\.pth|\.gguf|\.onnx|\.onnx_data|\.h5|\.msgpack)$|^(README\.md|\.gitattributes)$/i;
const MAX_CARRIED_BYTES = 64 * 1024 * 1024;

async function extraFiles(modelDir: string, names: readonly string[]): Promise<Files> {
  const out: Files = new Map();
  for (const name of names) {
    if (NOT_CARRIED.test(name) || name === SAFETENSORS_INDEX) continue;
    const path = join(modelDir, name);
    if ((await stat(path)).size > MAX_CARRIED_BYTES) continue;
    out.set(name, new Uint8Array(await readFile(path)));
  }
  return out;
}

interface MergeOptions {
  dtype?: MergedDtype;
  maxShardBytes: number;
  onProgress?: (done: number, total: number) => void;
}

/** Base + adapter (or the base alone, with no adapter) as merged Hugging Face files. */
async function mergedFiles(modelDir: string, adapterPath: string | undefined, options: MergeOptions): Promise<{ files: Files; config: ModelConfig }> {
  const modelFolder = await openDir(modelDir, 'model folder');
  try {
    const base: HfModelFiles = await loadHfModelDir(modelFolder);
    const config = parseModelConfig(base.config);
    let lora: LoraConfig = { r: 1, alpha: 1, dropout: 0, targetModules: [], useRslora: false };
    let tensors: AdapterTensors = new Map();
    if (adapterPath !== undefined) {
      const dir = await openAdapterFolder(adapterPath);
      try {
        const adapterConfig = await readAdapterConfig(dir, adapterPath);
        ({ lora, tensors } = await readPeftAdapterTensors({ adapterConfig, adapterModel: await dir.open(ADAPTER_MODEL_FILE) }, config).catch((e: unknown) =>
          adapterMismatch(e, adapterPath, modelDir),
        ));
      } finally {
        await dir.close();
      }
    }
    const files = await exportMergedModel(base, tensors, lora, config, {
      ...(options.dtype ? { dtype: options.dtype } : {}),
      maxShardBytes: options.maxShardBytes,
      extraFiles: await extraFiles(modelDir, modelFolder.fileNames),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    }).catch((e: unknown) => (adapterPath === undefined ? Promise.reject(e as Error) : adapterMismatch(e, adapterPath, modelDir)));
    return { files, config };
  } finally {
    await modelFolder.close();
  }
}

async function onnxFiles(modelDir: string, adapterPath: string | undefined, opset: number): Promise<Files> {
  // Merged in f32 whatever the base's dtype: the ONNX graph stores f32 weights.
  const { files, config } = await mergedFiles(modelDir, adapterPath, { dtype: 'F32', maxShardBytes: Number.MAX_SAFE_INTEGER });
  const weights = (await loadHfModelDir(bytesModelDir(files))).weights;
  try {
    return await exportTransformersJsFolder(config, weights, files, { opset });
  } catch (e) {
    if (e instanceof OnnxExportError) throw new CliError(`the model cannot be exported to ONNX: ${e.message}`);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// cluster


interface JobJson {
  model?: unknown;
  train?: unknown;
  validation?: unknown;
  hyperparameters?: unknown;
}

async function readJob(jobDir: string): Promise<{ hp: Hyperparameters; train: string | null; validation: string | null; model: string | null }> {
  if (!(await isFolder(jobDir))) throw new CliError(`--job ${jobDir} ${(await isFile(jobDir)) ? 'is not a folder' : 'does not exist'}`);
  const path = join(jobDir, JOB_FILE);
  if (!(await isFile(path))) throw new CliError(`--job ${jobDir} has no ${JOB_FILE} (is it the --out folder of whittle train?)`);
  let job: JobJson;
  try {
    job = JSON.parse(await readFile(path, 'utf8')) as JobJson;
  } catch (e) {
    throw new CliError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  const hp = job.hyperparameters as Partial<Hyperparameters> | undefined;
  const numbers = ['epochs', 'batchSize', 'gradientAccumulation', 'learningRate', 'warmupSteps', 'maxSeqLen', 'seed', 'evalEvery'] as const;
  const bad: string[] = typeof hp !== 'object' || hp === null ? ['hyperparameters'] : numbers.filter((k) => typeof hp[k] !== 'number');
  if (!bad.length && (typeof hp!.lora !== 'object' || hp!.lora === null || !Array.isArray(hp!.lora.targetModules))) bad.push('lora');
  if (bad.length) throw new CliError(`${path} lacks the resolved hyperparameters (${bad.join(', ')}); was it written by whittle train?`);
  const str = (v: unknown) => (typeof v === 'string' && v ? v : null);
  return { hp: hp as Hyperparameters, train: str(job.train), validation: str(job.validation), model: str(job.model) };
}

/** A JSONL file's format for the cluster tools, and its contents in that format. */
function clusterData(content: string, path: string): { format: 'chat' | 'text'; content: string } {
  const kinds = new Set<string>();
  for (const line of content.split(/\r?\n/)) {
    if (!line.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue; // whittle validate reports these; the cluster tools will too.
    }
    if (typeof value !== 'object' || value === null) continue;
    if ('messages' in value) kinds.add('chat');
    else if ('prompt' in value || 'completion' in value) kinds.add('prompt_completion');
    else if ('text' in value) kinds.add('text');
  }
  if (kinds.size > 1) throw new CliError(`${path} mixes ${[...kinds].join(' and ')} lines; the cluster tools take one format per file`);
  if (kinds.has('text')) return { format: 'text', content };
  if (kinds.has('prompt_completion')) {
    try {
      return { format: 'chat', content: promptCompletionToMessages(content) };
    } catch (e) {
      if (e instanceof ClusterHandoffError) throw new CliError(`${path}: ${e.message}`);
      throw e;
    }
  }
  return { format: 'chat', content };
}

async function clusterFiles(ctx: CliContext, modelDir: string, values: OptionValues): Promise<Files> {
  if (stringOption(values, 'adapter') !== undefined) throw new CliError('--adapter is not used by --format cluster (the cluster trains a new adapter)');
  const given = HYPERPARAMETER_FLAGS.filter((f) => values[f] !== undefined);
  const jobDir = stringOption(values, 'job');
  const trainFlag = stringOption(values, 'train-file');
  const validFlag = stringOption(values, 'validation-file');

  let hp: Hyperparameters;
  let trainSource: string | null;
  let validSource: string | null;
  let trainName: string;
  let validName: string | null;
  if (jobDir !== undefined) {
    if (given.length) throw new CliError(`--${given[0]} cannot be combined with --job: the hyperparameters come from its ${JOB_FILE}`);
    const job = await readJob(jobDir);
    hp = job.hp;
    if (job.model !== null && job.model !== resolve(modelDir)) ctx.note(`note: the job trained ${job.model}; the config names ${stringOption(values, 'base-model') ?? resolve(modelDir)}`);
    trainSource = job.train;
    validSource = job.validation;
    if (trainSource === null && trainFlag === undefined) throw new CliError(`${join(jobDir, JOB_FILE)} names no training file; give --train-file NAME`);
    trainName = trainFlag ?? basename(trainSource!);
    validName = validFlag ?? (validSource !== null ? basename(validSource) : null);
  } else {
    if (trainFlag === undefined) throw new CliError('--format cluster needs --job DIR (a whittle train --out folder) or --train-file PATH with the hyperparameter flags');
    const folder = await readModelFolderFiles(modelDir);
    const config = parseModelConfig(folder.config);
    const data = await loadDataset(trainFlag, textTools(folder, modelDir), undefined, 'training file');
    try {
      hp = resolveHyperparameters(hyperparameterRequest(values), data.examples.count, { model: modelResolveContext(config, folder.finetune), longestExample: data.examples.longest });
    } catch (e) {
      if (e instanceof HyperparameterError) throw new CliError(e.message);
      throw e;
    }
    trainSource = trainFlag;
    validSource = validFlag ?? null;
    if (validSource !== null && !(await isFile(validSource))) throw new CliError(`validation file ${validSource} does not exist`);
    trainName = basename(trainFlag);
    validName = validSource !== null ? basename(validSource) : null;
  }
  if (validName !== null && validName === trainName && validSource !== null && trainSource !== null && resolve(validSource) !== resolve(trainSource)) {
    validName = `validation_${validName}`;
  }

  const files: Files = new Map();
  let format: 'chat' | 'text' | null = null;
  for (const [source, name] of [
    [trainSource, trainName],
    [validSource, validName],
  ] as const) {
    if (name === null || files.has(name)) continue;
    if (source === null || !(await isFile(source))) {
      ctx.note(`note: ${source ?? name} is not here; copy it into the folder as ${name}`);
      continue;
    }
    const data = clusterData(await readFile(source, 'utf8'), source);
    if (format !== null && data.format !== format) throw new CliError('the training and validation files have different formats (chat vs text)');
    format = data.format;
    files.set(name, text(data.content));
  }

  const job: ClusterJob = {
    baseModel: stringOption(values, 'base-model') ?? resolve(modelDir),
    trainFileName: trainName,
    validationFileName: validName,
    datasetFormat: format ?? 'chat',
    hyperparameters: hp,
    jobName: basename(resolve(jobDir ?? stringOption(values, 'out')!)),
  };
  let handoff;
  try {
    handoff = exportClusterConfig(job);
  } catch (e) {
    if (e instanceof ClusterHandoffError) throw new CliError(e.message);
    throw e;
  }
  files.set('axolotl.yaml', text(handoff.axolotlYaml));
  files.set('train_trl.py', text(handoff.trlScript));
  files.set('README.md', text(handoff.readme));
  return files;
}

/** config.json and tokenizer files (weights headers too, then closed). */
async function readModelFolderFiles(path: string): Promise<HfModelFiles> {
  const dir = await openDir(path, 'model folder');
  try {
    return await loadHfModelDir(dir);
  } finally {
    await dir.close();
  }
}

// ---------------------------------------------------------------------------------------------

export async function runExport(ctx: CliContext, { values, positionals }: ParsedCommand): Promise<number> {
  const modelDir = positionals[0]!;
  const out = requiredString(exportSpec, values, 'out', '--out DIR');
  const formatText = stringOption(values, 'format');
  if (formatText === undefined) throw new CliError(`--format is required: one of ${EXPORT_FORMATS.join(', ')}`);
  const format = choiceOption(values, 'format', EXPORT_FORMATS, 'peft');
  const adapter = stringOption(values, 'adapter');
  const zip = flag(values, 'zip');

  const onlyFor = (name: string, formats: readonly ExportFormat[]) => {
    if (values[name] !== undefined && !formats.includes(format)) throw new CliError(`--${name} applies to --format ${formats.join(' or ')}, not ${format}`);
  };
  onlyFor('dtype', ['merged']);
  onlyFor('max-shard-bytes', ['merged']);
  onlyFor('opset', ['onnx']);
  for (const name of ['job', 'train-file', 'validation-file', 'base-model', ...HYPERPARAMETER_FLAGS]) onlyFor(name, ['cluster']);

  let files: Files;
  if (format === 'peft' || format === 'merged') {
    if (adapter === undefined) throw new CliError(`--format ${format} needs --adapter DIR (a PEFT adapter folder, e.g. the --out of whittle train)`);
  }
  if (format === 'peft') {
    files = await peftFiles(ctx, modelDir, adapter!);
  } else if (format === 'merged') {
    // Either case: the other commands take f32/f16, safetensors names them F32/F16.
    const dtypeText = stringOption(values, 'dtype')?.toUpperCase();
    const dtype = dtypeText === undefined ? undefined : choiceOption({ ...values, dtype: dtypeText }, 'dtype', ['F32', 'F16', 'BF16'] as const, 'F32');
    const maxShardBytes = numberOption(values, 'max-shard-bytes', DEFAULT_MAX_SHARD_BYTES, { integer: true, min: 1 });
    // Progress only for merges long enough to wonder about (big models).
    let lastNote = Date.now();
    ({ files } = await mergedFiles(modelDir, adapter, {
      ...(dtype ? { dtype } : {}),
      maxShardBytes,
      onProgress: (done, total) => {
        if (Date.now() - lastNote < 2000) return;
        lastNote = Date.now();
        ctx.note(`merged ${done}/${total} tensors`);
      },
    }));
  } else if (format === 'onnx') {
    const opset = numberOption(values, 'opset', 17, { integer: true, min: 17, max: 21 });
    files = await onnxFiles(modelDir, adapter, opset);
  } else {
    files = await clusterFiles(ctx, modelDir, values);
  }

  const where = await writeOutput(out, files, zip, ctx.io.writeFs);
  const total = [...files.values()].reduce((s, f) => s + f.byteLength, 0);
  ctx.print(`${format} export written to ${where} (${files.size} file${files.size === 1 ? '' : 's'}, ${formatBytes(total)}${zip ? ' before zipping' : ''}):`);
  for (const line of describeFiles(files)) ctx.print(line);
  return 0;
}
