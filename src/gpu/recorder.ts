import type { Gpu } from './device';
import type { CachedPipeline, KernelSpec } from './pipelineCache';

/** A whole buffer, or a byte range of one (for tensors split over the binding-size limit). */
export type BufferBinding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

export interface DispatchArgs {
  /** Storage buffers for the spec's non-uniform bindings, in binding order. */
  buffers: readonly BufferBinding[];
  /** Bytes for the spec's single 'uniform' binding (see `Params`). */
  params?: Uint8Array;
  /** Workgroup counts; each must be <= maxComputeWorkgroupsPerDimension. */
  workgroups: readonly [number, number?, number?];
  /** Label for profiles; defaults to the kernel name. */
  label?: string;
}

export interface KernelTiming {
  label: string;
  ms: number;
}

type Op =
  | { kind: 'dispatch'; spec: KernelSpec; args: DispatchArgs }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number }
  | { kind: 'clear'; buffer: GPUBuffer; offset: number; size?: number };

/**
 * Records kernels for one command encoder. Nothing touches the GPU until `submit()`: then every
 * dispatch gets its bind group from the Gpu's BindingCache (made once per pipeline, buffer
 * ranges and parameter bytes, so a repeated step makes none), and all dispatches between copies
 * share one compute pass (WebGPU orders dispatches within a pass, so no extra barriers are needed).
 */
export class Recorder {
  private readonly ops: Op[] = [];

  constructor(
    private readonly gpu: Gpu,
    readonly label = 'whittle',
  ) {}

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
      throw new Error(`${spec.name}: expected ${storage} storage buffers, got ${args.buffers.length}`);
    }
    const uniforms = spec.bindings.filter((b) => b === 'uniform').length;
    if (uniforms !== (args.params ? 1 : 0)) {
      throw new Error(`${spec.name}: params given for ${uniforms} uniform bindings`);
    }
    this.ops.push({ kind: 'dispatch', spec, args });
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

  /** Encodes and submits. Returns per-kernel GPU times when `timed` and timestamps exist. */
  submit(): void {
    this.encodeAndSubmit(false);
  }

  /** Like submit(), with a timestamp pair around every dispatch; resolves when the GPU is done. */
  async submitTimed(): Promise<KernelTiming[]> {
    const timing = this.encodeAndSubmit(this.gpu.hasTimestamps);
    if (!timing) {
      await this.gpu.device.queue.onSubmittedWorkDone();
      return [];
    }
    const raw = new BigUint64Array(await this.gpu.read(timing.resolve));
    this.gpu.pool.release(timing.resolve);
    timing.querySet.destroy();
    return timing.labels.map((label, i) => ({ label, ms: Number(raw[2 * i + 1]! - raw[2 * i]!) / 1e6 }));
  }

  private encodeAndSubmit(timed: boolean): { querySet: GPUQuerySet; resolve: GPUBuffer; labels: string[] } | null {
    const device = this.gpu.device;
    const dispatches = this.ops.filter((o): o is Extract<Op, { kind: 'dispatch' }> => o.kind === 'dispatch');
    const bindings = this.gpu.bindings;
    let querySet: GPUQuerySet | null = null;
    const labels: string[] = [];
    if (timed && dispatches.length > 0 && !this.gpu.dryRun) {
      querySet = device.createQuerySet({ type: 'timestamp', count: 2 * dispatches.length });
    }
    const encoder = device.createCommandEncoder({ label: this.label });
    let pass: GPUComputePassEncoder | null = null;
    // A pass starts with no pipeline set; within one, consecutive dispatches of a kernel share it.
    let pipeline: GPUComputePipeline | null = null;
    let pipelineSet = false;
    const endPass = () => {
      pass?.end();
      pass = null;
      pipelineSet = false;
    };
    for (const op of this.ops) {
      if (op.kind === 'copy') {
        endPass();
        encoder.copyBufferToBuffer(op.src, op.srcOffset, op.dst, op.dstOffset, op.size);
        continue;
      }
      if (op.kind === 'clear') {
        endPass();
        encoder.clearBuffer(op.buffer, op.offset, op.size);
        continue;
      }
      const { spec, args } = op;
      const cached = this.gpu.pipelines.get(spec);
      const bindGroup = this.bindGroup(cached, args);
      if (querySet) {
        endPass();
        const i = labels.length;
        labels.push(args.label ?? spec.name);
        pass = encoder.beginComputePass({
          timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
        });
      } else if (!pass) {
        pass = encoder.beginComputePass({ label: this.label });
      }
      const p = pass as GPUComputePassEncoder;
      if (pipeline !== cached.pipeline || !pipelineSet) p.setPipeline(cached.pipeline);
      pipeline = cached.pipeline;
      pipelineSet = true;
      p.setBindGroup(0, bindGroup);
      const [x, y = 1, z = 1] = args.workgroups;
      p.dispatchWorkgroups(x, y, z);
      this.gpu.counters.dispatches++;
    }
    endPass();
    let resolve: GPUBuffer | null = null;
    if (querySet) {
      resolve = this.gpu.pool.acquire(
        16 * labels.length,
        GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
        'timestamps',
      );
      encoder.resolveQuerySet(querySet, 0, 2 * labels.length, resolve, 0);
    }
    const commands = encoder.finish();
    this.ops.length = 0;
    // A dry run counts the submit it leaves out.
    this.gpu.counters.submits++;
    bindings.endRecording();
    if (this.gpu.dryRun) return null;
    device.queue.submit([commands]);
    return querySet && resolve ? { querySet, resolve, labels } : null;
  }
}
