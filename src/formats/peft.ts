// PEFT's LoRA adapter layout (what `PeftModel.save_pretrained` writes and `PeftModel.from_pretrained`
// reads): adapter_config.json + adapter_model.safetensors with keys
// `base_model.model.<module path>.lora_A.weight` [r, in] and `...lora_B.weight` [out, r].
// The module path is the one `AutoModelForCausalLM` names: `model.layers.0.self_attn.q_proj` for the
// llama family, `transformer.h.0.attn.c_attn` for GPT-2 (whose Conv1D layers PEFT marks with
// fan_in_fan_out; that flag changes only how PEFT merges, not the A/B shapes).
// No Node imports: the browser exports and imports adapters with the same code.

import type { Gpu } from '../gpu';
import type { ModelConfig } from '../model/config';
import { GPT2_ALL_LINEAR, LLAMA_ALL_LINEAR, LoraAdapter, LoraConfigError, type LoraConfig } from '../model/lora';
import type { CausalLM } from '../model/transformer';
import type { ModelDir } from './hfModelDir';
import { bytesSource, readSafetensorsHeader, readTensor, SafetensorsError, writeSafetensors, type ByteSource } from './safetensors';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_MODEL_FILE = 'adapter_model.safetensors';

export class PeftAdapterError extends Error {
  override name = 'PeftAdapterError';
  constructor(
    message: string,
    /** The adapter_config.json field or tensor at fault, when there is one. */
    readonly field?: string,
  ) {
    super(message);
  }
}

/** adapter_config.json as Whittle writes it: the fields PEFT's LoraConfig reads. */
export interface PeftAdapterConfig {
  peft_type: 'LORA';
  task_type: 'CAUSAL_LM';
  base_model_name_or_path: string | null;
  revision: null;
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[];
  use_rslora: boolean;
  bias: 'none';
  fan_in_fan_out: boolean;
  inference_mode: boolean;
  modules_to_save: null;
  init_lora_weights: boolean;
  use_dora: boolean;
  layers_to_transform: null;
  layers_pattern: null;
  rank_pattern: Record<string, never>;
  alpha_pattern: Record<string, never>;
}

export interface PeftExport {
  /** adapter_model.safetensors bytes. */
  adapterModel: Uint8Array;
  /** adapter_config.json contents (JSON.stringify it to write the file). */
  adapterConfig: PeftAdapterConfig;
}

export interface PeftExportOptions {
  /** What PEFT records as base_model_name_or_path: a Hub repo id or a local path (null if unknown). */
  baseModelNameOrPath: string | null;
}

/** Reads the adapter's A and B back from the GPU and packs them as PEFT saves them (F32). */
export async function exportPeftAdapter(adapter: LoraAdapter, options: PeftExportOptions): Promise<PeftExport> {
  const tensors = await adapter.readTensors();
  const adapterModel = writeSafetensors(
    [...tensors].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: t.data })),
    // PEFT's safe_save_file writes this; transformers' loaders check for it.
    { format: 'pt' },
  );
  const c = adapter.config;
  const adapterConfig: PeftAdapterConfig = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: options.baseModelNameOrPath,
    revision: null,
    r: c.r,
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    target_modules: [...c.targetModules].sort(),
    use_rslora: c.useRslora,
    bias: 'none',
    fan_in_fan_out: adapter.modelConfig.conv1dWeights,
    inference_mode: true,
    modules_to_save: null,
    init_lora_weights: true,
    use_dora: false,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
  };
  return { adapterModel, adapterConfig };
}

// ---------------------------------------------------------------------------------------------
// Import

/** The two files of an adapter, already read (or a ByteSource for the weights). */
export interface PeftAdapterFiles {
  /** Parsed adapter_config.json. */
  adapterConfig: unknown;
  adapterModel: Uint8Array | ByteSource;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  return v === undefined ? 'missing' : JSON.stringify(v);
}

/** PEFT's own defaults for target_modules: null (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
const PEFT_DEFAULT_TARGETS: Record<string, string[]> = {
  llama: ['q_proj', 'v_proj'],
  mistral: ['q_proj', 'v_proj'],
  qwen2: ['q_proj', 'v_proj'],
  gpt2: ['c_attn'],
};

/** Every adaptable linear layer as PEFT names it (without `base_model.model.`), with its kind. */
function linearModules(config: ModelConfig): { path: string; kind: string }[] {
  const out: { path: string; kind: string }[] = [];
  const kinds = config.family === 'gpt2' ? ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] : [];
  for (let l = 0; l < config.layers; l++) {
    if (config.family === 'gpt2') {
      for (const k of kinds) out.push({ path: `transformer.h.${l}.${k}`, kind: k.slice(k.indexOf('.') + 1) });
    } else {
      for (const k of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) out.push({ path: `model.layers.${l}.self_attn.${k}`, kind: k });
      for (const k of ['gate_proj', 'up_proj', 'down_proj']) out.push({ path: `model.layers.${l}.mlp.${k}`, kind: k });
    }
  }
  return out;
}

