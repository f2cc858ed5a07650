// "Merged model" export: the base model with the LoRA update folded into its weights,
// W' = W + scale·B·A, written as a plain Hugging Face model folder (config, tokenizer files,
// safetensors weights, sharded with an index when large) that transformers, llama.cpp's
// converter, vLLM and Whittle itself load without PEFT.
// The merge reads the ORIGINAL tensors from the base's files (not the GPU copies, which may be
// f16), one tensor at a time, and computes in f32 on the CPU. No Node imports.

import { toF16Array } from '../util/f16';
import { loraScale } from '../kernels/reference/lora';
import { checkWeightsAgainstConfig, type ModelConfig } from '../model/config';
import { peftModulePath, type LoraConfig } from '../model/lora';
import { SAFETENSORS_INDEX, type HfModelFiles } from './hfModelDir';
import { checkFiniteAdapterTensors, parsePeftConfig, type PeftAdapterFiles } from './peft';
import { bytesSource, FLOAT_DTYPES, readSafetensorsHeader, readTensor, writeSafetensors, type TensorToWrite } from './safetensors';

export type MergedDtype = 'F32' | 'F16' | 'BF16';

/** An adapter's tensors keyed by PEFT names, as LoraAdapter.readTensors() returns them. */
export type AdapterTensors = ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;

export interface MergedModelOptions {
  /** Storage dtype of the floating-point tensors; default: each tensor keeps the base's dtype. */
  dtype?: MergedDtype;
  /** Largest shard (sum of tensor bytes); more than this and the weights are sharded. Default 2 GB. */
  maxShardBytes?: number;
  /** Other files to put in the folder verbatim (special_tokens_map.json, vocab.json, README.md ...). */
  extraFiles?: ReadonlyMap<string, Uint8Array>;
  /** Called after each tensor with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export class MergeError extends Error {
  override name = 'MergeError';
  constructor(
    message: string,
    /** The tensor at fault, when there is one. */
    readonly tensor?: string,
  ) {
    super(message);
  }
}

export const DEFAULT_MAX_SHARD_BYTES = 2_000_000_000;

const TORCH_DTYPE: Record<MergedDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** f32 -> bf16 bits, rounding to nearest even (what torch's .to(torch.bfloat16) does); NaN stays NaN. */
export function toBf16Array(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i]!;
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
      out[i] = (x >>> 16) | 0x40; // quiet NaN
      continue;
    }
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

