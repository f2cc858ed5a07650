import type { SafetensorsWeights } from '../formats/safetensors';
import type { Gpu } from '../gpu';
import { planEmbeddingShards, type EmbeddingShard } from '../kernels/embedding';
import { checkWeightsAgainstConfig, type ModelConfig } from './config';
import { modelLayout, type LinearRole, type LinearSpec, type NormSpec } from './layout';

/**
 * The frozen base model on the GPU. Linear weights are stored [out, in] (Hugging Face nn.Linear
 * layout) for every architecture: GPT-2's Conv1D weights ([in, out]) are transposed on load, so
 * one set of kernels serves both families.
 */
export type WeightDtype = 'f32' | 'f16';

export interface LinearWeight {
  /** Module path as Hugging Face names it, e.g. `model.layers.0.self_attn.q_proj` or `h.0.attn.c_attn`. */
  name: string;
  /** Last component of the name (`q_proj`, `c_attn`): what LoRA target_modules match. */
  kind: string;
  /** What the layer does in its block (q, k, v, o, gate, up, down; GPT-2: qkv, o, fc, down). */
  role: LinearRole;
  w: GPUBuffer;
  bias: GPUBuffer | null;
  outFeatures: number;
  inFeatures: number;
  f16: boolean;
}

export interface NormWeight {
  w: GPUBuffer;
  b: GPUBuffer | null;
}

export interface LayerWeights {
  norm1: NormWeight;
  norm2: NormWeight;
  /** llama: q_proj, k_proj, v_proj; gpt2: c_attn (fused q|k|v). */
  attnIn: LinearWeight[];
  attnOut: LinearWeight;
  /** llama: gate_proj, up_proj; gpt2: c_fc. */
  mlpIn: LinearWeight[];
  mlpOut: LinearWeight;
}

export interface ModelWeights {
  dtype: WeightDtype;
  /** Token embedding as row shards (tables over maxStorageBufferBindingSize are split). */
  embed: EmbeddingShard[];
  /** GPT-2 learned positions [maxPositions, hidden], f32. */
  positions: GPUBuffer | null;
  layers: LayerWeights[];
  finalNorm: NormWeight;
  /** LM head [vocab, hidden] as row shards: the embedding's shards when tied. */
  head: EmbeddingShard[];
  /** Bytes of GPU memory the weights take. */
  bytes: number;
  /** Releases every buffer. */
  destroy(): void;
}

