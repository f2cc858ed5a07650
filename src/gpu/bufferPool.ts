/**
 * Buffer allocation with byte accounting. Every GPU buffer the engine makes goes through here so
 * that `liveBytes` / `peakBytes` are the real GPU footprint (benchmarks and `info` report them).
 * Released buffers are kept in size buckets and reused, because creating buffers inside a
 * training step is slow on every backend.
 */
export interface BufferStats {
  /** Bytes in buffers handed out and not yet released. */
  liveBytes: number;
  /** Bytes held idle in the reuse pool. */
  pooledBytes: number;
  /** Highest liveBytes + pooledBytes seen: what the GPU really had to hold. */
  peakBytes: number;
  /** Number of buffers handed out. */
  liveBuffers: number;
}

/** Buckets grow in steps of 1/8 of a power of two, so reuse wastes at most ~12.5%. */
export function bucketSize(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 4) * 4);
  if (b <= 256) return Math.ceil(b / 16) * 16;
  const pow = 2 ** Math.floor(Math.log2(b));
  const step = pow / 8;
  return Math.ceil(b / step) * step;
}

export class BufferPool {
  private readonly free = new Map<string, GPUBuffer[]>();
  private readonly sizes = new WeakMap<GPUBuffer, number>();
  private live = 0;
  private pooled = 0;
  private peak = 0;
  private count = 0;

  constructor(private readonly device: GPUDevice) {}

  acquire(bytes: number, usage: GPUBufferUsageFlags, label?: string): GPUBuffer {
    const size = bucketSize(bytes);
    const key = `${size}:${usage}`;
    const list = this.free.get(key);
    let buf = list?.pop();
    if (buf) {
      this.pooled -= size;
      if (label) buf.label = label;
    } else {
      buf = this.device.createBuffer({ size, usage, label });
      this.sizes.set(buf, size);
    }
    this.live += size;
    this.count++;
    this.peak = Math.max(this.peak, this.live + this.pooled);
    return buf;
  }

  /** Returns a buffer for reuse. Only buffers made by `acquire` may be released. */
  release(buf: GPUBuffer): void {
    const size = this.sizes.get(buf);
    if (size === undefined) throw new Error(`release(): buffer '${buf.label}' was not made by this pool`);
    const key = `${size}:${buf.usage}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(buf);
    this.live -= size;
    this.pooled += size;
    this.count--;
  }

  /** Destroys a buffer outright (large, one-off buffers such as weights). */
  destroy(buf: GPUBuffer): void {
    const size = this.sizes.get(buf);
    if (size === undefined) throw new Error(`destroy(): buffer '${buf.label}' was not made by this pool`);
    this.sizes.delete(buf);
    this.live -= size;
    this.count--;
    buf.destroy();
  }

  /** Frees every idle pooled buffer. */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) {
      this.sizes.delete(b);
      b.destroy();
    }
    this.free.clear();
    this.pooled = 0;
  }

  resetPeak(): void {
    this.peak = this.live + this.pooled;
  }

  stats(): BufferStats {
    return { liveBytes: this.live, pooledBytes: this.pooled, peakBytes: this.peak, liveBuffers: this.count };
  }
}
