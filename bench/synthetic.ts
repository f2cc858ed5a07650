/**
 * Random-weight models with the exact shapes of real checkpoints, built straight on the GPU, so
 * that benchmarks of SmolLM2-135M, Qwen2.5-0.5B or GPT-2 need no weights on disk.
 *
 * The result has the structure `loadModelWeights` builds (same module names and kinds, [out, in]
 * linear weights, embedding row shards planned by `planEmbeddingShards`, a head that is the
 * embedding's shards when tied), so `CausalLM` and `LoraAdapter` cannot tell the difference.
 *
 * Speed: a 0.5B-parameter model must not take minutes to fill. Converting f32 samples to f16 one
 * by one (toF16Array) is far too slow, so each tensor is filled from a 65 536-entry table of
 * N(0, std) samples, already as f16 bit patterns (or f32 values), indexed by a xorshift32 stream:
 * one xorshift step yields two 16-bit indices, i.e. two f16 values = one u32 word. The values
 * are thus drawn from a 65 536-point empirical normal: plenty for timing and memory work.
 * Tensors go up chunk by chunk through one reused staging array, and the queue is drained every
 * few hundred MB so Dawn's pending upload copies never double the host footprint.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { toF16Array, type Gpu } from '../src/gpu';
import { planEmbeddingShards, type EmbeddingShard } from '../src/kernels/embedding';
import { parseModelConfig, type ModelConfig } from '../src/model/config';
import type { TokenBatch } from '../src/model/transformer';
import type { LayerWeights, LinearWeight, ModelWeights, NormWeight, WeightDtype } from '../src/model/weights';
import { Rng } from '../src/util/random';

export interface RandomModelOptions {
  /** Storage of the big matrices, as in loadModelWeights (default f16). */
  dtype?: WeightDtype;
  /** Same seed, same weights. */
  seed?: number;
  /** Standard deviation of the weights (default 0.02, GPT-2's initializer_range). */
  std?: number;
  /** Binding-size limit used to shard the embedding (default: the device's); tests lower it. */
  maxBindingBytes?: number;
  /** Called with (bytes uploaded, total bytes). */
  onProgress?: (done: number, total: number) => void;
}

/** Elements per staging chunk (16 MiB of f32). */
const CHUNK = 1 << 22;
/** Bytes written between queue drains. */
const DRAIN_BYTES = 256 << 20;

/** xorshift32: three shifts per 32 random bits, which is what makes 500M values cheap. */
class XorShift32 {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (this.s = x >>> 0);
  }
}

/** Bytes of one `count`-element tensor as `upload` stores it. */
function tensorBytes(count: number, dtype: WeightDtype): number {
  return dtype === 'f16' ? Math.ceil(count / 2) * 4 : count * 4;
}

/** Bytes of every tensor the model will hold: the progress total. */
function plannedBytes(config: ModelConfig, dtype: WeightDtype, shards: readonly { rowCount: number }[]): number {
  const { hidden: C, intermediate: I, heads: H, kvHeads: Hkv, headDim: D, layers: L } = config;
  const llama = config.family === 'llama';
  const linears = llama
    ? [H * D * C, Hkv * D * C, Hkv * D * C, C * H * D, I * C, I * C, C * I]
    : [3 * C * C, C * C, I * C, C * I];
  let perLayer = linears.reduce((s, n) => s + tensorBytes(n, dtype), 0);
  perLayer += 2 * C * 4 * (llama ? 1 : 2); // norms (+ LayerNorm biases)
  if (llama) {
    if (config.attentionBias) perLayer += (H * D + 2 * Hkv * D) * 4;
    if (config.attentionOutBias) perLayer += C * 4;
    if (config.mlpBias) perLayer += (2 * I + C) * 4;
  } else {
    perLayer += (3 * C + C + I + C) * 4;
  }
  const table = shards.reduce((s, sh) => s + tensorBytes(sh.rowCount * C, dtype), 0);
  const tables = config.tieWordEmbeddings ? table : 2 * table;
  const positions = config.positionEncoding === 'learned' ? config.maxPositions * C * 4 : 0;
  return L * perLayer + tables + positions + C * 4 * (llama ? 1 : 2);
}