export interface LoadWeightsOptions {
  /** Storage of the big matrices. f16 halves memory; kernels widen to f32 (needs no shader-f16). */
  dtype?: WeightDtype;
  /** Called after each tensor with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

function transpose<T extends Float32Array | Uint16Array>(src: T, rows: number, cols: number): T {
  const out = new (src.constructor as new (n: number) => T)(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c]!;
  return out;
}

/** How one kind of tensor is made: read from a checkpoint, or filled with random numbers. */
export interface TensorMakers {
  linear(spec: LinearSpec): Promise<LinearWeight>;
  norm(spec: NormSpec): Promise<NormWeight>;
  positions(name: string): Promise<GPUBuffer>;
  table(name: string): Promise<EmbeddingShard[]>;
}

/** The fields of a LinearWeight that come from the layout alone. */
export function linearFields(spec: LinearSpec, dtype: WeightDtype): Omit<LinearWeight, 'w' | 'bias'> {
  return {
    name: spec.module,
    kind: spec.module.slice(spec.module.lastIndexOf('.') + 1),
    role: spec.role,
    outFeatures: spec.out[0],
    inFeatures: spec.in[0],
    f16: dtype === 'f16',
  };
}

/**
 * Makes every tensor of the model's layout, in checkpoint order, and puts them in place. The
 * makers push each buffer they create onto `buffers`; the model owns them (its bytes and
 * destroy()), and they are released at once if a maker throws.
 */
export async function assembleWeights(gpu: Gpu, config: ModelConfig, dtype: WeightDtype, buffers: GPUBuffer[], make: TensorMakers): Promise<ModelWeights> {
  try {
    return { dtype, ...(await makeTensors(config, make)), bytes: buffers.reduce((n, b) => n + b.size, 0), destroy: () => releaseAll(gpu, buffers) };
  } catch (e) {
    releaseAll(gpu, buffers);
    throw e;
  }
}

function releaseAll(gpu: Gpu, buffers: GPUBuffer[]): void {
  for (const b of buffers) gpu.pool.destroy(b);
  buffers.length = 0;
}

async function makeTensors(config: ModelConfig, make: TensorMakers): Promise<Pick<ModelWeights, 'embed' | 'positions' | 'layers' | 'finalNorm' | 'head'>> {
  const layout = modelLayout(config);
  const embed = await make.table(layout.embed);
  const positions = layout.positions ? await make.positions(layout.positions) : null;
  const layers: LayerWeights[] = [];
  for (const spec of layout.layers) {
    const norm1 = await make.norm(spec.norm1);
    const attnIn: LinearWeight[] = [];
    for (const l of spec.attnIn) attnIn.push(await make.linear(l));
    const attnOut = await make.linear(spec.attnOut);
    const norm2 = await make.norm(spec.norm2);
    const mlpIn: LinearWeight[] = [];
    for (const l of spec.mlpIn) mlpIn.push(await make.linear(l));
    const mlpOut = await make.linear(spec.mlpOut);
    layers.push({ norm1, attnIn, attnOut, norm2, mlpIn, mlpOut });
  }
  const finalNorm = await make.norm(layout.finalNorm);
  const head = layout.head ? await make.table(layout.head) : embed;
  return { embed, positions, layers, finalNorm, head };
}

/**
 * Streams a model's tensors to the GPU one by one (never the whole file in memory), checking
 * names and shapes against the config first so a mismatch is reported before any upload.
 */
export async function loadModelWeights(
  gpu: Gpu,
  config: ModelConfig,
  source: SafetensorsWeights,
  options: LoadWeightsOptions = {},
): Promise<ModelWeights> {
  const dtype = options.dtype ?? 'f16';
  const check = checkWeightsAgainstConfig(source.tensors, config);
  const prefix = check.prefix;
  const buffers: GPUBuffer[] = [];
  let done = 0;
  const total = check.expected.length;
  const progress = () => options.onProgress?.(++done, total);

  const upload = (data: Float32Array | Uint16Array, label: string): GPUBuffer => {
    const b = gpu.upload(data, label);
    buffers.push(b);
    return b;
  };
  const f32 = async (name: string): Promise<GPUBuffer> => {
    const data = await source.read(prefix + name, { as: 'f32' });
    progress();
    return upload(data, name);
  };
  // Module names stay unprefixed (as PEFT and LoRA target_modules name them); reads add the prefix.
  return assembleWeights(gpu, config, dtype, buffers, {

    linear: async (spec) => {
      let data: Float32Array | Uint16Array = await source.read(prefix + `${spec.module}.weight`, { as: dtype });
      // Conv1D stores [in, out]: transpose to [out, in].
      if (spec.conv1d) data = transpose(data, spec.in[0], spec.out[0]);
      progress();
      return {
        ...linearFields(spec, dtype),
        w: upload(data, `${spec.module}.weight`),
        bias: spec.bias ? await f32(`${spec.module}.bias`) : null,
      };
    },
    norm: async (spec) => ({ w: await f32(`${spec.module}.weight`), b: spec.bias ? await f32(`${spec.module}.bias`) : null }),
    positions: f32,
    table: async (name) => {
      const C = config.hidden;
      const plan = planEmbeddingShards(config.vocabSize, C, dtype, gpu.limits.maxStorageBufferBindingSize);
      const shards: EmbeddingShard[] = [];
      // One shard at a time: a 150k-row table is never in memory whole.
      for (const { rowStart, rowCount } of plan) {
        const data = await source.read(prefix + name, { as: dtype, elementOffset: rowStart * C, elementCount: rowCount * C });
        shards.push({ rowStart, rowCount, buffer: upload(data, `${name}[${rowStart}:]`) });
      }
      progress();
      return shards;
    },
  });
}
