// Hugging Face config.json -> one normalised ModelConfig for the two architecture families the
// engine implements: llama-style decoders (Llama 2/3, Mistral, Qwen2, SmolLM, TinyLlama) and GPT-2.
// Anything that would change the maths in a way the engine does not implement is rejected with a
// ModelConfigError naming the field, rather than silently computing a different model.

import { modelLayout, type Dim, type LayoutOptions, type LinearSpec, type NormSpec } from './layout';

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
  constructor(
    message: string,
    /** The config.json field at fault. */
    readonly field?: string,
  ) {
    super(message);
  }
}

/** The weights do not match the config (missing tensor, wrong shape, unsupported dtype). */
export class ModelWeightsError extends Error {
  override name = 'ModelWeightsError';
  constructor(
    message: string,
    readonly tensor?: string,
  ) {
    super(message);
  }
}

export type ArchitectureFamily = 'llama' | 'gpt2';
export type ModelType = 'llama' | 'mistral' | 'qwen2' | 'gpt2';
/** gelu_new is the tanh approximation (also called gelu_pytorch_tanh); gelu is the erf form. */
export type HiddenAct = 'silu' | 'gelu_new' | 'gelu';

export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

export interface ModelConfig {
  family: ArchitectureFamily;
  modelType: ModelType;
  vocabSize: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** llama family: RMSNorm (weight only); gpt2: LayerNorm (weight and bias). */
  normType: 'rms' | 'layer';
  normEps: number;
  /** llama family: rotary (rotate-half layout, as in HF); gpt2: learned wpe table. */
  positionEncoding: 'rope' | 'learned';
  /** null for learned positions. */
  ropeTheta: number | null;
  ropeScaling: Llama3RopeScaling | null;
  maxPositions: number;
  /**
   * Non-null only when parseModelConfig was told allowSlidingWindow: attention is then exact only
   * for sequences of at most this many tokens, and the engine must cap sequence length to it.
   */
  slidingWindow: number | null;
  tieWordEmbeddings: boolean;
  /** Biases on the q, k, v projections (gpt2: on c_attn). */
  attentionBias: boolean;
  /** Bias on the attention output projection (llama o_proj with attention_bias; gpt2 c_proj). */
  attentionOutBias: boolean;
  /** Biases on the MLP projections. */
  mlpBias: boolean;
  hiddenAct: HiddenAct;
  /** gpt2 stores its linear weights as Conv1D, i.e. [in, out]; HF Linear is [out, in]. */
  conv1dWeights: boolean;
  bosTokenId: number | null;
  /** config.json allows one id or a list (Llama 3.1+). */
  eosTokenIds: number[];
  padTokenId: number | null;
  /** torch_dtype (dtype in transformers v5) as written, e.g. "bfloat16"; null if absent. */
  torchDtype: string | null;
}

export interface ParseModelConfigOptions {
  /** Accept sliding-window attention (Mistral v0.1 style) and report it in slidingWindow. */
  allowSlidingWindow?: boolean;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  return v === undefined ? 'missing' : JSON.stringify(v);
}

function has(json: Json, field: string): boolean {
  return json[field] !== undefined && json[field] !== null;
}

function int(json: Json, field: string, fallback?: number, min = 1): number {
  const v = json[field];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new ModelConfigError(`config.json is missing ${field}`, field);
    return fallback;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new ModelConfigError(`config.json ${field} is ${show(v)}; expected an integer >= ${min}`, field);
  }
  return v;
}

function positive(json: Json, field: string, fallback?: number, where = 'config.json'): number {
  const v = json[field];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new ModelConfigError(`${where} is missing ${field}`, field);
    return fallback;
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new ModelConfigError(`${where} ${field} is ${show(v)}; expected a positive number`, field);
  }
  return v;
}

function bool(json: Json, field: string, fallback: boolean): boolean {
  const v = json[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new ModelConfigError(`config.json ${field} is ${show(v)}; expected true or false`, field);
  return v;
}

function tokenId(json: Json, field: string, fallback: number | null): number | null {
  const v = json[field];
  if (v === undefined) return fallback;
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new ModelConfigError(`config.json ${field} is ${show(v)}; expected a token id`, field);
  }
  return v;
}

function tokenIds(json: Json, field: string, fallback: number | null): number[] {
  const v = json[field];
  if (Array.isArray(v)) {
    return v.map((x) => {
      if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) {
        throw new ModelConfigError(`config.json ${field} contains ${show(x)}; expected token ids`, field);
      }
      return x;
    });
  }
  const one = tokenId(json, field, fallback);
  return one === null ? [] : [one];
}

