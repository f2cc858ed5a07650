import type { SafetensorsWeights } from '../formats/safetensors';
import type { Gpu } from '../gpu';
import { planEmbeddingShards, type EmbeddingShard } from '../kernels/embedding';
import { checkWeightsAgainstConfig, type ModelConfig } from './config';

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
  let bytes = 0;
  let done = 0;
  const total = check.expected.length;
  const progress = () => options.onProgress?.(++done, total);

  const upload = (data: Float32Array | Uint16Array, label: string): GPUBuffer => {
    const b = gpu.upload(data, label);
    buffers.push(b);
    bytes += b.size;
    return b;
  };
  const f32 = async (name: string): Promise<GPUBuffer> => {
    const data = await source.read(prefix + name, { as: 'f32' });
    progress();
    return upload(data, name);
  };
  const matrix = async (name: string, transposed: boolean, rows: number, cols: number): Promise<GPUBuffer> => {
    let data: Float32Array | Uint16Array = await source.read(prefix + name, { as: dtype });
    if (transposed) data = transpose(data, rows, cols);
    progress();
    return upload(data, name);
  };
  const linear = async (module: string, outF: number, inF: number, hasBias: boolean, conv1d = false): Promise<LinearWeight> => ({
    name: module,
    kind: module.slice(module.lastIndexOf('.') + 1),
    // Conv1D stores [in, out]: transpose to [out, in].
    w: await matrix(`${module}.weight`, conv1d, inF, outF),
    bias: hasBias ? await f32(`${module}.bias`) : null,
    outFeatures: outF,
    inFeatures: inF,
    f16: dtype === 'f16',
  });
  const norm = async (module: string, hasBias: boolean): Promise<NormWeight> => ({
    w: await f32(`${module}.weight`),
    b: hasBias ? await f32(`${module}.bias`) : null,
  });
  const table = async (name: string): Promise<EmbeddingShard[]> => {
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
  };

  const { hidden: C, intermediate: I, heads: H, kvHeads: Hkv, headDim: D, layers: L } = config;
  const layers: LayerWeights[] = [];
  let embed: EmbeddingShard[];
  let positions: GPUBuffer | null = null;
  let finalNorm: NormWeight;
  let head: EmbeddingShard[];
  if (config.family === 'llama') {
    embed = await table('model.embed_tokens.weight');
    for (let i = 0; i < L; i++) {
      const p = `model.layers.${i}.`;
      layers.push({
        norm1: await norm(`${p}input_layernorm`, false),
        attnIn: [
          await linear(`${p}self_attn.q_proj`, H * D, C, config.attentionBias),
          await linear(`${p}self_attn.k_proj`, Hkv * D, C, config.attentionBias),
          await linear(`${p}self_attn.v_proj`, Hkv * D, C, config.attentionBias),
        ],
        attnOut: await linear(`${p}self_attn.o_proj`, C, H * D, config.attentionOutBias),
        norm2: await norm(`${p}post_attention_layernorm`, false),
        mlpIn: [await linear(`${p}mlp.gate_proj`, I, C, config.mlpBias), await linear(`${p}mlp.up_proj`, I, C, config.mlpBias)],
        mlpOut: await linear(`${p}mlp.down_proj`, C, I, config.mlpBias),
      });
    }
    finalNorm = await norm('model.norm', false);
    head = config.tieWordEmbeddings ? embed : await table('lm_head.weight');
  } else {
    embed = await table('wte.weight');
    positions = await f32('wpe.weight');
    for (let i = 0; i < L; i++) {
      const p = `h.${i}.`;
      layers.push({
        norm1: await norm(`${p}ln_1`, true),
        attnIn: [await linear(`${p}attn.c_attn`, 3 * C, C, true, true)],
        attnOut: await linear(`${p}attn.c_proj`, C, C, true, true),
        norm2: await norm(`${p}ln_2`, true),
        mlpIn: [await linear(`${p}mlp.c_fc`, I, C, true, true)],
        mlpOut: await linear(`${p}mlp.c_proj`, C, I, true, true),
      });
    }
    finalNorm = await norm('ln_f', true);
    head = config.tieWordEmbeddings ? embed : await table('lm_head.weight');
  }
  return {
    dtype,
    embed,
    positions,
    layers,
    finalNorm,
    head,
    bytes,
    destroy() {
      for (const b of buffers) gpu.pool.destroy(b);
      buffers.length = 0;
    },
  };
}
