import { toF16Array, type Gpu } from '../gpu';
import { matmul, type MatmulArgs } from '../kernels/matmul';
import { matmulRef } from '../kernels/reference/matmul';
import { maxRelError, Rng } from './compare';
import type { SelfTestCase } from './types';

type Shape = Omit<MatmulArgs, 'a' | 'b' | 'c' | 'bias'> & { withBias?: boolean };

/** Runs one matmul on random inputs (C starts as NaN unless beta != 0) against matmulRef. */
export async function runMatmulCase(gpu: Gpu, shape: Shape, seed: number): Promise<number> {
  const { M, N, K } = shape;
  const batch = shape.batch ?? 1;
  const rng = new Rng(seed);
  const aLen = shape.strideA === 0 ? M * K : M * K * batch;
  const bLen = shape.strideB === 0 ? K * N : K * N * batch;
  const a = rng.f32(aLen);
  const bVals = rng.f32(bLen);
  const b = shape.bF16 ? toF16Array(bVals) : bVals;
  const c0 = shape.beta ? rng.f32(M * N * batch) : new Float32Array(M * N * batch).fill(NaN);
  const bias = shape.withBias ? rng.f32(N) : undefined;
  const ab = gpu.upload(a, 'selftest:a');
  const bb = gpu.upload(b, 'selftest:b');
  const cb = gpu.upload(c0, 'selftest:c');
  const biasb = bias ? gpu.upload(bias, 'selftest:bias') : undefined;
  try {
    const rec = gpu.recorder('selftest:matmul');
    matmul(gpu, rec, { ...shape, a: ab, b: bb, c: cb, bias: biasb });
    rec.submit();
    const got = await gpu.readF32(cb, M * N * batch);
    const want = matmulRef({ ...shape, a, b, c: c0, bias });
    return maxRelError(got, want);
  } finally {
    for (const buf of [ab, bb, cb, biasb]) if (buf) gpu.release(buf);
  }
}

// f32 accumulation over K <= 130 of values in [-1, 1]: errors stay near 1e-7 of max |C|.
export const selfTestCases: SelfTestCase[] = [
  {
    name: 'matmul x·Wᵀ + bias, f32 (33x65, K=127)',
    tol: 1e-5,
    run: (gpu) => runMatmulCase(gpu, { M: 33, N: 65, K: 127, transB: true, withBias: true }, 1),
  },
  {
    name: 'matmul x·Wᵀ with f16 weights (17x48, K=64)',
    tol: 1e-5,
    run: (gpu) => runMatmulCase(gpu, { M: 17, N: 48, K: 64, transB: true, bF16: true }, 2),
  },
  {
    name: 'matmul batched Aᵀ·B, alpha/beta (3 x 20x12, K=9)',
    tol: 1e-5,
    run: (gpu) => runMatmulCase(gpu, { M: 20, N: 12, K: 9, transA: true, batch: 3, alpha: 0.5, beta: -1 }, 3),
  },
];