function torchDtype(json: Json): string | null {
  for (const field of ['torch_dtype', 'dtype']) {
    const v = json[field];
    if (typeof v === 'string') return v;
  }
  return null;
}

/**
 * Qwen3 is a qwen2-style decoder without q/k/v biases plus an RMSNorm over each head of q and k
 * (q_norm, k_norm) before the rotary embedding; the engine has no such norm yet.
 */
export const QWEN3_UNSUPPORTED = 'model_type "qwen3" is not supported yet: it needs per-head q/k norms (q_norm, k_norm RMSNorm on every attention head), which the engine does not implement';

const SUPPORTED = 'llama, mistral, qwen2 (incl. SmolLM, TinyLlama, Qwen2.5) and gpt2';

export function parseModelConfig(json: unknown, options: ParseModelConfigOptions = {}): ModelConfig {
  if (!isObject(json)) throw new ModelConfigError('config.json is not a JSON object');
  const modelType = json.model_type;
  if (modelType === undefined) throw new ModelConfigError('config.json is missing model_type', 'model_type');
  if (modelType === 'llama' || modelType === 'mistral' || modelType === 'qwen2') return parseLlamaFamily(json, modelType, options);
  if (modelType === 'gpt2') return parseGpt2(json);
  if (modelType === 'qwen3') throw new ModelConfigError(QWEN3_UNSUPPORTED, 'model_type');
  throw new ModelConfigError(`model_type ${show(modelType)} is not supported (supported: ${SUPPORTED})`, 'model_type');
}

function parseRope(json: Json): { theta: number; scaling: Llama3RopeScaling | null } {
  // transformers v5 moved rope_theta and the scaling into rope_parameters.
  const params = isObject(json.rope_parameters) ? json.rope_parameters : null;
  const theta = params && has(params, 'rope_theta')
    ? positive(params, 'rope_theta', undefined, 'config.json rope_parameters')
    : positive(json, 'rope_theta', 10000);
  const scaling = params ?? json.rope_scaling;
  if (scaling === undefined || scaling === null) return { theta, scaling: null };
  if (!isObject(scaling)) throw new ModelConfigError(`config.json rope_scaling is ${show(scaling)}; expected an object or null`, 'rope_scaling');
  const type = scaling.rope_type ?? scaling.type ?? (params ? 'default' : undefined);
  if (type === 'default') return { theta, scaling: null };
  if (type !== 'llama3') {
    throw new ModelConfigError(`rope_scaling type ${show(type)} is not supported (supported: llama3, default, null)`, 'rope_scaling');
  }
  const where = 'config.json rope_scaling';
  const result: Llama3RopeScaling = {
    type: 'llama3',
    factor: positive(scaling, 'factor', undefined, where),
    lowFreqFactor: positive(scaling, 'low_freq_factor', undefined, where),
    highFreqFactor: positive(scaling, 'high_freq_factor', undefined, where),
    originalMaxPositions: positive(scaling, 'original_max_position_embeddings', undefined, where),
  };
  if (!(result.highFreqFactor > result.lowFreqFactor)) {
    throw new ModelConfigError(
      `rope_scaling high_freq_factor (${result.highFreqFactor}) must exceed low_freq_factor (${result.lowFreqFactor})`,
      'rope_scaling',
    );
  }
  return { theta, scaling: result };
}

function slidingWindowOf(json: Json, modelType: ModelType, maxPositions: number, layers: number): number | null {
  let window: number | null = null;
  if (modelType === 'mistral' || (modelType === 'qwen2' && json.use_sliding_window === true)) {
    if (has(json, 'sliding_window')) window = int(json, 'sliding_window');
    if (modelType === 'qwen2' && window !== null && int(json, 'max_window_layers', layers, 0) < layers && window < maxPositions) {
      // Qwen2 applies the window only to some layers: not a shape the engine implements.
      throw new ModelConfigError('qwen2 sliding_window on a subset of layers (max_window_layers) is not supported', 'use_sliding_window');
    }
  }
  const types = json.layer_types;
  if (Array.isArray(types) && types.some((t) => t !== 'full_attention')) {
    const w = has(json, 'sliding_window') ? int(json, 'sliding_window') : null;
    if (w === null || w < maxPositions) {
      throw new ModelConfigError('layer_types mixes sliding and full attention, which is not supported', 'layer_types');
    }
  }
  return window !== null && window < maxPositions ? window : null;
}

