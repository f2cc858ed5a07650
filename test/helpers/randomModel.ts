// A model folder of a real model's exact shapes with random weights: the real config.json with
// its first layers only, bf16 weights of N(0, std) (norm weights 1), and the real tokenizer
// files. For tests of what a real model's sizes do to the engine and the job path (large
// vocabularies, GQA ratios, biases) without downloading the model.
import { expectedWeights, parseModelConfig } from '../../src/model/config';
import { writeSafetensors } from '../../src/formats/safetensors';

export interface RandomModelOptions {
  /** Keep this many layers (num_hidden_layers is rewritten). */
  layers: number;
  seed?: number;
  /** Standard deviation of the matrices (default 0.02, the usual initializer_range). */
  std?: number;
}

/** bf16 bits of normal samples (Box-Muller over a xorshift32 stream). */
function normalBf16(count: number, std: number, seed: number): Uint16Array {
  const out = new Uint16Array(count);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next())) * std;
    const t = 2 * Math.PI * next();
    f[0] = r * Math.cos(t);
    out[i] = u[0]! >>> 16;
    if (i + 1 < count) {
      f[0] = r * Math.sin(t);
      out[i + 1] = u[0]! >>> 16;
    }
  }
  return out;
}

/** config.json (layers cut) and model.safetensors for `config`; add the tokenizer files yourself. */
export function randomModelFiles(config: Record<string, unknown>, options: RandomModelOptions): Map<string, Uint8Array> {
  const json = { ...config, num_hidden_layers: options.layers };
  const parsed = parseModelConfig(json);
  const std = options.std ?? 0.02;
  let seed = options.seed ?? 1;
  const tensors = expectedWeights(parsed).map((w) => {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const isNorm = w.shape.length === 1 && !w.name.endsWith('.bias');
    const data = isNorm ? new Uint16Array(n).fill(0x3f80) : normalBf16(n, std, seed++);
    return { name: w.name, dtype: 'BF16' as const, shape: w.shape, data };
  });
  return new Map([
    ['config.json', new TextEncoder().encode(JSON.stringify(json, null, 2))],
    ['model.safetensors', writeSafetensors(tensors)],
  ]);
}
