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
import { toF16Array, type Gpu } from '../gpu';
import { planEmbeddingShards, type EmbeddingShard } from '../kernels/embedding';
import { Rng } from '../util/random';
import type { ModelConfig } from './config';
import { layerLinears, modelLayout } from './layout';
import type { TokenBatch } from './transformer';
import { assembleWeights, linearFields, type ModelWeights, type WeightDtype } from './weights';

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
  const C = config.hidden;
  const layout = modelLayout(config);
  const norm = (n: { bias: boolean }) => C * 4 * (n.bias ? 2 : 1);
  let total = 0;
  for (const layer of layout.layers) {
    total += norm(layer.norm1) + norm(layer.norm2);
    for (const l of layerLinears(layer)) total += tensorBytes(l.out[0] * l.in[0], dtype) + (l.bias ? l.out[0] * 4 : 0);
  }
  const table = shards.reduce((s, sh) => s + tensorBytes(sh.rowCount * C, dtype), 0);
  total += layout.head ? 2 * table : table;
  if (layout.positions) total += config.maxPositions * C * 4;
  return total + norm(layout.finalNorm);
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
  let sinceDrain = 0;
  const plan = planEmbeddingShards(config.vocabSize, config.hidden, dtype, maxBinding);
  const total = plannedBytes(config, dtype, plan);
  let done = 0;

  const track = async (b: GPUBuffer, written: number): Promise<GPUBuffer> => {
    buffers.push(b);
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

  const table = async (name: string): Promise<EmbeddingShard[]> => {
    const shards: EmbeddingShard[] = [];
    for (const { rowStart, rowCount } of plan) {
      shards.push({ rowStart, rowCount, buffer: await random(rowCount * config.hidden, dtype, `${name}[${rowStart}:]`) });
    }
    return shards;
  };

  const weights = await assembleWeights(gpu, config, dtype, buffers, {
    linear: async (spec) => ({
      ...linearFields(spec, dtype),
      w: await random(spec.out[0] * spec.in[0], dtype, `${spec.module}.weight`),
      bias: spec.bias ? await random(spec.out[0], 'f32', `${spec.module}.bias`) : null,
    }),
    norm: async (spec) => ({
      w: await constant(config.hidden, 1, `${spec.module}.weight`),
      b: spec.bias ? await constant(config.hidden, 0, `${spec.module}.bias`) : null,
    }),
    positions: (name) => random(config.maxPositions * config.hidden, 'f32', name),
    table,
  });
  await gpu.sync();
  return weights;
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