function parseLlamaFamily(json: Json, modelType: 'llama' | 'mistral' | 'qwen2', options: ParseModelConfigOptions): ModelConfig {
  const vocabSize = int(json, 'vocab_size');
  const hidden = int(json, 'hidden_size');
  const intermediate = int(json, 'intermediate_size');
  const layers = int(json, 'num_hidden_layers');
  const heads = int(json, 'num_attention_heads');
  const kvHeads = int(json, 'num_key_value_heads', heads);
  if (heads % kvHeads !== 0) {
    throw new ModelConfigError(
      `num_attention_heads (${heads}) is not a multiple of num_key_value_heads (${kvHeads})`,
      'num_key_value_heads',
    );
  }
  let headDim: number;
  if (has(json, 'head_dim')) {
    headDim = int(json, 'head_dim');
  } else {
    if (hidden % heads !== 0) {
      throw new ModelConfigError(`hidden_size (${hidden}) is not divisible by num_attention_heads (${heads}) and head_dim is not given`, 'head_dim');
    }
    headDim = hidden / heads;
  }
  if (headDim % 2 !== 0) throw new ModelConfigError(`head_dim ${headDim} is odd; rotary embeddings need an even head_dim`, 'head_dim');

  const act = json.hidden_act ?? 'silu';
  if (act !== 'silu' && act !== 'swish') {
    throw new ModelConfigError(`hidden_act ${show(act)} is not supported for ${modelType} (supported: silu)`, 'hidden_act');
  }
  if (has(json, 'partial_rotary_factor') && json.partial_rotary_factor !== 1) {
    throw new ModelConfigError(`partial_rotary_factor ${show(json.partial_rotary_factor)} is not supported`, 'partial_rotary_factor');
  }

  const defaultMaxPositions = { llama: 2048, mistral: 4096 * 32, qwen2: 32768 }[modelType];
  const maxPositions = int(json, 'max_position_embeddings', defaultMaxPositions);
  const slidingWindow = slidingWindowOf(json, modelType, maxPositions, layers);
  if (slidingWindow !== null && !options.allowSlidingWindow) {
    throw new ModelConfigError(
      `sliding_window attention is not supported (sliding_window ${slidingWindow} < max_position_embeddings ${maxPositions})`,
      'sliding_window',
    );
  }
  const rope = parseRope(json);

  // HF: Llama's attention_bias covers q, k, v and o; Qwen2 always has q/k/v biases and no o bias;
  // Mistral has none (its config has no such field).
  const llamaBias = modelType === 'llama' ? bool(json, 'attention_bias', false) : false;
  return {
    family: 'llama',
    modelType,
    vocabSize,
    hidden,
    intermediate,
    layers,
    heads,
    kvHeads,
    headDim,
    normType: 'rms',
    normEps: positive(json, 'rms_norm_eps', 1e-6),
    positionEncoding: 'rope',
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    maxPositions,
    slidingWindow,
    tieWordEmbeddings: bool(json, 'tie_word_embeddings', false),
    attentionBias: modelType === 'qwen2' ? true : llamaBias,
    attentionOutBias: llamaBias,
    mlpBias: modelType === 'llama' ? bool(json, 'mlp_bias', false) : false,
    hiddenAct: 'silu',
    conv1dWeights: false,
    bosTokenId: tokenId(json, 'bos_token_id', modelType === 'qwen2' ? null : 1),
    eosTokenIds: tokenIds(json, 'eos_token_id', modelType === 'qwen2' ? null : 2),
    padTokenId: tokenId(json, 'pad_token_id', null),
    torchDtype: torchDtype(json),
  };
}

const GPT2_ACTIVATIONS: Record<string, HiddenAct> = {
  gelu_new: 'gelu_new',
  gelu_pytorch_tanh: 'gelu_new',
  gelu_fast: 'gelu_new', // the same tanh approximation, written differently
  gelu: 'gelu',
};

