/**
 * Record once, replay: a training pass (forward and backward of one micro-batch) is recorded
 * through the kernel bindings the first time, and the next pass of the same workspace, adapter
 * and plan re-encodes the recorded commands (see RecordedCommands), skipping the bindings' CPU
 * work. What changes between such passes lives in buffers: the batch (the workspace's ids,
 * targets and mask) and `stepValues` (the gradient scale), written before each pass.
 */
import { ReplayCache, type Gpu, type Recorder } from '../gpu';
import type { LoraAdapter } from './lora';
import type { StepOptions } from './transformer';

export class TrainingReplays {
  private readonly cache = new ReplayCache();
  /** [gradScale, 0, 0, 0], written before every pass. */
  readonly stepValues: GPUBuffer;

  constructor(private readonly gpu: Gpu) {
    this.stepValues = gpu.createBuffer(16, 'step-values');
  }

  /**
   * Starts a pass: writes its step values, then replays a recorded pass of the same plan (returns
   * null) or returns the recorder to record it with (hand it to end() after its submit). No replay
   * with per-step dropout seeds (uniform parameters) nor in full-parameter training (its
   * embedding scatter depends on the ids).
   */
  begin(workspace: object, adapter: LoraAdapter | null, plan: string, opts: StepOptions): Recorder | null {
    this.gpu.write(this.stepValues, Float32Array.of(opts.gradScale, 0, 0, 0));
    const seeded = adapter !== null && adapter.config.dropout > 0 && opts.dropoutSeed !== undefined;
    const key = opts.full || seeded ? null : `${this.cache.idOf(workspace)}|${adapter ? this.cache.idOf(adapter) : 0}|${plan}|${opts.accumulate}`;
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
