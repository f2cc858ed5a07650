import { BindingCache } from './bindingCache';
import { BufferPool, type BufferStats } from './bufferPool';
import { GpuDeviceLostError, GpuOutOfMemoryError, GpuValidationError, WebGpuUnavailableError } from './errors';
import { findWebGpu } from './navigator';
import { PipelineCache, type KernelSpec } from './pipelineCache';
import { Recorder, type DispatchArgs, type RecorderOptions } from './recorder';

export interface AcquireOptions {
  /** A GPU entry point to use instead of navigator.gpu / the webgpu package. */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Do not request shader-f16 even when offered (to test the f32 paths). */
  disableF16?: boolean;
  /** Which family of kernels to run (default 'auto': 'cpu' on CPU adapters, 'gpu' elsewhere). */
  kernels?: KernelChoice;
}

/**
 * The kernel families: 'cpu' kernels avoid workgroup memory and barriers, which are slow when
 * shaders run as CPU threads (lavapipe, SwiftShader); 'gpu' kernels tile through workgroup memory
 * as real GPUs want. Either runs anywhere and gives the same results within each kernel's stated
 * bound; forcing 'gpu' on a CPU adapter is how CI tests the GPU kernels.
 */
export type KernelPlan = 'cpu' | 'gpu';
export type KernelChoice = 'auto' | KernelPlan;
export const KERNEL_CHOICES: readonly KernelChoice[] = ['auto', 'cpu', 'gpu'];

/** True for adapters that run shaders on the CPU, where workgroup barriers are expensive. */
export function isCpuAdapter(adapter: Pick<AdapterSummary, 'vendor' | 'architecture' | 'device' | 'description'>): boolean {
  const { vendor, architecture, device, description } = adapter;
  return /llvmpipe|lavapipe|swiftshader|software|basic render/i.test(`${vendor} ${architecture} ${device} ${description}`);
}

/** What the engine asked of the device since the last `resetCounters()` (benchmarks read these). */
export interface GpuCounters {
  /** Compute dispatches encoded. */
  dispatches: number;
  /** queue.submit calls (readback copies included; in a dry run, the ones left out). */
  submits: number;
  /** Reads the CPU waited for (each a copy to a staging buffer and a mapAsync). */
  blockingReads: number;
  /** Results mapped from staging buffers filled inside a step, read when the caller is ready. */
  lateReads: number;
  /** Bind groups created. */
  bindGroups: number;
  /** Milliseconds spent awaiting the GPU in read() and sync(). */
  waitMs: number;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  limits: Record<string, number>;
  /** The adapter's largest subgroup size, where `adapter.info` gives it. */
  subgroupMaxSize?: number;
  /** The WGSL language extensions of the WebGPU implementation (`wgslLanguageFeatures`). */
  wgslFeatures?: string[];
  /** Its smallest, likewise. */
  subgroupMinSize?: number;
}

/**
 * Usage for ordinary tensors: bindable as storage, writable from the CPU, readable back.
 * A function, not a constant: in Node GPUBufferUsage exists only once findWebGpu() ran.
 */
