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

/**
 * AdamW over an adapter's A and B with gradient-norm clipping, all recorded on the GPU: the
 * clip coefficient never comes back to the CPU; the norm is read only when asked for.
 */
export class LoraOptimizer {
  /** Completed optimizer steps (PyTorch's state['step']). */
  step = 0;
  private readonly tensors: AdamWTensor[] = [];
  private readonly partials: GPUBuffer;
  private readonly slots: number;
  /** [grad norm before clipping, clip coefficient]. */
  readonly norm: GPUBuffer;

  constructor(
    private readonly gpu: Gpu,
    readonly adapter: LoraAdapter,
  ) {
    for (const m of adapter.modules.values()) {
      const aN = m.r * m.linear.inFeatures;
      const bN = m.linear.outFeatures * m.r;
      // PyTorch's parameter order for the golden files: A then B, module by module.
      this.tensors.push({ param: m.a, grad: m.gradA, expAvg: m.expAvgA, expAvgSq: m.expAvgSqA, n: aN });
      this.tensors.push({ param: m.b, grad: m.gradB, expAvg: m.expAvgB, expAvgSq: m.expAvgSqB, n: bN });
    }
    this.slots = gradNormLayout(this.tensors.map((t) => t.n)).slots;
    this.partials = gpu.createBuffer(this.slots * 4, 'grad-norm-partials');
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
      // Without clipping the norm is still measured (a metric); max_norm = Infinity keeps coef 1.
      maxNorm: clip ? settings.maxGradNorm : 3.4e38,
      normOut: this.norm,
      applyScale: false,
    });
    adamwStepAll(
      this.gpu,
      rec,
      this.tensors,
      { lr, beta1: settings.beta1, beta2: settings.beta2, eps: settings.eps, weightDecay: settings.weightDecay, step: this.step },
      { buffer: this.norm, index: 1 },
    );
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