/**
 * Turns PEFT's target_modules (a list of names or name suffixes, a regular expression matched
 * against whole module names, "all-linear", or null for PEFT's per-architecture default) into the
 * module kinds Whittle adapts. Whittle adapts a kind in every layer, so a target that picks only
 * some of a kind's layers (or one GPT-2 c_proj but not the other) is refused.
 */
export function resolveTargetModules(targets: unknown, config: ModelConfig): string[] {
  const modules = linearModules(config);
  const available = [...new Set(modules.map((m) => m.kind))];
  let selected: Set<string>;
  if (targets === null || targets === undefined) {
    return PEFT_DEFAULT_TARGETS[config.modelType] ?? (config.family === 'gpt2' ? GPT2_ALL_LINEAR : LLAMA_ALL_LINEAR);
  } else if (targets === 'all-linear') {
    selected = new Set(modules.map((m) => m.path));
  } else if (typeof targets === 'string') {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${targets})$`);
    } catch (e) {
      throw new PeftAdapterError(`target_modules ${show(targets)} is not a regular expression JavaScript understands: ${(e as Error).message}`, 'target_modules');
    }
    selected = new Set(modules.filter((m) => re.test(m.path)).map((m) => m.path));
    if (selected.size === 0) {
      throw new PeftAdapterError(
        `target_modules ${show(targets)} matches no module of this ${config.modelType} model (it has ${available.join(', ')})`,
        'target_modules',
      );
    }
  } else if (Array.isArray(targets) && targets.every((t) => typeof t === 'string')) {
    if (targets.length === 0) throw new PeftAdapterError('target_modules is an empty list: the adapter adapts no module', 'target_modules');
    selected = new Set();
    const missing: string[] = [];
    for (const t of targets as string[]) {
      const hits = modules.filter((m) => m.path === t || m.path.endsWith(`.${t}`));
      if (hits.length === 0) missing.push(t);
      for (const h of hits) selected.add(h.path);
    }
    if (missing.length > 0) {
      throw new PeftAdapterError(
        `target_modules ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not in this ${config.modelType} model ` +
          `(it has ${available.join(', ')}): the adapter was made for another architecture`,
        'target_modules',
      );
    }
  } else {
    throw new PeftAdapterError(`target_modules is ${show(targets)}; expected a list of module names, a regular expression or null`, 'target_modules');
  }
  const kinds: string[] = [];
  for (const kind of available) {
    const ofKind = modules.filter((m) => m.kind === kind);
    const hit = ofKind.filter((m) => selected.has(m.path));
    if (hit.length === 0) continue;
    if (hit.length < ofKind.length) {
      throw new PeftAdapterError(
        `target_modules adapts ${hit.length} of the ${ofKind.length} ${kind} modules (e.g. ${hit[0]!.path}); ` +
          `Whittle adapts a module kind in every layer or in none`,
        'target_modules',
      );
    }
    kinds.push(kind);
  }
  return kinds;
}

function emptyPattern(json: Json, field: string): void {
  const v = json[field];
  if (v === undefined || v === null) return;
  if (!isObject(v)) throw new PeftAdapterError(`${field} is ${show(v)}; expected an object`, field);
  if (Object.keys(v).length > 0) {
    throw new PeftAdapterError(
      `${field} ${show(v)} gives some modules their own ${field === 'rank_pattern' ? 'rank' : 'alpha'}; ` +
        'per-module ranks and alphas are not supported (one r and lora_alpha for every module)',
      field,
    );
  }
}

function numberField(json: Json, field: string, fallback: number, check: (v: number) => boolean, expected: string): number {
  const v = json[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) {
    throw new PeftAdapterError(`${field} is ${show(v)}; expected ${expected}`, field);
  }
  return v;
}

/**
 * adapter_config.json -> the LoraConfig of a Whittle adapter for this model, refusing what the
 * engine does not implement (other PEFT methods, DoRA, trained biases, per-module ranks, extra
 * trained modules) rather than loading a different adapter than the one saved.
 */
export function parsePeftConfig(json: unknown, config: ModelConfig): LoraConfig {
  if (!isObject(json)) throw new PeftAdapterError('adapter_config.json is not a JSON object');
  const peftType = json.peft_type;
  if (peftType !== 'LORA') {
    throw new PeftAdapterError(`peft_type is ${show(peftType)}; only LoRA adapters ("LORA") are supported`, 'peft_type');
  }
  const task = json.task_type;
  if (task !== undefined && task !== null && task !== 'CAUSAL_LM') {
    throw new PeftAdapterError(`task_type is ${show(task)}; only CAUSAL_LM adapters are supported`, 'task_type');
  }
  if (json.use_dora === true) {
    throw new PeftAdapterError('use_dora is true: DoRA adapters are not supported (only plain LoRA)', 'use_dora');
  }
  const bias = json.bias ?? 'none';
  if (bias !== 'none') {
    throw new PeftAdapterError(`bias is ${show(bias)}; adapters that train biases are not supported (only "none")`, 'bias');
  }
  emptyPattern(json, 'rank_pattern');
  emptyPattern(json, 'alpha_pattern');
  const saved = json.modules_to_save;
  if (saved !== undefined && saved !== null && !(Array.isArray(saved) && saved.length === 0)) {
    throw new PeftAdapterError(`modules_to_save is ${show(saved)}; adapters with fully trained extra modules are not supported`, 'modules_to_save');
  }
  for (const field of ['layers_to_transform', 'layers_pattern', 'layer_replication']) {
    const v = json[field];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) {
      throw new PeftAdapterError(`${field} is ${show(v)}; adapters on a subset of layers are not supported`, field);
    }
  }
  if (isObject(json.loftq_config) && Object.keys(json.loftq_config).length > 0) {
    throw new PeftAdapterError('loftq_config is set: LoftQ (quantized base) adapters are not supported', 'loftq_config');
  }
  // Defaults are PEFT's LoraConfig defaults, for configs written by older versions.
  const r = numberField(json, 'r', 8, (v) => Number.isInteger(v) && v >= 1, 'a positive integer');
  const alpha = numberField(json, 'lora_alpha', 8, (v) => v > 0, 'a positive number');
  const dropout = numberField(json, 'lora_dropout', 0, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
  const rs = json.use_rslora ?? false;
  if (typeof rs !== 'boolean') throw new PeftAdapterError(`use_rslora is ${show(rs)}; expected true or false`, 'use_rslora');
  const targetModules = resolveTargetModules(json.target_modules, config);
  return { r, alpha, dropout, targetModules, useRslora: rs };
}

async function filesFromDir(dir: ModelDir): Promise<PeftAdapterFiles> {
  const names = dir.fileNames;
  if (!names.includes(ADAPTER_CONFIG_FILE)) {
    throw new PeftAdapterError(`the adapter folder has no ${ADAPTER_CONFIG_FILE} (is it a PEFT adapter?)`);
  }
  if (!names.includes(ADAPTER_MODEL_FILE)) {
    if (names.includes('adapter_model.bin')) {
      throw new PeftAdapterError(
        'the adapter folder has adapter_model.bin (PyTorch pickle) but no adapter_model.safetensors; Whittle reads ' +
          'safetensors only (re-save with PEFT: model.save_pretrained(dir, safe_serialization=True))',
      );
    }
    throw new PeftAdapterError(`the adapter folder has no ${ADAPTER_MODEL_FILE}`);
  }
  const configSource = await dir.open(ADAPTER_CONFIG_FILE);
  const text = new TextDecoder().decode(await configSource.read(0, configSource.size));
  let adapterConfig: unknown;
  try {
    adapterConfig = JSON.parse(text);
  } catch (e) {
    throw new PeftAdapterError(`${ADAPTER_CONFIG_FILE} is not valid JSON: ${(e as Error).message}`);
  }
  return { adapterConfig, adapterModel: await dir.open(ADAPTER_MODEL_FILE) };
}

/**
 * Refuses an adapter holding NaN or infinite values (a diverged run's output): applied, it turns
 * every logit into NaN. Names the tensors, the first few when many.
 */
export function checkFiniteAdapterTensors(tensors: Iterable<readonly [string, Float32Array]>): void {
  const bad: string[] = [];
  let values = 0;
  for (const [name, data] of tensors) {
    let n = 0;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) n++;
    if (n > 0) bad.push(name);
    values += n;
  }
  if (bad.length === 0) return;
  const listed = bad.slice(0, 3).join(', ') + (bad.length > 3 ? ` and ${bad.length - 3} more` : '');
  throw new PeftAdapterError(
    `${ADAPTER_MODEL_FILE} holds ${values} non-finite value${values === 1 ? '' : 's'} (NaN or infinity) in ${listed}; the training that made it diverged`,
    bad[0],
  );
}

/**
 * Builds a LoraAdapter for `model` from a PEFT adapter (a folder, or its two files). Every tensor
 * the config implies must be present with this model's shapes, and no other tensor may be: an
 * adapter for another base model or architecture fails here with the tensor named. The
 * optimizer state starts cleared.
 */
export async function importPeftAdapter(gpu: Gpu, model: CausalLM, files: PeftAdapterFiles | ModelDir): Promise<LoraAdapter> {
  const { adapterConfig, adapterModel } = 'fileNames' in files ? await filesFromDir(files) : files;
  const config = model.config;
  const lora = parsePeftConfig(adapterConfig, config);
  const base = isObject(adapterConfig) && typeof adapterConfig.base_model_name_or_path === 'string' ? adapterConfig.base_model_name_or_path : null;
  const otherModel = base ? ` (the adapter was trained on ${base})` : '';

  const source = adapterModel instanceof Uint8Array ? bytesSource(adapterModel) : adapterModel;
  let header;
  try {
    header = await readSafetensorsHeader(source);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new PeftAdapterError(`${ADAPTER_MODEL_FILE}: ${e.message}`, e.tensor);
    throw e;
  }

  let adapter: LoraAdapter;
  try {
    adapter = new LoraAdapter(gpu, config, model.weights, lora);
  } catch (e) {
    if (e instanceof LoraConfigError) throw new PeftAdapterError(e.message, 'target_modules');
    throw e;
  }
  try {
    const expected = new Map<string, number[]>();
    for (const m of adapter.modules.values()) {
      expected.set(`${m.peftKey}.lora_A.weight`, [m.r, m.linear.inFeatures]);
      expected.set(`${m.peftKey}.lora_B.weight`, [m.linear.outFeatures, m.r]);
    }
    const missing = [...expected.keys()].filter((k) => !header.tensors.has(k));
    if (missing.length > 0) {
      throw new PeftAdapterError(
        `${ADAPTER_MODEL_FILE} lacks ${missing.length} of the ${expected.size} tensors its config implies, e.g. ${missing[0]}${otherModel}`,
        missing[0],
      );
    }
    const extra = [...header.tensors.keys()].filter((k) => !expected.has(k));
    if (extra.length > 0) {
      throw new PeftAdapterError(
        `${ADAPTER_MODEL_FILE} has ${extra.length} tensor${extra.length === 1 ? '' : 's'} this model has no place for, e.g. ${extra[0]} ` +
          `(target_modules ${lora.targetModules.join(', ')})`,
        extra[0],
      );
    }
    for (const [name, want] of expected) {
      const got = header.tensors.get(name)!;
      const isA = name.endsWith('.lora_A.weight');
      const rankOnly = got.shape.length === 2 && (isA ? got.shape[1] === want[1] && got.shape[0] !== want[0] : got.shape[0] === want[0] && got.shape[1] !== want[1]);
      if (rankOnly) {
        throw new PeftAdapterError(
          `${name} has rank ${isA ? got.shape[0] : got.shape[1]} but ${ADAPTER_CONFIG_FILE} says r = ${lora.r}: the adapter's config and its tensors disagree`,
          name,
        );
      }
      if (got.shape.length !== 2 || got.shape[0] !== want[0] || got.shape[1] !== want[1]) {
        throw new PeftAdapterError(
          `${name} is [${got.shape.join(', ')}] but this ${config.modelType} model needs [${want.join(', ')}] for r = ${lora.r}: ` +
            `the adapter belongs to another base model${otherModel}`,
          name,
        );
      }
    }
    const data = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    for (const name of expected.keys()) {
      let values: Float32Array;
      try {
        values = await readTensor(source, header, name, { as: 'f32' });
      } catch (e) {
        if (e instanceof SafetensorsError) throw new PeftAdapterError(`${ADAPTER_MODEL_FILE}: ${e.message}`, name);
        throw e;
      }
      data.set(name, { shape: header.tensors.get(name)!.shape, data: values });
    }
    checkFiniteAdapterTensors([...data].map(([name, t]) => [name, t.data] as const));
    adapter.loadTensors((name) => data.get(name));
    adapter.resetOptimizer();
    return adapter;
  } catch (e) {
    adapter.destroy();
    throw e;
  }
}