export function storageUsage(): GPUBufferUsageFlags {
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

/**
 * One WebGPU device with everything the engine needs around it: real adapter limits, optional
 * features, a byte-counting buffer pool, a pipeline cache, and loud failures.
 */
export class Gpu {
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly bindings: BindingCache;
  readonly hasF16: boolean;
  readonly hasTimestamps: boolean;
  readonly hasSubgroups: boolean;
  /** The kernel family every kernel binding picks by default (see KernelPlan). */
  readonly kernels: KernelPlan;
  readonly counters: GpuCounters = { dispatches: 0, submits: 0, blockingReads: 0, lateReads: 0, bindGroups: 0, waitMs: 0 };
  /**
   * Dry run: recorders encode their commands but never submit them, and read() resolves to zeros
   * without touching the GPU, so the CPU cost and counts of a full-size step are cheap to measure
   * anywhere. Results computed in a dry run are meaningless.
   */
  dryRun = false;
  /**
   * Callers may replay recorded steps (see RecordedCommands) and recorders may split a step into
   * several submits. Off: every step is recorded through the kernel bindings and submitted once
   * (profiles, which time each dispatch, turn it off).
   */
  replay = true;
  /** Set once the device is lost; every later readback rejects with it. */
  lostError: GpuDeviceLostError | null = null;
  private readonly lostListeners = new Set<(e: GpuDeviceLostError) => void>();
  private readonly lostPromise: Promise<never>;

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterSummary,
    kernels: KernelChoice = 'auto',
  ) {
    this.kernels = kernels === 'auto' ? (isCpuAdapter(adapter) ? 'cpu' : 'gpu') : kernels;
    this.pool = new BufferPool(device);
    this.pipelines = new PipelineCache(device);
    this.bindings = new BindingCache(device, this.pool);
    this.hasF16 = device.features.has('shader-f16');
    this.hasTimestamps = device.features.has('timestamp-query');
    this.hasSubgroups = device.features.has('subgroups');
    this.lostPromise = device.lost.then((info) => {
      const err = new GpuDeviceLostError(
        `The GPU device was lost (${info.reason}): ${info.message || 'no message'}. ` +
          'Work since the last checkpoint must be redone on a new device.',
        String(info.reason),
      );
      this.lostError = err;
      // Cached bind groups and uniforms belong to the dead device.
      this.bindings.clear();
      for (const l of this.lostListeners) l(err);
      throw err;
    });
    this.lostPromise.catch(() => {}); // observed through read()/onLost, never unhandled
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  onLost(listener: (e: GpuDeviceLostError) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /** A storage buffer from the pool (contents undefined: write before reading). */
  createBuffer(bytes: number, label?: string, usage: GPUBufferUsageFlags = storageUsage()): GPUBuffer {
    this.throwIfLost();
    return this.pool.acquire(Math.max(4, bytes), usage, label);
  }

  /** A storage buffer holding `data`. */
  upload(data: ArrayBufferView, label?: string, usage: GPUBufferUsageFlags = storageUsage()): GPUBuffer {
    const buf = this.createBuffer(data.byteLength, label, usage);
    this.write(buf, data);
    return buf;
  }

  write(buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    this.throwIfLost();
    // writeBuffer wants a multiple of 4 bytes.
    if (data.byteLength % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      this.device.queue.writeBuffer(buffer, byteOffset, padded);
      return;
    }
    this.device.queue.writeBuffer(buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  release(buffer: GPUBuffer): void {
    this.pool.release(buffer);
  }

  resetCounters(): void {
    Object.assign(this.counters, { dispatches: 0, submits: 0, blockingReads: 0, lateReads: 0, bindGroups: 0, waitMs: 0 });
  }

  /** Copies a buffer (range) back to the CPU. Rejects, never hangs, if the device is lost. */
  async read(buffer: GPUBuffer, byteOffset = 0, byteLength = buffer.size - byteOffset): Promise<ArrayBuffer> {
    this.throwIfLost();
    this.counters.blockingReads++;
    this.counters.submits++;
    if (this.dryRun) return new ArrayBuffer(byteLength);
    const t0 = performance.now();
    const size = Math.ceil(byteLength / 4) * 4;
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      label: 'readback',
    });
    const encoder = this.device.createCommandEncoder({ label: 'readback' });
    encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
    this.device.queue.submit([encoder.finish()]);
    try {
      await Promise.race([staging.mapAsync(GPUMapMode.READ), this.lostPromise]);
      return staging.getMappedRange().slice(0, byteLength);
    } finally {
      staging.destroy();
      this.counters.waitMs += performance.now() - t0;
    }
  }

  /**
   * Starts mapping a MAP_READ staging buffer that already submitted commands fill, without
   * waiting: the caller awaits the promise when it wants the bytes, typically a step later, when
   * the GPU is long done with it (a ring of such buffers keeps results off the critical path).
   * Counted as a late read, not a blocking one. Rejects if the device is lost.
   */
  mapForRead(staging: GPUBuffer): Promise<void> {
    this.throwIfLost();
    this.counters.lateReads++;
    if (this.dryRun) return Promise.resolve();
    const mapped = Promise.race([staging.mapAsync(GPUMapMode.READ), this.lostPromise]);
    mapped.catch(() => {}); // observed when awaited; never an unhandled rejection meanwhile
    return mapped;
  }

  /**
   * Awaits a mapForRead promise; if the GPU had not filled the buffer yet the CPU really waits,
   * so that counts as a blocking read.
   */
  async awaitMapped(mapped: Promise<void>): Promise<void> {
    let done = false;
    void mapped.then(
      () => (done = true),
      () => (done = true),
    );
    await Promise.resolve(); // lets an already settled map mark itself done
    if (!done) this.counters.blockingReads++;
    const t0 = performance.now();
    await mapped;
    this.counters.waitMs += performance.now() - t0;
  }

  async readF32(buffer: GPUBuffer, count?: number, elementOffset = 0): Promise<Float32Array> {
    const len = count === undefined ? undefined : count * 4;
    return new Float32Array(await this.read(buffer, elementOffset * 4, len));
  }

  async readU32(buffer: GPUBuffer, count?: number, elementOffset = 0): Promise<Uint32Array> {
    const len = count === undefined ? undefined : count * 4;
    return new Uint32Array(await this.read(buffer, elementOffset * 4, len));
  }

  recorder(label?: string, options?: RecorderOptions): Recorder {
    this.throwIfLost();
    return new Recorder(this, label, options);
  }

  /** Records and submits a single kernel. */
  run(spec: KernelSpec, args: DispatchArgs): void {
    this.recorder(spec.name).dispatch(spec, args).submit();
  }

  /**
   * Runs `fn` inside validation and out-of-memory error scopes and turns what they catch into
   * typed errors, so a bad shape or an oversized allocation fails loudly at its source.
   */
  async checked<T>(fn: () => T | Promise<T>): Promise<T> {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    let result: T | undefined;
    let thrown: unknown = null;
    try {
      result = await fn();
    } catch (e) {
      thrown = e;
    }
    // Scopes are popped whatever happened, or they would leak onto later work.
    const validation = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    if (oom) throw new GpuOutOfMemoryError(`GPU out of memory: ${oom.message}`);
    if (validation) throw new GpuValidationError(validation.message);
    if (thrown !== null) throw thrown;
    return result as T;
  }

  /** Waits until all submitted work has finished. */
  async sync(): Promise<void> {
    this.throwIfLost();
    const t0 = performance.now();
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.lostPromise]);
    this.counters.waitMs += performance.now() - t0;
  }

  memory(): BufferStats {
    return this.pool.stats();
  }

  destroy(): void {
    this.bindings.clear();
    this.pool.trim();
    this.device.destroy();
  }

  private throwIfLost(): void {
    if (this.lostError) throw this.lostError;
  }
}