/**
 * A model of `config`'s shapes with weights ~ N(0, std), norm scales 1 and norm biases 0, built
 * on the GPU. Release it with `destroy()` (or through CausalLM.destroy()).
 */
export async function buildRandomModel(gpu: Gpu, config: ModelConfig, options: RandomModelOptions = {}): Promise<ModelWeights> {
  const dtype = options.dtype ?? 'f16';
  const std = options.std ?? 0.02;
  const seed = options.seed ?? 1;
  const maxBinding = options.maxBindingBytes ?? gpu.limits.maxStorageBufferBindingSize;

  // The sample tables: 65 536 draws of N(0, std), as f32 and as f16 bits.
  const rng = new Rng(seed);
  const table32 = new Float32Array(1 << 16);
  for (let i = 0; i < table32.length; i++) table32[i] = rng.normal() * std;
  const table16 = toF16Array(table32);
  const bits = new XorShift32((seed * 2654435761) ^ 0x5bd1e995);
  const staging = new Uint32Array(CHUNK);

  const buffers: GPUBuffer[] = [];
  let bytes = 0;
  let sinceDrain = 0;
  const plan = planEmbeddingShards(config.vocabSize, config.hidden, dtype, maxBinding);
  const total = plannedBytes(config, dtype, plan);
  let done = 0;

  const track = async (b: GPUBuffer, written: number): Promise<GPUBuffer> => {
    buffers.push(b);
    bytes += b.size;
    done += written;
    options.onProgress?.(done, total);
    sinceDrain += written;
    if (sinceDrain >= DRAIN_BYTES) {
      sinceDrain = 0;
      await gpu.sync();
    }
    return b;
  };

  /** `count` random values, f16 (two per u32 word) or f32. */
  const random = async (count: number, type: WeightDtype, label: string): Promise<GPUBuffer> => {
    const size = tensorBytes(count, type);
    const buf = gpu.createBuffer(size, label);
    const words = size / 4;
    const f32 = new Float32Array(staging.buffer);
    for (let w0 = 0; w0 < words; w0 += CHUNK) {
      const n = Math.min(CHUNK, words - w0);
      if (type === 'f16') {
        for (let i = 0; i < n; i++) {
          const x = bits.next();
          staging[i] = table16[x & 0xffff]! | (table16[x >>> 16]! << 16);
        }
      } else {
        for (let i = 0; i < n; i += 2) {
          const x = bits.next();
          f32[i] = table32[x & 0xffff]!;
          if (i + 1 < n) f32[i + 1] = table32[x >>> 16]!;
        }
      }
      gpu.write(buf, staging.subarray(0, n), w0 * 4);
    }
    return track(buf, size);
  };
  const constant = async (count: number, value: number, label: string): Promise<GPUBuffer> =>
    track(gpu.upload(new Float32Array(count).fill(value), label), count * 4);

  const linear = async (module: string, outF: number, inF: number, hasBias: boolean): Promise<LinearWeight> => ({
    name: module,
    kind: module.slice(module.lastIndexOf('.') + 1),
    w: await random(outF * inF, dtype, `${module}.weight`),
    bias: hasBias ? await random(outF, 'f32', `${module}.bias`) : null,
    outFeatures: outF,
    inFeatures: inF,
    f16: dtype === 'f16',
  });
  const norm = async (module: string, hasBias: boolean): Promise<NormWeight> => ({
    w: await constant(config.hidden, 1, `${module}.weight`),
    b: hasBias ? await constant(config.hidden, 0, `${module}.bias`) : null,
  });
  const table = async (name: string): Promise<EmbeddingShard[]> => {
    const shards: EmbeddingShard[] = [];
    for (const { rowStart, rowCount } of plan) {
      shards.push({ rowStart, rowCount, buffer: await random(rowCount * config.hidden, dtype, `${name}[${rowStart}:]`) });
    }
    return shards;
  };

  const { hidden: C, intermediate: I, heads: H, kvHeads: Hkv, headDim: D, layers: L } = config;
  const layers: LayerWeights[] = [];
  let embed: EmbeddingShard[];
  let positions: GPUBuffer | null = null;
  let finalNorm: NormWeight;
  try {
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
    } else {
      embed = await table('wte.weight');
      positions = await random(config.maxPositions * C, 'f32', 'wpe.weight');
      for (let i = 0; i < L; i++) {
        const p = `h.${i}.`;
        layers.push({
          norm1: await norm(`${p}ln_1`, true),
          attnIn: [await linear(`${p}attn.c_attn`, 3 * C, C, true)],
          attnOut: await linear(`${p}attn.c_proj`, C, C, true),
          norm2: await norm(`${p}ln_2`, true),
          mlpIn: [await linear(`${p}mlp.c_fc`, I, C, true)],
          mlpOut: await linear(`${p}mlp.c_proj`, C, I, true),
        });
      }
      finalNorm = await norm('ln_f', true);
    }
    const head = config.tieWordEmbeddings ? embed : await table('lm_head.weight');
    await gpu.sync();
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
  } catch (e) {
    for (const b of buffers) gpu.pool.destroy(b);
    throw e;
  }
}

