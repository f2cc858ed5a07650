/**
 * Recorded command lists, replayed: a step recorded once (pipelines, bind groups, dispatch sizes,
 * copies and clears, all resolved) is encoded again on the next step of the same shape and plan
 * straight from that list, skipping the kernel bindings' JavaScript (parameter packing, binding
 * cache look-ups, validation), which was most of a step's CPU time.
 *
 * What may differ between replays lives in buffers the caller writes with queue.writeBuffer before
 * submitting (the batch's tokens, a gradient scale); uniform parameters are part of the list, so a
 * caller must only replay what it would record with the same parameter bytes. A list binds its
 * buffers by identity: it is valid while they are (the caller drops it with them), and never after
 * the binding cache was cleared (a lost device): `valid` says so.
 */
import type { Gpu } from './device';
import type { Recorder } from './recorder';

export type Command =
  | { kind: 'dispatch'; pipeline: GPUComputePipeline; group: GPUBindGroup; x: number; y: number; z: number }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number }
  | { kind: 'clear'; buffer: GPUBuffer; offset: number; size?: number };

/** One submit's worth of commands. */
export interface CommandSegment {
  label: string;
  commands: Command[];
}

/**
 * Encodes commands into one command buffer. Consecutive dispatches share a compute pass (WebGPU
 * orders dispatches within a pass, so no barriers are needed) and a pipeline is set only when it
 * changes; copies and clears end the pass. Counts the dispatches.
 */
export function encodeCommands(gpu: Gpu, segment: CommandSegment): GPUCommandBuffer {
  const encoder = gpu.device.createCommandEncoder({ label: segment.label });
  let pass: GPUComputePassEncoder | null = null;
  let pipeline: GPUComputePipeline | null = null;
  let dispatches = 0;
  for (const c of segment.commands) {
    if (c.kind === 'dispatch') {
      if (!pass) {
        pass = encoder.beginComputePass({ label: segment.label });
        pipeline = null; // a new pass starts with no pipeline set
      }
      if (pipeline !== c.pipeline) pass.setPipeline((pipeline = c.pipeline));
      pass.setBindGroup(0, c.group);
      pass.dispatchWorkgroups(c.x, c.y, c.z);
      dispatches++;
      continue;
    }
    pass?.end();
    pass = null;
    if (c.kind === 'copy') encoder.copyBufferToBuffer(c.src, c.srcOffset, c.dst, c.dstOffset, c.size);
    else encoder.clearBuffer(c.buffer, c.offset, c.size);
  }
  pass?.end();
  gpu.counters.dispatches += dispatches;
  return encoder.finish();
}

/** A recorded step: its submits in order, and the uniform slots it binds (pinned while it lives). */
export class RecordedCommands {
  private readonly generation: number;
  private released = false;

  constructor(
    private readonly gpu: Gpu,
    readonly segments: readonly CommandSegment[],
    private readonly uniforms: readonly string[],
  ) {
    this.generation = gpu.bindings.generation;
    gpu.bindings.pin(uniforms);
  }

  /** False once released, or once the binding cache was cleared (device lost, or a caller reset it). */
  get valid(): boolean {
    return !this.released && !this.gpu.lostError && this.gpu.bindings.generation === this.generation;
  }

  get dispatches(): number {
    let n = 0;
    for (const s of this.segments) for (const c of s.commands) if (c.kind === 'dispatch') n++;
    return n;
  }

  /** Encodes and submits every segment again, each as soon as it is encoded. */
  submit(): void {
    if (!this.valid) throw new Error('replaying a recorded command list that is no longer valid (released, or its device was lost)');
    for (const segment of this.segments) {
      const commands = encodeCommands(this.gpu, segment);
      this.gpu.counters.submits++;
      if (!this.gpu.dryRun) this.gpu.device.queue.submit([commands]);
    }
  }

  /** Unpins the uniform slots; the list must not be submitted again. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.gpu.bindings.generation === this.generation) this.gpu.bindings.unpin(this.uniforms);
  }
}

/**
 * Recorded command lists by key (shape and plan), least recently used dropped past `capacity`.
 * Invalid lists (lost device) are dropped on lookup; clear() when the buffers they bind go away.
 */
export class ReplayCache {
  private readonly lists = new Map<string, RecordedCommands>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;

  constructor(readonly capacity = 8) {}

  /** A stable number for an object (a workspace, an adapter) to build keys from. */
  idOf(object: object): number {
    let id = this.ids.get(object);
    if (id === undefined) this.ids.set(object, (id = this.nextId++));
    return id;
  }

  get size(): number {
    return this.lists.size;
  }

  get(key: string): RecordedCommands | null {
    const hit = this.lists.get(key);
    if (!hit) return null;
    this.lists.delete(key);
    if (!hit.valid) {
      hit.release();
      return null;
    }
    this.lists.set(key, hit); // most recently used last
    return hit;
  }

  set(key: string, list: RecordedCommands): void {
    this.lists.get(key)?.release();
    this.lists.delete(key);
    this.lists.set(key, list);
    while (this.lists.size > this.capacity) {
      const oldest = this.lists.keys().next().value!;
      this.lists.get(oldest)!.release();
      this.lists.delete(oldest);
    }
  }

  /**
   * Starts a step: replays the list recorded for `key` (returns null), or returns a recorder that
   * captures the step (submitting every SUBMIT_EVERY dispatches) to hand to end() after its last
   * submit. A null key records without keeping (a step that cannot be replayed).
   */
  begin(gpu: Gpu, key: string | null, label: string): Recorder | null {
    const hit = key !== null && gpu.replay ? this.get(key) : null;
    if (hit) {
      hit.submit();
      return null;
    }
    const rec = gpu.recorder(label, { submitEvery: true, capture: key !== null });
    if (key !== null) this.pending.set(rec, key);
    return rec;
  }

  /** Keeps what `rec` (from begin(), submitted) recorded, for the next step of its key. */
  end(rec: Recorder): void {
    const key = this.pending.get(rec);
    this.pending.delete(rec);
    const recorded = rec.recorded();
    if (key !== undefined && recorded) this.set(key, recorded);
  }

  clear(): void {
    for (const l of this.lists.values()) l.release();
    this.lists.clear();
    this.pending.clear();
  }

  private readonly pending = new Map<Recorder, string>();
}