function encodeFloats(data: Float32Array, dtype: MergedDtype): Uint8Array {
  const typed = dtype === 'F32' ? data : dtype === 'F16' ? toF16Array(data) : toBf16Array(data);
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

/**
 * The base tensors an adapter with these settings changes, with their PEFT key prefix:
 * every layer's linear weight whose module kind (`q_proj`, `c_attn` ...) is targeted.
 */
export function mergeTargets(config: ModelConfig, tensorNames: Iterable<string>, targetModules: readonly string[]): Map<string, string> {
  const names = [...tensorNames];
  // GPT2LMHeadModel checkpoints prefix the body with "transformer."; PEFT's paths always have it.
  const prefix = config.family === 'gpt2' && names.includes('transformer.wte.weight') ? 'transformer.' : '';
  const layerRe = config.family === 'llama' ? /^model\.layers\.\d+\./ : new RegExp(`^${prefix.replace('.', '\\.')}h\\.\\d+\\.`);
  const out = new Map<string, string>();
  for (const name of names) {
    if (!name.endsWith('.weight') || !layerRe.test(name)) continue;
    const module = name.slice(0, -'.weight'.length);
    const kind = module.slice(module.lastIndexOf('.') + 1);
    if (!targetModules.includes(kind)) continue;
    out.set(name, peftModulePath(config, module.slice(prefix.length)));
  }
  return out;
}

/**
 * W += scale·B·A in place. W is [out, in] (nn.Linear) or, with `conv1d`, [in, out] (GPT-2's
 * Conv1D, which PEFT merges as W += scale·(B·A)ᵀ). A is [r, in], B is [out, r].
 */
export function mergeLoraInto(w: Float32Array, a: Float32Array, b: Float32Array, outF: number, inF: number, r: number, scale: number, conv1d: boolean): void {
  if (!conv1d) {
    addRowUpdates(w, outF, inF, r, scale, b, a);
    return;
  }
  // W's rows are inputs here: coefficients Aᵀ [in, r], vectors Bᵀ [r, out], so the inner loop
  // runs along W's contiguous [in, out] rows.
  const at = new Float32Array(inF * r);
  for (let k = 0; k < r; k++) for (let i = 0; i < inF; i++) at[i * r + k] = a[k * inF + i]!;
  const bt = new Float32Array(r * outF);
  for (let o = 0; o < outF; o++) for (let k = 0; k < r; k++) bt[k * outF + o] = b[o * r + k]!;
  addRowUpdates(w, inF, outF, r, scale, at, bt);
}

/**
 * w[row, :] += scale · Σ_k coef[row, k] · vecs[k, :] for w [rows, cols], coef [rows, r] and
 * vecs [r, cols]. Each row of the update is summed over the rank in f64 and added to W once, so
 * W' is W + scale·(B·A) rounded to f32 once, as PEFT's merge gives.
 */
function addRowUpdates(w: Float32Array, rows: number, cols: number, r: number, scale: number, coef: Float32Array, vecs: Float32Array): void {
  const delta = new Float64Array(cols);
  for (let row = 0; row < rows; row++) {
    delta.fill(0);
    for (let k = 0; k < r; k++) {
      const c = coef[row * r + k]!;
      const vk = k * cols;
      for (let i = 0; i < cols; i++) delta[i]! += c * vecs[vk + i]!;
    }
    const at = row * cols;
    for (let i = 0; i < cols; i++) w[at + i]! += scale * delta[i]!;
  }
}

function jsonFile(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n');
}

function shardName(i: number, n: number): string {
  const pad = (x: number) => String(x).padStart(5, '0');
  return `model-${pad(i)}-of-${pad(n)}.safetensors`;
}

/**
 * Writes the base model with the adapter merged into it, as a Hugging Face model folder:
 * file name -> bytes. Tensors the adapter does not touch are copied (converted only when
 * `dtype` asks for it); config.json (torch_dtype updated when converting),
 * generation_config.json and the tokenizer files come along.
 */
export async function exportMergedModel(
  files: HfModelFiles,
  adapterTensors: AdapterTensors,
  lora: LoraConfig,
  config: ModelConfig,
  options: MergedModelOptions = {},
): Promise<Map<string, Uint8Array>> {
  const weights = files.weights;
  const maxShard = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShard > 0)) throw new MergeError(`maxShardBytes must be positive, got ${maxShard}`);
  checkWeightsAgainstConfig(weights.tensors, config);
  const scale = loraScale(lora.alpha, lora.r, lora.useRslora);
  const targets = mergeTargets(config, weights.tensors.keys(), lora.targetModules);
  const kinds = new Set([...targets.keys()].map((n) => n.split('.').at(-2)));
  const absent = lora.targetModules.filter((k) => !kinds.has(k));
  if (absent.length > 0) throw new MergeError(`target_modules ${absent.join(', ')} match no weight of this ${config.modelType} model`);

  // Every adapter tensor must be used, and every targeted weight must have its pair.
  const expectedKeys = new Set<string>();
  for (const key of targets.values()) for (const s of ['lora_A.weight', 'lora_B.weight']) expectedKeys.add(`${key}.${s}`);
  for (const key of expectedKeys) if (!adapterTensors.has(key)) throw new MergeError(`the adapter lacks ${key}`, key);
  for (const key of adapterTensors.keys()) {
    if (!expectedKeys.has(key)) throw new MergeError(`the adapter has ${key}, which matches no targeted weight of this model`, key);
  }

  // A shard is serialised as soon as the next one starts, so its tensors can be dropped.
  const shards: { bytes: Uint8Array; names: string[] }[] = [];
  let current: TensorToWrite[] = [];
  let currentBytes = 0;
  let totalSize = 0;
  const closeShard = () => {
    shards.push({ bytes: writeSafetensors(current, { format: 'pt' }), names: current.map((t) => t.name) });
    current = [];
    currentBytes = 0;
  };

  const all = [...weights.tensors.values()];
  let done = 0;
  for (const info of all) {
    let tensor: TensorToWrite;
    const isFloat = FLOAT_DTYPES.includes(info.dtype);
    const target = targets.get(info.name);
    if (target) {
      const w = await weights.read(info.name, { as: 'f32' });
      const a = adapterTensors.get(`${target}.lora_A.weight`)!;
      const b = adapterTensors.get(`${target}.lora_B.weight`)!;
      const [d0, d1] = info.shape as [number, number];
      const [outF, inF] = config.conv1dWeights ? [d1, d0] : [d0, d1];
      const r = a.shape[0]!;
      if (a.shape.length !== 2 || a.shape[1] !== inF || b.shape.length !== 2 || b.shape[0] !== outF || b.shape[1] !== r) {
        throw new MergeError(
          `${target}: lora_A [${a.shape.join(', ')}] and lora_B [${b.shape.join(', ')}] do not fit ${info.name} [${info.shape.join(', ')}] (need [r, ${inF}] and [${outF}, r])`,
          info.name,
        );
      }
      if (r !== lora.r) throw new MergeError(`${target}: rank ${r} differs from the LoRA config's r = ${lora.r}`, info.name);
      mergeLoraInto(w, a.data, b.data, outF, inF, r, scale, config.conv1dWeights);
      const dtype = options.dtype ?? (info.dtype as MergedDtype);
      tensor = { name: info.name, dtype, shape: info.shape, data: encodeFloats(w, dtype) };
    } else if (isFloat && options.dtype && options.dtype !== info.dtype) {
      const data = await weights.read(info.name, { as: 'f32' });
      tensor = { name: info.name, dtype: options.dtype, shape: info.shape, data: encodeFloats(data, options.dtype) };
    } else {
      tensor = { name: info.name, dtype: info.dtype, shape: info.shape, data: await weights.read(info.name, { as: 'raw' }) };
    }
    const bytes = tensor.data.byteLength;
    if (currentBytes > 0 && currentBytes + bytes > maxShard) closeShard();
    current.push(tensor);
    currentBytes += bytes;
    totalSize += bytes;
    options.onProgress?.(++done, all.length);
  }
  closeShard();

  const out = new Map<string, Uint8Array>();
  if (shards.length === 1) {
    out.set('model.safetensors', shards[0]!.bytes);
  } else {
    const weightMap: Record<string, string> = {};
    shards.forEach(({ bytes, names }, i) => {
      const name = shardName(i + 1, shards.length);
      out.set(name, bytes);
      for (const t of names) weightMap[t] = name;
    });
    out.set(SAFETENSORS_INDEX, jsonFile({ metadata: { total_size: totalSize }, weight_map: weightMap }));
  }

  const configJson = structuredClone(files.config) as Record<string, unknown>;
  if (options.dtype) {
    if ('dtype' in configJson) configJson.dtype = TORCH_DTYPE[options.dtype];
    configJson.torch_dtype = TORCH_DTYPE[options.dtype];
  }
  out.set('config.json', jsonFile(configJson));
  if (files.generationConfig !== null) out.set('generation_config.json', jsonFile(files.generationConfig));
  if (files.tokenizerJson !== null) out.set('tokenizer.json', jsonFile(files.tokenizerJson));
  if (files.tokenizerConfig !== null) out.set('tokenizer_config.json', jsonFile(files.tokenizerConfig));
  if (files.chatTemplate !== null) out.set('chat_template.jinja', new TextEncoder().encode(files.chatTemplate));
  for (const [name, bytes] of options.extraFiles ?? []) if (!out.has(name)) out.set(name, bytes);
  return out;
}

/**
 * A PEFT adapter's LoRA settings and tensors read from its files (no GPU), e.g. one trained on
 * a cluster, ready for exportMergedModel. Names and shapes are checked by the merge.
 */
export async function readPeftAdapterTensors(files: PeftAdapterFiles, config: ModelConfig): Promise<{ lora: LoraConfig; tensors: Map<string, { shape: number[]; data: Float32Array }> }> {
  const lora = parsePeftConfig(files.adapterConfig, config);
  const source = files.adapterModel instanceof Uint8Array ? bytesSource(files.adapterModel) : files.adapterModel;
  const header = await readSafetensorsHeader(source);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, info] of header.tensors) tensors.set(name, { shape: [...info.shape], data: await readTensor(source, header, name, { as: 'f32' }) });
  checkFiniteAdapterTensors([...tensors].map(([name, t]) => [name, t.data] as const));
  return { lora, tensors };
}
