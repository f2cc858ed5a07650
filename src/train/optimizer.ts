import type { Gpu } from '../gpu';
import { ADAMW_HYPER_FLOATS, ADAMW_TABLE, adamwFlat, adamwHyperTable, adamwStepAll, type AdamWTensor } from '../kernels/adamw';
import { clipGradNorm, gradNormClipStep, gradNormLayout, sumSquaresPartials } from '../kernels/reduce';
import type { LoraAdapter } from '../model/lora';
import type { LossTotals } from '../model/transformer';

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

/** What the GPU decided about one optimizer step. */
export interface StepVerdict {
  /** Global gradient norm before clipping (NaN or Infinity when the step was skipped). */
  gradNorm: number;
  /** The gradient was not finite, so nothing was updated (PyTorch's GradScaler skips the step). */
  skipped: boolean;
  /** The step's loss totals, when apply() was given the buffer holding them. */
  totals: LossTotals | null;
}

/** Bytes of the GPU's per-step state: [norm, clip coefficient, skip flag, AdamW step count]. */
const STATE_BYTES = 16;
/** Bytes of a loss-totals buffer: [loss sum, trained tokens, correct]. */
const TOTALS_BYTES = 12;
/** A staging buffer: the state, then the step's loss totals. */
const STAGING_BYTES = STATE_BYTES + 16;

/**
 * AdamW with gradient-norm clipping over a whole LoRA adapter in three dispatches per flat
 * segment-set, whatever the number of modules: the sum of squares over the flat gradients, the
 * norm with its clip coefficient and skip verdict (one workgroup), and the update. The update is
 * skipped on the GPU when the norm is not finite, and AdamW's step count lives on the GPU, so the
 * CPU never has to wait for a step before recording the next: each step's verdict is copied into
 * a ring of staging buffers and read when the caller is ready (readVerdict, in step order).
 * Parameter order and arithmetic are PyTorch's AdamW (A then B, module by module).
 */
export class LoraOptimizer {
  private confirmed = 0;
  /** Verdicts not read yet, oldest first: the staging buffer and its pending map. */
  private readonly inFlight: { staging: GPUBuffer; mapped: Promise<void>; hasTotals: boolean }[] = [];
  private readonly staging: GPUBuffer[] = [];
  private nextStaging = 0;
  private readonly partials: GPUBuffer;
  private readonly slots: number[];
  private readonly totalSlots: number;
  /** [norm, clip coefficient, skip flag, step count] of the last step, on the GPU. */
  readonly state: GPUBuffer;
  private readonly hyper: GPUBuffer;

  constructor(
    private readonly gpu: Gpu,
    readonly adapter: LoraAdapter,
  ) {
    const layout = gradNormLayout(adapter.segments.map((s) => s.n));
    this.slots = layout.offsets;
    this.totalSlots = layout.slots;
    this.partials = gpu.createBuffer(layout.slots * 4, 'grad-norm-partials');
    this.state = gpu.createBuffer(STATE_BYTES, 'optimizer-state');
    this.hyper = gpu.createBuffer(ADAMW_HYPER_FLOATS * 4, 'adamw-hyper');
    for (let i = 0; i < ADAMW_TABLE; i++) {
      this.staging.push(gpu.createBuffer(STAGING_BYTES, `optimizer-verdict${i}`, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST));
    }
    this.step = 0;
  }

  /**
   * AdamW's step count (PyTorch's state['step']) as of the last verdict read: steps taken, the
   * skipped ones not counted. Setting it (a restored checkpoint) also sets the GPU's count.
   */
  get step(): number {
    return this.confirmed;
  }

  set step(value: number) {
    if (this.inFlight.length) throw new Error('LoraOptimizer: set step with verdicts still unread');
    this.confirmed = value;
    this.gpu.write(this.state, Float32Array.of(0, 1, 0, value));
  }

  /** Steps applied whose verdict has not been read yet. */
  get pending(): number {
    return this.inFlight.length;
  }

  /**
   * Records and submits one step: clip (when enabled), skip if not finite, AdamW with `lr`.
   * `lossTotals` (the [loss sum, tokens, correct] the step's passes left on the GPU) is copied
   * into the step's staging buffer too, so one late read returns the verdict and the loss.
   */
  apply(settings: OptimizerSettings, lr = settings.lr, lossTotals?: GPUBuffer): void {
    // The hyper table covers ADAMW_TABLE step counts past the confirmed one.
    if (this.inFlight.length >= ADAMW_TABLE) throw new Error(`LoraOptimizer: ${ADAMW_TABLE} steps in flight; read a verdict first`);
    const clip = settings.maxGradNorm > 0 && Number.isFinite(settings.maxGradNorm);
    const hp = { lr, beta1: settings.beta1, beta2: settings.beta2, eps: settings.eps, weightDecay: settings.weightDecay };
    this.gpu.write(this.hyper, adamwHyperTable(hp, this.confirmed));
    const rec = this.gpu.recorder('optimizer');
    for (const [i, seg] of this.adapter.segments.entries()) {
      sumSquaresPartials(this.gpu, rec, { x: seg.grads, n: seg.n, partials: this.partials, slot: this.slots[i]! });
    }
    // Without clipping the norm is still measured (a metric); max_norm = 3.4e38 keeps coef 1.
    gradNormClipStep(this.gpu, rec, { partials: this.partials, slots: this.totalSlots, maxNorm: clip ? settings.maxGradNorm : 3.4e38, state: this.state });
    for (const seg of this.adapter.segments) {
      adamwFlat(this.gpu, rec, { hyper: this.hyper, state: this.state, grad: seg.grads, param: seg.params, expAvg: seg.expAvg, expAvgSq: seg.expAvgSq, n: seg.n });
    }
    const staging = this.staging[this.nextStaging]!;
    this.nextStaging = (this.nextStaging + 1) % this.staging.length;
    rec.copy(this.state, 0, staging, 0, STATE_BYTES);
    if (lossTotals) rec.copy(lossTotals, 0, staging, STATE_BYTES, TOTALS_BYTES);
    rec.submit();
    this.inFlight.push({ staging, mapped: this.gpu.mapForRead(staging), hasTotals: lossTotals !== undefined });
  }

  /** The verdict of the oldest step not read yet (waits only if the GPU has not finished it). */
  async readVerdict(): Promise<StepVerdict> {
    const next = this.inFlight.shift();
    if (!next) throw new Error('LoraOptimizer: no step in flight');
    await this.gpu.awaitMapped(next.mapped);
    const dry = this.gpu.dryRun;
    const [norm, , skip, count, lossSum, tokens, correct] = dry ? [0, 1, 0, this.confirmed + 1, 0, 0, 0] : new Float32Array(next.staging.getMappedRange().slice(0));
    if (!dry) next.staging.unmap();
    this.confirmed = count!;
    const totals = next.hasTotals ? { lossSum: lossSum!, tokens: tokens!, correct: correct! } : null;
    return { gradNorm: norm!, skipped: skip !== 0, totals };
  }

  /** readVerdict's gradient norm (the step's verdict is consumed). */
  async readGradNorm(): Promise<number> {
    return (await this.readVerdict()).gradNorm;
  }

  destroy(): void {
    // Unread verdicts: cancel their maps, so the pooled staging buffers come back unmapped.
    if (!this.gpu.dryRun) for (const f of this.inFlight) f.staging.unmap();
    this.inFlight.length = 0;
    for (const b of [this.partials, this.state, this.hyper, ...this.staging]) this.gpu.release(b);
  }
}
