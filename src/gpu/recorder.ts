import type { Gpu } from './device';
import type { KernelSpec } from './pipelineCache';

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

const UNIFORM_ALIGN = 256;

/**
 * Records kernels for one command encoder. Nothing touches the GPU until `submit()`: then one
 * uniform buffer holds every dispatch's parameters, and all dispatches between copies share
 * one compute pass (WebGPU orders dispatches within a pass, so no extra barriers are needed).
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
    // One uniform buffer for the whole recording.
    const offsets = new Map<DispatchArgs, number>();
    let total = 0;
    for (const d of dispatches) {
      if (!d.args.params) continue;
      offsets.set(d.args, total);
      total += Math.ceil(d.args.params.byteLength / UNIFORM_ALIGN) * UNIFORM_ALIGN;
    }
    let uniform: GPUBuffer | null = null;
    if (total > 0) {
      uniform = this.gpu.pool.acquire(total, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, `${this.label}:params`);
      const staging = new Uint8Array(total);
      for (const d of dispatches) if (d.args.params) staging.set(d.args.params, offsets.get(d.args)!);
      device.queue.writeBuffer(uniform, 0, staging);
    }
    let querySet: GPUQuerySet | null = null;
    const labels: string[] = [];
    if (timed && dispatches.length > 0 && !this.gpu.dryRun) {
      querySet = device.createQuerySet({ type: 'timestamp', count: 2 * dispatches.length });
    }
    const encoder = device.createCommandEncoder({ label: this.label });
    let pass: GPUComputePassEncoder | null = null;
    const endPass = () => {
      pass?.end();
      pass = null;
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
      let s = 0;
      const entries: GPUBindGroupEntry[] = spec.bindings.map((kind, binding) => {
        if (kind === 'uniform') {
          return { binding, resource: { buffer: uniform!, offset: offsets.get(args)!, size: args.params!.byteLength } };
        }
        const b = args.buffers[s++]!;
        // A GPUBuffer has no 'buffer' property; a range object does.
        const resource: GPUBufferBinding = 'buffer' in b ? b : { buffer: b };
        return { binding, resource };
      });
      const bindGroup = device.createBindGroup({ layout: cached.layout, entries, label: args.label ?? spec.name });
      this.gpu.counters.bindGroups++;
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
      p.setPipeline(cached.pipeline);
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
    if (this.gpu.dryRun) {
      if (uniform) this.gpu.pool.release(uniform);
      return null;
    }
    device.queue.submit([commands]);
    if (uniform) {
      const u = uniform;
      // The params buffer goes back to the pool only once the GPU has read it.
      device.queue.onSubmittedWorkDone().then(
        () => this.gpu.pool.release(u),
        () => {},
      );
    }
    return querySet && resolve ? { querySet, resolve, labels } : null;
  }
}
