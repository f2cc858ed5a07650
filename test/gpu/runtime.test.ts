import { describe, expect, it } from 'vitest';
import {
  acquireGpu,
  bucketSize,
  GpuDeviceLostError,
  GpuValidationError,
  isCpuAdapter,
  Params,
  WebGpuUnavailableError,
  type KernelSpec,
} from '../../src/gpu';
import { axpby } from '../../src/kernels/elementwise';
import { defaultMatmulTuning } from '../../src/kernels/matmul';
import { defaultLoraLinearPath } from '../../src/model/linearLayer';
import { getTestGpu } from '../helpers/gpu';

describe('bucketSize', () => {
  it('never rounds down and wastes at most 1/8 above 256 bytes', () => {
    for (const n of [1, 4, 15, 16, 17, 255, 256, 257, 1000, 4096, 4097, 1e6, 123_456_789]) {
      const b = bucketSize(n);
      expect(b).toBeGreaterThanOrEqual(n);
      expect(b % 4).toBe(0);
      if (n > 256) expect(b / n).toBeLessThanOrEqual(1.125 + 1e-9);
    }
  });
});

describe('buffer pool', () => {
  it('counts live, pooled and peak bytes, and reuses released buffers', async () => {
    const gpu = await getTestGpu();
    gpu.pool.trim();
    const before = gpu.memory();
    gpu.pool.resetPeak();
    const a = gpu.createBuffer(4096, 'a');
    const b = gpu.createBuffer(4096, 'b');
    expect(gpu.memory().liveBytes - before.liveBytes).toBe(8192);
    gpu.release(a);
    expect(gpu.memory().pooledBytes).toBe(4096);
    const c = gpu.createBuffer(4000, 'c'); // same bucket: reused
    expect(c).toBe(a);
    expect(gpu.memory().peakBytes - before.liveBytes).toBe(8192);
    gpu.release(b);
    gpu.release(c);
    gpu.pool.trim();
    expect(gpu.memory().pooledBytes).toBe(0);
    expect(() => gpu.release(gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE }))).toThrow(/not made by this pool/);
  });
});

describe('recorder', () => {
  it('records many kernels into one submission and orders them', async () => {
    const gpu = await getTestGpu();
    const x = gpu.upload(new Float32Array([1, 2, 3]));
    const y = gpu.upload(new Float32Array([0, 0, 0]));
    const rec = gpu.recorder('chain');
    for (let i = 0; i < 10; i++) axpby(gpu, rec, x, y, 3, 1, 2); // y = x + 2y, ten times
    expect(rec.length).toBe(10);
    rec.submit();
    const out = await gpu.readF32(y, 3);
    // y_k = x * (2^k - 1)
    expect([...out]).toEqual([1023, 2046, 3069]);
    gpu.release(x);
    gpu.release(y);
  });

  it('reports per-kernel GPU times through timestamp queries', async () => {
    const gpu = await getTestGpu();
    expect(gpu.hasTimestamps).toBe(true); // lavapipe and real GPUs offer it
    const n = 1 << 16;
    const x = gpu.upload(new Float32Array(n).fill(1));
    const y = gpu.upload(new Float32Array(n).fill(1));
    const rec = gpu.recorder();
    axpby(gpu, rec, x, y, n, 1, 1);
    axpby(gpu, rec, x, y, n, 1, 1);
    const timings = await rec.submitTimed();
    expect(timings.map((t) => t.label)).toEqual(['axpby', 'axpby']);
    for (const t of timings) expect(t.ms).toBeGreaterThanOrEqual(0);
    expect((await gpu.readF32(y, 4))[0]).toBe(3);
    gpu.release(x);
    gpu.release(y);
  });

  it('rejects wrong binding counts before touching the GPU', async () => {
    const gpu = await getTestGpu();
    const spec: KernelSpec = { name: 'k', code: '', entryPoint: 'main', bindings: ['uniform', 'read', 'write'] };
    const buf = gpu.createBuffer(16);
    expect(() => gpu.recorder().dispatch(spec, { buffers: [buf], params: new Params().u32(1).bytes(), workgroups: [1] })).toThrow(
      /expected 2 buffers/,
    );
    expect(() => gpu.recorder().dispatch(spec, { buffers: [buf, buf], params: new Params().bytes(), workgroups: [70000] })).toThrow(
      /maxComputeWorkgroupsPerDimension/,
    );
    gpu.release(buf);
  });
});

