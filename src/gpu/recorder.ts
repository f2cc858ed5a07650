import type { Gpu } from './device';
import type { CachedPipeline, KernelSpec } from './pipelineCache';
import { encodeCommands, RecordedCommands, type Command, type CommandSegment } from './replay';

/** A whole buffer, or a byte range of one (for tensors split over the binding-size limit). */
export type BufferBinding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

export interface DispatchArgs {
  /** Buffers for the spec's bindings other than 'uniform' (storage and 'values'), in binding order. */
  buffers: readonly BufferBinding[];
  /** Bytes for the spec's single 'uniform' binding (see `Params`). */
  params?: Uint8Array;
  /** Workgroup counts; each must be <= maxComputeWorkgroupsPerDimension. */
  workgroups: readonly [number, number?, number?];
  /** Label for profiles; defaults to the kernel name. */
  label?: string;
}

export interface RecorderOptions {
  /**
   * Submit every this many dispatches (true: SUBMIT_EVERY) instead of all at the end, so the GPU
   * starts on the first layers while the CPU records the rest.
   */
  submitEvery?: number | true;
  /** Keep what is submitted, resolved, for `recorded()` to replay (see RecordedCommands). */
  capture?: boolean;
}

/** Dispatches per submit of a recorder with `submitEvery: true`: a few layers of a training step. */
export const SUBMIT_EVERY = 256;

export interface KernelTiming {
  label: string;
  ms: number;
}

type Op =
  | { kind: 'dispatch'; spec: KernelSpec; args: DispatchArgs }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number }
  | { kind: 'clear'; buffer: GPUBuffer; offset: number; size?: number };

/**
 * Records kernels for one command encoder. Nothing touches the GPU until `submit()` (or, with
 * `submitEvery`, until that many dispatches are recorded): then every dispatch gets its bind
 * group from the Gpu's BindingCache (made once per pipeline, buffer ranges and parameter bytes,
 * so a repeated step makes none), and all dispatches between copies share one compute pass.
 */
export class Recorder {
  private readonly ops: Op[] = [];
  private pendingDispatches = 0;
  private readonly submitEvery: number;
  private readonly captured: CommandSegment[] | null;
  private readonly capturedUniforms = new Set<string>();

  constructor(
    private readonly gpu: Gpu,
    readonly label = 'whittle',
    options: RecorderOptions = {},
  ) {
    const split = gpu.replay ? options.submitEvery : undefined;
    this.submitEvery = split === true ? SUBMIT_EVERY : (split ?? 0);
    this.captured = options.capture && gpu.replay ? [] : null;
  }

  get length(): number {
    return this.ops.length;
  }

