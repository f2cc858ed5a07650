import type { Gpu } from '../gpu';
import { fromF16Array, toF16Array } from '../util/f16';
import { loraBackward, loraDown, loraLinear } from '../kernels/lora';
import { loraBackwardRef, loraDownRef, loraLinearRef } from '../kernels/reference/lora';
import { maxRelError, Rng } from './compare';
import type { SelfTestCase } from './types';

async function forward(gpu: Gpu, f16: boolean): Promise<number> {
  const [T, K, N, r] = [19, 45, 37, 8];
  const rng = new Rng(f16 ? 2 : 1);
  const x = rng.f32(T * K);
  const w = rng.f32(N * K);
  const a = rng.f32(r * K);
  const b = rng.f32(N * r);
  const bias = rng.f32(N);
  const wBits = toF16Array(w);
  const made = [x, f16 ? wBits : w, a, b, bias].map((d) => gpu.upload(d));
  const [xb, wb, ab, bb, biasb] = made as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
  const u = gpu.createBuffer(T * r * 4);
  const y = gpu.upload(new Float32Array(T * N).fill(NaN));
  const rec = gpu.recorder('selftest:lora');
  loraDown(gpu, rec, { x: xb, a: ab, u, T, K, r, dropout: { seed: 7, p: 0.1 } });
  loraLinear(gpu, rec, { x: xb, w: wb, wF16: f16, bias: biasb, u, b: bb, y, T, K, N, r, scale: 2 });
  rec.submit();
  const got = await gpu.readF32(y, T * N);
  for (const m of [...made, u, y]) gpu.release(m);
  const uRef = loraDownRef(x, a, T, K, r, { seed: 7, p: 0.1 });
  return maxRelError(got, loraLinearRef(x, f16 ? fromF16Array(wBits) : w, bias, uRef, b, T, K, N, r, 2));
}

async function backward(gpu: Gpu): Promise<number> {
  const [T, K, N, r] = [21, 35, 27, 4];
  const rng = new Rng(3);
  const x = rng.f32(T * K);
  const dy = rng.f32(T * N);
  const u = rng.f32(T * r);
  const a = rng.f32(r * K);
  const b = rng.f32(N * r);
  const made = [x, dy, u, a, b].map((d) => gpu.upload(d));
  const [xb, dyb, ub, ab, bb] = made as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
  const du = gpu.createBuffer(T * r * 4);
  const gradA = gpu.createBuffer(r * K * 4);
  const gradB = gpu.createBuffer(N * r * 4);
  const dx = gpu.createBuffer(T * K * 4);
  const dropout = { seed: 11, p: 0.2 };
  const rec = gpu.recorder('selftest:lora');
  loraBackward(gpu, rec, { x: xb, dy: dyb, u: ub, a: ab, b: bb, du, gradA, gradB, dx, accumulateDx: false, T, K, N, r, scale: 0.5, dropout });
  rec.submit();
  const got = [await gpu.readF32(gradA, r * K), await gpu.readF32(gradB, N * r), await gpu.readF32(dx, T * K)];
  for (const m of [...made, du, gradA, gradB, dx]) gpu.release(m);
  const ref = loraBackwardRef({ x, dy, u, a, b, T, K, N, r, scale: 0.5, dropout });
  return Math.max(maxRelError(got[0]!, ref.gradA), maxRelError(got[1]!, ref.gradB), maxRelError(got[2]!, ref.dx));
}

export const selfTestCases: SelfTestCase[] = [
  { name: 'lora forward (f32 W, dropout)', tol: 1e-5, run: (gpu) => forward(gpu, false) },
  // Reference uses the same f16-rounded weights, so the bound stays at f32 level.
  { name: 'lora forward (f16 W)', tol: 1e-5, run: (gpu) => forward(gpu, true) },
  { name: 'lora backward (dropout)', tol: 1e-5, run: backward },
];
