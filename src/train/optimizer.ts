import type { Gpu } from '../gpu';
import { adamwStepAll, type AdamWTensor } from '../kernels/adamw';
import { clipGradNorm, gradNormLayout } from '../kernels/reduce';
import type { LoraAdapter } from '../model/lora';

export interface OptimizerSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** clip_grad_norm_'s max_norm; 0 or Infinity turns clipping off. */
  maxGradNorm: number;
}

export const DEFAULT_OPTIMIZER: OptimizerSettings = { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 };

/** One parameter tensor for AdamW; `decay: false` exempts it from weight decay (norms, biases). */
export interface OptimizedTensor extends AdamWTensor {
  decay?: boolean;
}

/**
 * AdamW with gradient-norm clipping over a list of tensors, all recorded on the GPU: the clip
 * coefficient never comes back to the CPU; the norm is read only when asked for.
 */
export class AdamWOptimizer {
  /** Completed optimizer steps (PyTorch's state['step']). */
  step = 0;
  private readonly partials: GPUBuffer;
  /** [grad norm before clipping, clip coefficient]. */
  readonly norm: GPUBuffer;

  constructor(
    protected readonly gpu: Gpu,
    readonly tensors: readonly OptimizedTensor[],
  ) {
    const slots = gradNormLayout(tensors.map((t) => t.n)).slots;
    this.partials = gpu.createBuffer(slots * 4, 'grad-norm-partials');
    this.norm = gpu.createBuffer(8, 'grad-norm');
  }

  /** Clips (when enabled) and applies one AdamW update with learning rate `lr`. */
  apply(settings: OptimizerSettings, lr = settings.lr): void {
    this.step++;
    const rec = this.gpu.recorder('optimizer');
    const clip = settings.maxGradNorm > 0 && Number.isFinite(settings.maxGradNorm);
    clipGradNorm(this.gpu, rec, {
      grads: this.tensors.map((t) => ({ buffer: t.grad, n: t.n })),
      partials: this.partials,
      // Without clipping the norm is still measured (a metric); max_norm = 3.4e38 keeps coef 1.
      maxNorm: clip ? settings.maxGradNorm : 3.4e38,
      normOut: this.norm,
      applyScale: false,
    });
    const hp = { lr, beta1: settings.beta1, beta2: settings.beta2, eps: settings.eps, step: this.step };
    const scale = { buffer: this.norm, index: 1 };
    adamwStepAll(this.gpu, rec, this.tensors.filter((t) => t.decay !== false), { ...hp, weightDecay: settings.weightDecay }, scale);
    adamwStepAll(this.gpu, rec, this.tensors.filter((t) => t.decay === false), { ...hp, weightDecay: 0 }, scale);
    rec.submit();
  }

  /** The gradient norm (before clipping) of the last apply(). */
  async readGradNorm(): Promise<number> {
    return (await this.gpu.readF32(this.norm, 1))[0]!;
  }

  destroy(): void {
    this.gpu.release(this.partials);
    this.gpu.release(this.norm);
  }
}

/** AdamW over an adapter's A and B (PyTorch's parameter order: A then B, module by module). */
export class LoraOptimizer extends AdamWOptimizer {
  constructor(
    gpu: Gpu,
    readonly adapter: LoraAdapter,
  ) {
    const tensors: OptimizedTensor[] = [];
    for (const m of adapter.modules.values()) {
      const aN = m.r * m.linear.inFeatures;
      const bN = m.linear.outFeatures * m.r;
      tensors.push({ param: m.a, grad: m.gradA, expAvg: m.expAvgA, expAvgSq: m.expAvgSqA, n: aN });
      tensors.push({ param: m.b, grad: m.gradB, expAvg: m.expAvgB, expAvgSq: m.expAvgSqB, n: bN });
    }
    super(gpu, tensors);
  }
}