  dispatch(spec: KernelSpec, args: DispatchArgs): this {
    const [x, y = 1, z = 1] = args.workgroups;
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new Error(`${spec.name}: dispatch (${x}, ${y}, ${z}) exceeds maxComputeWorkgroupsPerDimension ${max}`);
    }
    if (x === 0 || y === 0 || z === 0) return this; // empty problem: nothing to do
    const storage = spec.bindings.filter((b) => b !== 'uniform').length;
    if (args.buffers.length !== storage) {
      throw new Error(`${spec.name}: expected ${storage} buffers, got ${args.buffers.length}`);
    }
    const uniforms = spec.bindings.filter((b) => b === 'uniform').length;
    if (uniforms !== (args.params ? 1 : 0)) {
      throw new Error(`${spec.name}: params given for ${uniforms} uniform bindings`);
    }
    this.ops.push({ kind: 'dispatch', spec, args });
    if (this.submitEvery > 0 && ++this.pendingDispatches >= this.submitEvery) this.encodeAndSubmit(false);
    return this;
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): this {
    this.ops.push({ kind: 'copy', src, srcOffset, dst, dstOffset, size });
    return this;
  }

  clear(buffer: GPUBuffer, offset = 0, size?: number): this {
    this.ops.push({ kind: 'clear', buffer, offset, size });
    return this;
  }

  /** The cached bind group of one dispatch (made and counted on a miss). */
  private bindGroup(cached: CachedPipeline, args: DispatchArgs): GPUBindGroup {
    const bindings = this.gpu.bindings;
    const { spec } = cached;
    const uniform = args.params ? bindings.uniform(args.params) : null;
    if (uniform && this.captured) this.capturedUniforms.add(uniform.content);
    let key = `${cached.id}`;
    for (const b of args.buffers) {
      key += 'buffer' in b ? `|${bindings.bufferId(b.buffer)}:${b.offset ?? 0}:${b.size ?? ''}` : `|${bindings.bufferId(b)}`;
    }
    if (uniform) key += `|u${uniform.key}:${args.params!.byteLength}`;
    const { group, created } = bindings.bindGroup(key, () => {
      let s = 0;
      const entries: GPUBindGroupEntry[] = spec.bindings.map((kind, binding) => {
        if (kind === 'uniform') return { binding, resource: { buffer: uniform!.buffer, offset: uniform!.offset, size: args.params!.byteLength } };
        const b = args.buffers[s++]!;
        // A GPUBuffer has no 'buffer' property; a range object does.
        const resource: GPUBufferBinding = 'buffer' in b ? b : { buffer: b };
        return { binding, resource };
      });
      return this.gpu.device.createBindGroup({ layout: cached.layout, entries, label: args.label ?? spec.name });
    });
    if (created) this.gpu.counters.bindGroups++;
    return group;
  }

  /** The kernels of the dispatches recorded and not yet submitted (to compile them ahead). */
  pendingSpecs(): KernelSpec[] {
    return [...new Set(this.ops.flatMap((o) => (o.kind === 'dispatch' ? [o.spec] : [])))];
  }

  /** Encodes and submits what is left. */
  submit(): void {
    this.encodeAndSubmit(true);
  }

  /**
   * What this capturing recorder submitted, as a list to replay (after its last submit); null
   * when it did not capture. The list pins its uniform slots until released: keep it in a
   * ReplayCache, which releases it.
   */
  recorded(): RecordedCommands | null {
    if (!this.captured) return null; // not asked to capture, or the Gpu's replay is off
    if (this.ops.length) throw new Error('recorded(): submit the recorder first');
    return new RecordedCommands(this.gpu, this.captured, [...this.capturedUniforms]);
  }

  /** Like submit(), with a timestamp pair around every dispatch; resolves when the GPU is done. */
  async submitTimed(): Promise<KernelTiming[]> {
    if (!this.gpu.hasTimestamps || this.gpu.dryRun || this.captured || this.submitEvery > 0) {
      this.submit();
      if (!this.gpu.dryRun) await this.gpu.device.queue.onSubmittedWorkDone();
      return [];
    }
    const device = this.gpu.device;
    const dispatches = this.ops.filter((o): o is Extract<Op, { kind: 'dispatch' }> => o.kind === 'dispatch');
    if (dispatches.length === 0) {
      this.submit();
      return [];
    }
    const querySet = device.createQuerySet({ type: 'timestamp', count: 2 * dispatches.length });
    const labels: string[] = [];
    const encoder = device.createCommandEncoder({ label: this.label });
    for (const op of this.ops) {
      if (op.kind === 'copy') encoder.copyBufferToBuffer(op.src, op.srcOffset, op.dst, op.dstOffset, op.size);
      else if (op.kind === 'clear') encoder.clearBuffer(op.buffer, op.offset, op.size);
      else {
        const cached = this.gpu.pipelines.get(op.spec);
        const group = this.bindGroup(cached, op.args);
        const i = labels.length;
        labels.push(op.args.label ?? op.spec.name);
        // One pass per dispatch: timestamps are taken at pass boundaries.
        const pass = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
        pass.setPipeline(cached.pipeline);
        pass.setBindGroup(0, group);
        const [x, y = 1, z = 1] = op.args.workgroups;
        pass.dispatchWorkgroups(x, y, z);
        pass.end();
        this.gpu.counters.dispatches++;
      }
    }
    const resolve = this.gpu.pool.acquire(16 * labels.length, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, 'timestamps');
    encoder.resolveQuerySet(querySet, 0, 2 * labels.length, resolve, 0);
    this.ops.length = 0;
    this.gpu.counters.submits++;
    this.gpu.bindings.endRecording();
    device.queue.submit([encoder.finish()]);
    const raw = new BigUint64Array(await this.gpu.read(resolve));
    this.gpu.pool.release(resolve);
    querySet.destroy();
    return labels.map((label, i) => ({ label, ms: Number(raw[2 * i + 1]! - raw[2 * i]!) / 1e6 }));
  }

  /**
   * Resolves the recorded ops into commands (bind groups from the cache), encodes and submits
   * them. `last`: the recording ends here (the binding cache ages its entries once per recording,
   * not per submit of one).
   */
  private encodeAndSubmit(last: boolean): void {
    const commands: Command[] = [];
    for (const op of this.ops) {
      if (op.kind !== 'dispatch') {
        commands.push(op);
        continue;
      }
      const cached = this.gpu.pipelines.get(op.spec);
      const [x, y = 1, z = 1] = op.args.workgroups;
      commands.push({ kind: 'dispatch', pipeline: cached.pipeline, group: this.bindGroup(cached, op.args), x, y, z });
    }
    this.ops.length = 0;
    this.pendingDispatches = 0;
    if (commands.length === 0 && !last) return;
    const segment = { label: this.label, commands };
    const encoded = encodeCommands(this.gpu, segment);
    if (this.captured && commands.length) this.captured.push(segment);
    // A dry run counts the submit it leaves out.
    this.gpu.counters.submits++;
    if (last) this.gpu.bindings.endRecording();
    if (this.gpu.dryRun) return;
    this.gpu.device.queue.submit([encoded]);
  }
}
