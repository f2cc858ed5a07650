import type { Gpu } from '../gpu';
import type { EmbeddingShard } from '../kernels/embedding';
import type { OptimizedTensor } from '../train/optimizer';
import type { ModelConfig } from './config';
import { layerLinears } from './layout';
import type { ModelWeights } from './weights';

/** Gradient and AdamW moments of one base-model tensor. */
export interface ParameterState {
  param: GPUBuffer;
  grad: GPUBuffer;
  expAvg: GPUBuffer;
  expAvgSq: GPUBuffer;
  n: number;
  /** Matrices decay; norms, biases and embeddings do not (the usual GPT recipe). */
  decay: boolean;
}

export class FullParametersError extends Error {
  override name = 'FullParametersError';
}

/**
 * Gradients for every base weight: what pretraining from scratch (the embedded model) needs,
 * where LoRA fine-tuning trains adapters only. Weights must be f32 (they are updated in place).
 */
export class BaseGradients {
  readonly states = new Map<GPUBuffer, ParameterState>();
  /** Gradient shards of the token embedding (and of the head when untied), row-aligned with the weights. */
  readonly embedGrad: EmbeddingShard[];
  readonly headGrad: EmbeddingShard[];
  private readonly buffers: GPUBuffer[] = [];

  constructor(
    private readonly gpu: Gpu,
    readonly config: ModelConfig,
    weights: ModelWeights,
  ) {
    if (weights.dtype !== 'f32') throw new FullParametersError('full-parameter training needs f32 weights (load with dtype f32)');
    if (config.family !== 'llama') throw new FullParametersError('full-parameter training supports the Llama family only');
    const C = config.hidden;
    const add = (param: GPUBuffer, n: number, decay: boolean): ParameterState => {
      const existing = this.states.get(param);
      if (existing) return existing;
      const make = (what: string) => {
        const b = gpu.createBuffer(n * 4, `${param.label}.${what}`);
        gpu.write(b, new Float32Array(n));
        this.buffers.push(b);
        return b;
      };
      const state = { param, grad: make('grad'), expAvg: make('exp_avg'), expAvgSq: make('exp_avg_sq'), n, decay };
      this.states.set(param, state);
      return state;
    };
    const shardBuffer = (s: EmbeddingShard) => ('buffer' in s.buffer ? s.buffer.buffer : s.buffer);
    this.embedGrad = weights.embed.map((s) => ({ ...s, buffer: add(shardBuffer(s), s.rowCount * C, false).grad }));
    this.headGrad = weights.head.map((s) => ({ ...s, buffer: add(shardBuffer(s), s.rowCount * C, true).grad }));
    for (const layer of weights.layers) {
      for (const lin of layerLinears(layer)) {
        add(lin.w, lin.outFeatures * lin.inFeatures, true);
        if (lin.bias) add(lin.bias, lin.outFeatures, false);
      }
      for (const norm of [layer.norm1, layer.norm2]) add(norm.w, C, false);
    }
    add(weights.finalNorm.w, C, false);
  }

  /** The gradient buffer of a weight buffer. */
  grad(param: GPUBuffer): GPUBuffer {
    const s = this.states.get(param);
    if (!s) throw new Error(`no gradient for ${param.label}`);
    return s.grad;
  }

  /** The tensors for AdamWOptimizer. */
  tensors(): OptimizedTensor[] {
    return [...this.states.values()].map((s) => ({ param: s.param, grad: s.grad, expAvg: s.expAvg, expAvgSq: s.expAvgSq, n: s.n, decay: s.decay }));
  }

  get parameterCount(): number {
    let n = 0;
    for (const s of this.states.values()) n += s.n;
    return n;
  }

  destroy(): void {
    for (const b of this.buffers) this.gpu.release(b);
    this.buffers.length = 0;
    this.states.clear();
  }
}