describe('errors', () => {
  it('turns a WGSL compile error into GpuValidationError', async () => {
    const gpu = await getTestGpu();
    const bad: KernelSpec = { name: 'broken', code: 'fn main( {', entryPoint: 'main', bindings: [] };
    await expect(gpu.checked(() => gpu.pipelines.get(bad))).rejects.toBeInstanceOf(GpuValidationError);
  });

  it('turns an oversized buffer into a typed error instead of a hang', async () => {
    const gpu = await getTestGpu();
    // Larger than maxBufferSize: a validation error in WebGPU (OOM is reported for sizes the
    // device accepts but cannot back). Either way the caller gets a typed error.
    const tooBig = gpu.limits.maxBufferSize + 4;
    await expect(
      gpu.checked(() => gpu.device.createBuffer({ size: tooBig, usage: GPUBufferUsage.STORAGE })),
    ).rejects.toThrow(/size|memory/i);
  });

  it('fails readbacks with GpuDeviceLostError once the device is lost, never hangs', async () => {
    const gpu = await acquireGpu(); // a device of its own: this test destroys it
    const buf = gpu.upload(new Float32Array([1, 2, 3, 4]));
    let notified: GpuDeviceLostError | null = null;
    gpu.onLost((e) => (notified = e));
    gpu.device.destroy();
    await expect(gpu.read(buf)).rejects.toBeInstanceOf(GpuDeviceLostError);
    await expect(gpu.sync()).rejects.toBeInstanceOf(GpuDeviceLostError);
    expect(notified).toBeInstanceOf(GpuDeviceLostError);
    expect(() => gpu.recorder()).toThrow(GpuDeviceLostError);
  });

  it('says clearly when there is no WebGPU adapter', async () => {
    const fakeGpu = { requestAdapter: async () => null } as unknown as GPU;
    await expect(acquireGpu({ gpu: fakeGpu })).rejects.toBeInstanceOf(WebGpuUnavailableError);
  });
});

describe('adapter', () => {
  it('requests the real limits and optional features', async () => {
    const gpu = await getTestGpu();
    expect(gpu.adapter.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(gpu.limits.maxStorageBufferBindingSize).toBe(gpu.adapter.limits.maxStorageBufferBindingSize);
    expect(gpu.hasF16).toBe(gpu.adapter.features.includes('shader-f16'));
  });
});

describe('kernel plan', () => {
  it('picks the CPU kernels on a CPU adapter unless forced, and names CPU adapters', async () => {
    expect(isCpuAdapter({ vendor: 'mesa', architecture: '', device: 'llvmpipe (LLVM 15.0.7, 256 bits)', description: '' })).toBe(true);
    expect(isCpuAdapter({ vendor: 'google', architecture: 'swiftshader', device: '', description: '' })).toBe(true);
    expect(isCpuAdapter({ vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H100', description: '' })).toBe(false);
    const auto = await getTestGpu();
    expect(auto.kernels).toBe(isCpuAdapter(auto.adapter) ? 'cpu' : 'gpu');
    const forced = await acquireGpu({ kernels: 'gpu' });
    try {
      expect(forced.kernels).toBe('gpu');
      expect(defaultMatmulTuning(forced).kernel).toBe('by-shape');
      expect(defaultLoraLinearPath(forced)).toBe('fused');
    } finally {
      forced.device.destroy();
    }
  });
});
