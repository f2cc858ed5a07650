/**
 * Record once, replay: a training pass (forward and backward of one micro-batch) is recorded
 * through the kernel bindings the first time, and the next pass of the same workspace, adapter
 * and plan re-encodes the recorded commands (see RecordedCommands), skipping the bindings' CPU
 * work. What changes between such passes lives in buffers: the batch (the workspace's ids,
 * targets and mask) and `stepValues` (the gradient scale and the LoRA dropout seed), written
 * before each pass; so a pass with dropout replays too, drawing the masks of its own seed.
 */
import { ReplayCache, storageUsage, type Gpu, type Recorder } from '../gpu';
import type { LoraAdapter } from './lora';
import type { StepOptions } from './transformer';

export class TrainingReplays {
  private readonly cache = new ReplayCache();
  /**
   * [gradScale f32, dropout seed u32, 0, 0], written before every pass: the cross-entropy gradient
   * reads the scale as storage, the masking LoRA kernels read the seed as a uniform (maskDropout).
   */
  readonly stepValues: GPUBuffer;
  private readonly words = new ArrayBuffer(16);

  constructor(private readonly gpu: Gpu) {
    this.stepValues = gpu.createBuffer(16, 'step-values', storageUsage() | GPUBufferUsage.UNIFORM);
  }

  /**
   * Starts a pass: writes its step values, then replays a recorded pass of the same plan (returns
   * null) or returns the recorder to record it with (hand it to end() after its submit). Passes
   * with and without dropout masks are recorded apart. No replay in full-parameter training (its
   * embedding scatter depends on the ids).
   */
  begin(workspace: object, adapter: LoraAdapter | null, plan: string, opts: StepOptions): Recorder | null {
    new Float32Array(this.words, 0, 1)[0] = opts.gradScale;
    new Uint32Array(this.words, 4, 1)[0] = (opts.dropoutSeed ?? 0) >>> 0;
    this.gpu.write(this.stepValues, new Uint8Array(this.words));
    const masked = adapter !== null && adapter.config.dropout > 0 && opts.dropoutSeed !== undefined;
    const key = opts.full ? null : `${this.cache.idOf(workspace)}|${adapter ? this.cache.idOf(adapter) : 0}|${plan}|${opts.accumulate}|${masked}`;
    return this.cache.begin(this.gpu, key, 'train-step');
  }

  /** Keeps what `rec` (from begin(), submitted) recorded for the next pass of its plan. */
  end(rec: Recorder): void {
    this.cache.end(rec);
  }

  /** Drops every recorded pass (the buffers they bind are about to be freed). */
  clear(): void {
    this.cache.clear();
  }

  destroy(): void {
    this.cache.clear();
    this.gpu.release(this.stepValues);
  }
}