// ------------------------------------------------------------------------------ model shapes

const CONFIG_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'hf-configs');

/**
 * A small Llama-style shape (GQA, untied head) that trains in well under a second per step on a
 * CPU adapter, so it can be compared with the PyTorch peer on every machine.
 */
export const TINY_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 4096,
  hidden_size: 256,
  intermediate_size: 688,
  num_hidden_layers: 4,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
  hidden_act: 'silu',
};

/** Model shapes the benchmarks know by name: `tiny` or a config in test/fixtures/hf-configs. */
export const MODEL_NAMES = ['tiny', 'smollm2-135m', 'qwen2.5-0.5b', 'gpt2', 'llama-3.2-1b-instruct', 'tinyllama-1.1b-chat'] as const;

export interface NamedModel {
  /** Label for tables: the name, plus the layer cut when one applies. */
  label: string;
  /** The config.json the shape comes from (with the layer count overridden, if asked). */
  json: Record<string, unknown>;
  config: ModelConfig;
}

/**
 * The shape of a named model. `layers` cuts the layer count (all per-layer shapes, the vocabulary
 * and the head stay real), so that real widths can be timed on slow adapters; the label says so.
 */
export function namedModel(name: string, layers?: number): NamedModel {
  let json: Record<string, unknown>;
  if (name === 'tiny') {
    json = { ...TINY_CONFIG };
  } else {
    let text: string;
    try {
      text = readFileSync(join(CONFIG_DIR, `${name}.json`), 'utf8');
    } catch {
      throw new Error(`unknown model '${name}' (known: ${MODEL_NAMES.join(', ')})`);
    }
    json = JSON.parse(text) as Record<string, unknown>;
  }
  const field = json.model_type === 'gpt2' ? 'n_layer' : 'num_hidden_layers';
  const full = json[field] as number;
  let label = name;
  if (layers !== undefined && layers < full) {
    json = { ...json, [field]: layers };
    label = `${name} (${layers} of ${full} layers)`;
  }
  return { label, json, config: parseModelConfig(json) };
}

/** B sequences of T random tokens, every position trained. */
export function randomBatch(config: ModelConfig, B: number, T: number, seed = 1): TokenBatch {
  const rng = new Rng(seed);
  const N = B * T;
  const tokens = new Uint32Array(N);
  const targets = new Uint32Array(N);
  for (let i = 0; i < N; i++) {
    tokens[i] = rng.int(config.vocabSize);
    targets[i] = rng.int(config.vocabSize);
  }
  return { B, T, tokens, targets, mask: new Float32Array(N).fill(1) };
}

/** Parameter count of the linear layers and the LM head: what the matmuls of a step multiply by. */
export function matmulParameters(config: ModelConfig): number {
  const { hidden: C, intermediate: I, heads: H, kvHeads: Hkv, headDim: D, layers: L, vocabSize: V } = config;
  const perLayer = config.family === 'llama' ? C * (H * D + 2 * Hkv * D) + H * D * C + 3 * C * I : 4 * C * C + 2 * C * I;
  return L * perLayer + V * C;
}
