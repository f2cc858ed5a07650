// Model folders, tokenizers and adapter folders on disk, for the CLI commands.

import { mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { ChatTemplate } from '../data/chatTemplate';
import type { Gpu } from '../gpu';
import { cachedKernelPlan } from '../kernels/kernelPlanChoice';
import type { KernelPlanRecord } from '../kernels/matmulPlans';
import { defaultTuningCachePath, nodeTuningStore, nodeWebGpuRuntime } from '../kernels/tuningStoreNode';
import { TextTokenizer } from '../data/tokenizer';
import { loadHfModelDir, type HfModelFiles } from '../formats/hfModelDir';
import { nodeModelDir, type ClosableModelDir } from '../formats/nodeByteSource';
import { ADAPTER_CONFIG_FILE, ADAPTER_MODEL_FILE, importPeftAdapter, type PeftExport } from '../formats/peft';
import { parseModelConfig, type ModelConfig } from '../model/config';
import { loadCausalLM } from '../model/load';
import type { LoraAdapter } from '../model/lora';
import type { CausalLM } from '../model/transformer';
import type { WeightDtype } from '../model/weights';
import { writeFileAtomic } from '../util/atomicWrite';
import { CliError, type CliContext } from './io';

export async function openDir(path: string, what: string): Promise<ClosableModelDir> {
  let isDir = false;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch {
    throw new CliError(`${what} ${path} does not exist`);
  }
  if (!isDir) throw new CliError(`${what} ${path} is not a folder`);
  return nodeModelDir(path);
}

export interface ModelFolder {
  path: string;
  files: HfModelFiles;
  config: ModelConfig;
}

/** config.json, tokenizer files and weight headers, without touching the GPU. */
export async function readModelFolder(path: string): Promise<ModelFolder> {
  const dir = await openDir(path, 'model folder');
  try {
    const files = await loadHfModelDir(dir);
    return { path, files, config: parseModelConfig(files.config) };
  } finally {
    await dir.close();
  }
}

export interface TextTools {
  tokenizer: TextTokenizer;
  /** null when the model has no chat template (chat data and --chat are then refused). */
  template: ChatTemplate | null;
}

export function textTools(files: HfModelFiles, path: string): TextTools {
  if (files.tokenizerJson === null) throw new CliError(`model folder ${path} has no tokenizer.json`);
  const tokenizer = TextTokenizer.fromJson(files.tokenizerJson, files.tokenizerConfig, files.chatTemplate === null ? {} : { chatTemplate: files.chatTemplate });
  return { tokenizer, template: tokenizer.chatTemplate === null ? null : ChatTemplate.fromTokenizer(tokenizer) };
}

export interface OpenModel extends TextTools {
  path: string;
  model: CausalLM;
  config: ModelConfig;
  files: HfModelFiles;
}

/** Loads a model folder onto the GPU, with its tokenizer and chat template. */
export async function openModel(ctx: CliContext, path: string, dtype: WeightDtype): Promise<OpenModel> {
  const dir = await openDir(path, 'model folder');
  try {
    const files = await loadHfModelDir(dir);
    const tools = textTools(files, path);
    const gpu = await ctx.gpu();
    const { model, config } = await loadCausalLM(gpu, dir, { dtype });
    return { path, model, config, files, ...tools };
  } finally {
    await dir.close();
  }
}

export async function loadAdapterFolder(ctx: CliContext, model: CausalLM, path: string): Promise<LoraAdapter> {
  const dir = await openDir(path, 'adapter folder');
  try {
    return await importPeftAdapter(await ctx.gpu(), model, dir);
  } finally {
    await dir.close();
  }
}

/** Writes adapter_model.safetensors and adapter_config.json into `dir` (created if needed). */
export async function writeAdapterFolder(dir: string, files: PeftExport): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, ADAPTER_MODEL_FILE), files.adapterModel);
  await writeFileAtomic(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(files.adapterConfig, null, 2) + '\n');
}

/** base_model_name_or_path for an adapter trained on the model at `path`: its absolute path. */
export function baseModelName(path: string): string {
  return resolve(path);
}

/** Token id for padded positions: the tokenizer's pad, else EOS, else 0 (masked anyway). */
export function padTokenId(tools: TextTools, config: ModelConfig): number {
  return tools.tokenizer.pad?.id ?? config.padTokenId ?? tools.tokenizer.eos?.id ?? config.eosTokenIds[0] ?? 0;
}

/**
 * The kernel plan of a command that runs no tuning pass (eval, generate), applied to `gpu`: the
 * launches `train` tuned and cached for this device, else the rules.
 */
export function planCachedKernels(ctx: CliContext, gpu: Gpu): Promise<KernelPlanRecord> {
  return cachedKernelPlan(gpu, { store: nodeTuningStore(defaultTuningCachePath()), runtime: nodeWebGpuRuntime(), log: (line) => ctx.note(`  ${line}`) });
}