function numericLimits(limits: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  // GPUSupportedLimits exposes its fields as prototype getters, so walk the prototype.
  const proto = Object.getPrototypeOf(limits) as object;
  const keys = new Set([...Object.keys(limits), ...Object.getOwnPropertyNames(proto)]);
  for (const k of keys) {
    const v = (limits as unknown as Record<string, unknown>)[k];
    if (typeof v === 'number') out[k] = v;
  }
  return out;
}

/** Finds an adapter and opens a device with its real limits and the optional features we use. */
export async function acquireGpu(options: AcquireOptions = {}): Promise<Gpu> {
  const entry = options.gpu ?? (await findWebGpu());
  const adapter = await entry.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new WebGpuUnavailableError(
      'WebGPU is present but no GPU adapter was found. In a browser, check that hardware acceleration ' +
        'is enabled; in Node, install a Vulkan driver (on a machine without a GPU: Mesa lavapipe).',
    );
  }
  const wanted: GPUFeatureName[] = ['timestamp-query', 'subgroups'];
  if (!options.disableF16) wanted.push('shader-f16');
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const limits = numericLimits(adapter.limits);
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits: limits, label: 'whittle' });
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const summary: AdapterSummary = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    features: [...device.features].sort(),
    limits: numericLimits(device.limits),
  };
  const subgroupMax = (info as { subgroupMaxSize?: number }).subgroupMaxSize;
  if (typeof subgroupMax === 'number' && subgroupMax > 0) summary.subgroupMaxSize = subgroupMax;
  if (entry.wgslLanguageFeatures) summary.wgslFeatures = [...entry.wgslLanguageFeatures].sort();
  const subgroupMin = (info as { subgroupMinSize?: number }).subgroupMinSize;
  if (typeof subgroupMin === 'number' && subgroupMin > 0) summary.subgroupMinSize = subgroupMin;
  return new Gpu(device, summary, options.kernels ?? 'auto');
}