function parseGpt2(json: Json): ModelConfig {
  const vocabSize = int(json, 'vocab_size');
  const hidden = int(json, 'n_embd');
  const layers = int(json, 'n_layer');
  const heads = int(json, 'n_head');
  if (hidden % heads !== 0) throw new ModelConfigError(`n_embd (${hidden}) is not divisible by n_head (${heads})`, 'n_head');
  const act = json.activation_function ?? 'gelu_new';
  const hiddenAct = typeof act === 'string' ? GPT2_ACTIVATIONS[act] : undefined;
  if (!hiddenAct) {
    throw new ModelConfigError(`activation_function ${show(act)} is not supported (supported: gelu_new, gelu)`, 'activation_function');
  }
  if (bool(json, 'scale_attn_by_inverse_layer_idx', false)) {
    throw new ModelConfigError('scale_attn_by_inverse_layer_idx is not supported', 'scale_attn_by_inverse_layer_idx');
  }
  if (!bool(json, 'scale_attn_weights', true)) {
    throw new ModelConfigError('scale_attn_weights=false is not supported', 'scale_attn_weights');
  }
  if (bool(json, 'add_cross_attention', false)) {
    throw new ModelConfigError('add_cross_attention is not supported', 'add_cross_attention');
  }
  return {
    family: 'gpt2',
    modelType: 'gpt2',
    vocabSize,
    hidden,
    intermediate: int(json, 'n_inner', 4 * hidden),
    layers,
    heads,
    kvHeads: heads,
    headDim: hidden / heads,
    normType: 'layer',
    normEps: positive(json, 'layer_norm_epsilon', 1e-5),
    positionEncoding: 'learned',
    ropeTheta: null,
    ropeScaling: null,
    maxPositions: int(json, 'n_positions', 1024),
    slidingWindow: null,
    tieWordEmbeddings: bool(json, 'tie_word_embeddings', true),
    attentionBias: true,
    attentionOutBias: true,
    mlpBias: true,
    hiddenAct,
    conv1dWeights: true,
    bosTokenId: tokenId(json, 'bos_token_id', 50256),
    eosTokenIds: tokenIds(json, 'eos_token_id', 50256),
    padTokenId: tokenId(json, 'pad_token_id', null),
    torchDtype: torchDtype(json),
  };
}

/**
 * Rotary inverse frequencies (headDim / 2 of them), with Llama 3 scaling applied as in
 * transformers' _compute_llama3_parameters. Position p rotates pair i by p * inv[i].
 */
export function ropeInverseFrequencies(config: ModelConfig): Float64Array {
  if (config.ropeTheta === null) throw new ModelConfigError(`${config.modelType} has no rotary embeddings`);
  const half = config.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / config.ropeTheta ** ((2 * i) / config.headDim);
  const s = config.ropeScaling;
  if (!s) return inv;
  const lowFreqWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositions / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const f = inv[i]!;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowFreqWavelen) {
      inv[i] = f / s.factor;
    } else if (wavelen >= highFreqWavelen) {
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      inv[i] = ((1 - smooth) * f) / s.factor + smooth * f;
    }
  }
  return inv;
}

// ---------------------------------------------------------------------------------------------
// Expected weights

export interface ExpectedWeight {
  name: string;
  shape: number[];
  /** For each dimension, the config.json fields it comes from (for error messages). */
  dims: string[];
}

export type ExpectedWeightsOptions = LayoutOptions;

export function expectedWeights(config: ModelConfig, options: ExpectedWeightsOptions = {}): ExpectedWeight[] {
  const out: ExpectedWeight[] = [];
  const add = (name: string, dims: readonly Dim[]) => out.push({ name, shape: dims.map((d) => d[0]), dims: dims.map((d) => d[1]) });
  const vocab: Dim = [config.vocabSize, 'vocab_size'];
  const C: Dim = [config.hidden, config.family === 'gpt2' ? 'n_embd' : 'hidden_size'];
  const norm = (n: NormSpec) => {
    add(`${n.module}.weight`, [C]);
    if (n.bias) add(`${n.module}.bias`, [C]);
  };
  const layout = modelLayout(config, options);
  add(layout.embed, [vocab, C]);
  if (layout.positions) add(layout.positions, [[config.maxPositions, 'n_positions'], C]);
  for (const layer of layout.layers) {
    norm(layer.norm1);
    for (const lin of layer.attnIn) linear(lin);
    linear(layer.attnOut);
    norm(layer.norm2);
    for (const lin of layer.mlpIn) linear(lin);
    linear(layer.mlpOut);
  }
  norm(layout.finalNorm);
  if (layout.head) add(layout.head, [vocab, C]); // nn.Linear in both families: [out, in]
  return out;

  function linear(l: LinearSpec): void {
    add(`${l.module}.weight`, l.conv1d ? [l.in, l.out] : [l.out, l.in]);
    if (l.bias) add(`${l.module}.bias`, [l.out]);
  }
}

/** Trainable-or-not parameters of the base model (tied embeddings counted once). */
export function countParameters(config: ModelConfig): number {
  let total = 0;
  for (const w of expectedWeights(config)) total += w.shape.reduce((a, b) => a * b, 1);
  return total;
}

export interface WeightShapeInfo {
  name: string;
  shape: readonly number[];
  /** safetensors dtype, when known. */
  dtype?: string;
}

export interface WeightCheck {
  /** The expected tensors under the names the file uses. */
  expected: ExpectedWeight[];
  /** gpt2: '' or 'transformer.'; llama family: ''. */
  prefix: string;
  /** Tensors in the file the architecture does not use (buffers such as rotary inv_freq, tied lm_head). */
  unused: string[];
}

const FLOAT_WEIGHT_DTYPES = ['F32', 'F16', 'BF16'];

/** Verifies that the weights hold every tensor the config implies, with the implied shapes. */
export function checkWeightsAgainstConfig(
  tensors: Iterable<WeightShapeInfo> | ReadonlyMap<string, Omit<WeightShapeInfo, 'name'>>,
  config: ModelConfig,
): WeightCheck {
  const byName = new Map<string, WeightShapeInfo>();
  if (tensors instanceof Map) {
    for (const [name, t] of tensors as ReadonlyMap<string, Omit<WeightShapeInfo, 'name'>>) byName.set(name, { name, ...t });
  } else {
    for (const t of tensors as Iterable<WeightShapeInfo>) byName.set(t.name, t);
  }
  const prefix = config.family === 'gpt2' && byName.has('transformer.wte.weight') ? 'transformer.' : '';
  const expected = expectedWeights(config, { gpt2Prefix: prefix as '' | 'transformer.' });
  const expectedNames = new Set(expected.map((w) => w.name));

  for (const want of expected) {
    const got = byName.get(want.name);
    if (!got) {
      const bias = want.name.endsWith('.bias') && config.family === 'llama';
      throw new ModelWeightsError(
        bias
          ? `config implies ${want.name} (a bias) but the weights do not have it`
          : `the weights lack ${want.name} [${want.shape.join(', ')}], which this ${config.modelType} config needs`,
        want.name,
      );
    }
    const shapeOk = got.shape.length === want.shape.length && got.shape.every((d, i) => d === want.shape[i]);
    if (!shapeOk) {
      const i = want.shape.findIndex((d, k) => got.shape[k] !== d);
      const which = i >= 0 && got.shape.length === want.shape.length ? `${want.dims[i]} ${want.shape[i]}` : `shape [${want.shape.join(', ')}]`;
      throw new ModelWeightsError(`config says ${which} but ${want.name} is [${got.shape.join(', ')}]`, want.name);
    }
    if (got.dtype !== undefined && !FLOAT_WEIGHT_DTYPES.includes(got.dtype)) {
      throw new ModelWeightsError(`${want.name} has dtype ${got.dtype}; only F32, F16 and BF16 weights are supported (no quantized models)`, want.name);
    }
  }

  const unused: string[] = [];
  const layerRe = config.family === 'llama' ? /^model\.layers\.(\d+)\./ : new RegExp(`^${prefix.replace('.', '\\.')}h\\.(\\d+)\\.`);
  for (const name of byName.keys()) {
    if (expectedNames.has(name)) continue;
    const layer = layerRe.exec(name);
    if (layer && Number(layer[1]) >= config.layers) {
      throw new ModelWeightsError(`config says ${config.family === 'gpt2' ? 'n_layer' : 'num_hidden_layers'} ${config.layers} but the weights have ${name}`, name);
    }
    if (name.endsWith('.bias') && expectedNames.has(name.slice(0, -'.bias'.length) + '.weight')) {
      throw new ModelWeightsError(`the weights have ${name} but the config does not enable that bias (attention_bias / mlp_bias)`, name);
    }
    unused.push(name);
  }
  return { expected, prefix, unused };
}

/** The activation kernel of a config's `hidden_act` (GPT-2's gelu_new is the tanh form). */
export function activationKind(cfg: ModelConfig): 'gelu_tanh' | 'gelu_erf' | 'silu' {
  if (cfg.hiddenAct === 'gelu_new') return 'gelu_tanh';
  if (cfg.hiddenAct === 'gelu') return 'gelu_erf';
  return 'silu';
}
