import { describe, expect, it } from 'vitest';
import { toF16Array } from '../../src/gpu';
import { matmul, type MatmulTuning } from '../../src/kernels/matmul';
import { blockedTileBytes, chooseGpuMatmul } from '../../src/kernels/matmulGpu';
import { matmulRef } from '../../src/kernels/reference/matmul';
import { runMatmulCase } from '../../src/selftest/matmul';
import { expectClose } from '../helpers/compare';
import { getTestGpu, poisonedF32 } from '../helpers/gpu';
import { TRANSPOSES, transposeName } from '../helpers/matmulCases';
import { Rng } from '../helpers/random';

// Bound, relative to max |reference| (f64 accumulation): the kernels accumulate in f32 over
// K <= 133 terms of size <= 1, like matmul.wgsl's kernels, measured well under 1e-6; split-K
// runs sum K = 4301 terms in 2-3 ranges, measured under 2e-6. f16 weights are rounded
// through f16 in the reference too, so the bound isolates kernel error.
const TOL = 1e-5;

// Not multiples of any tile (32, 64, 128), K step (8, 16, 32), run (4, 8) or GEMV block (4).
const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1],
  [37, 45, 29],
  [70, 133, 61],
  [133, 141, 77],
];
const TRANS = TRANSPOSES;
const name = transposeName;

// A test's first dispatch of each pipeline waits for lavapipe to compile it: seconds alone, a
// minute or two on a loaded machine (Mesa's disk cache keeps it for later runs). Tests share
// tile shapes where they can, so each pipeline is compiled once.
const SLOW = { timeout: 600_000 };

// Flags read from the uniform (one pipeline per variant, as lavapipe prefers); a specialised
// pipeline per variant is tested separately below.
const VARIANTS: Array<[string, Partial<MatmulTuning>]> = [
  ['blocked 32x32 tiles (4x4 threads), bk 8', { kernel: 'blocked', wgX: 4, wgY: 4, bk: 8, specialize: false }],
  ['blocked 64x64 tiles (8x8 threads), bk 16', { kernel: 'blocked', wgX: 8, wgY: 8, bk: 16, specialize: false }],
  ['blocked 128x128 tiles (16x16 threads), bk 8', { kernel: 'blocked', wgX: 16, wgY: 16, bk: 8, specialize: false }],
];

for (const [label, tuning] of VARIANTS) {
  describe(`matmul, ${label}`, SLOW, () => {
    it('every transpose at every odd shape, NaN-poisoned C, f32 and f16 B', async () => {
      const gpu = await getTestGpu();
      for (const t of TRANS) {
        for (const [M, N, K] of SHAPES) {
          for (const bF16 of [false, true]) {
            const err = await runMatmulCase(gpu, { M, N, K, transA: t[0], transB: t[1], bF16, tuning }, M * 1000 + N + K);
            expect(err, `${name(t)} ${M}x${N}x${K} f16=${bF16}`).toBeLessThanOrEqual(TOL);
          }
        }
      }
    });

    it('alpha, beta, bias, batches with a broadcast operand, 8-aligned f16 runs', async () => {
      const gpu = await getTestGpu();
      const cases = [
        { M: 29, N: 70, K: 40, transB: true, withBias: true, alpha: -1.5 },
        { M: 29, N: 70, K: 40, transA: true, withBias: true, alpha: 0.25, beta: 0.5 },
        { M: 9, N: 20, K: 16, batch: 3, transB: true, strideB: 0 },
        { M: 5, N: 7, K: 11, batch: 4, strideA: 0 },
        { M: 40, N: 48, K: 64, transB: true, bF16: true, withBias: true },
        { M: 40, N: 48, K: 64, bF16: true, beta: 1 },
      ];
      for (const [i, c] of cases.entries()) expect(await runMatmulCase(gpu, { ...c, tuning }, 100 + i), JSON.stringify(c)).toBeLessThanOrEqual(TOL);
    });
  });
}

describe('matmul, blocked split-K (deterministic partial sums, no atomics)', SLOW, () => {
  it('odd K split into ranges, with alpha, beta and bias, f32 and f16', async () => {
    const gpu = await getTestGpu();
    const tuning: Partial<MatmulTuning> = { kernel: 'blocked', wgX: 4, wgY: 4, bk: 8, splitK: 3, specialize: false };
    for (const bF16 of [false, true]) {
      for (const transB of [false, true]) {
        const err = await runMatmulCase(gpu, { M: 37, N: 29, K: 4301, transB, bF16, withBias: true, alpha: 0.5, beta: -1, tuning }, 7 + Number(bF16));
        expect(err, `f16=${bF16} transB=${transB}`).toBeLessThanOrEqual(TOL);
      }
    }
  });

  it('gives bit-identical results on repeated runs', async () => {
    const gpu = await getTestGpu();
    const rng = new Rng(3);
    const [M, N, K] = [21, 19, 4100];
    const a = gpu.upload(rng.f32(M * K));
    const b = gpu.upload(rng.f32(K * N));
    const outs: Float32Array[] = [];
    for (let i = 0; i < 2; i++) {
      const c = poisonedF32(gpu, M * N);
      const rec = gpu.recorder();
      matmul(gpu, rec, { a, b, c, M, N, K, tuning: { kernel: 'blocked', wgX: 4, wgY: 4, bk: 8, splitK: 4, specialize: false } });
      rec.submit();
      outs.push(await gpu.readF32(c, M * N));
      gpu.release(c);
    }
    expect(outs[1]).toEqual(outs[0]);
    gpu.release(a);
    gpu.release(b);
  });
});

describe('matmul, GEMV for M <= 16', SLOW, () => {
  it('every transpose, M = 1, 5 and 16, odd and 8-aligned K, f32 and f16 B', async () => {
    const gpu = await getTestGpu();
    const tuning: Partial<MatmulTuning> = { kernel: 'gemv', wgX: 16, specialize: false };
    for (const t of TRANS) {
      for (const [M, N, K] of [
        [1, 45, 203],
        [5, 33, 136],
        [16, 7, 1],
      ] as const) {
        for (const bF16 of [false, true]) {
          const err = await runMatmulCase(gpu, { M, N, K, transA: t[0], transB: t[1], bF16, withBias: true, beta: 0.5, tuning }, M + N + K);
          expect(err, `${name(t)} ${M}x${N}x${K} f16=${bF16}`).toBeLessThanOrEqual(TOL);
        }
      }
    }
    // Batched decode: one row per sequence against a shared weight.
    expect(await runMatmulCase(gpu, { M: 3, N: 20, K: 64, batch: 3, transB: true, strideB: 0, bF16: true, tuning }, 9)).toBeLessThanOrEqual(TOL);
  });
});

describe('matmul with a folded LoRA term, (x | s·u)·(W | B)ᵀ', SLOW, () => {
  for (const [label, tuning] of [
    ['blocked 32x32', { kernel: 'blocked', wgX: 4, wgY: 4, bk: 8, specialize: false }],
    // The device's default: on a GPU specialised pipelines, on lavapipe flags at run time.
    ['by shape (the device default)', {}],
  ] as Array<[string, Partial<MatmulTuning>]>) {
    it(`${label}: odd shape, rank past one K step, f32 and f16 W, with bias`, async () => {
      const gpu = await getTestGpu();
      const rng = new Rng(17);
      const [M, N, K, r, scale] = [37, 70, 45, 19, 1.75];
      const x = rng.f32(M * K);
      const u = rng.f32(M * r);
      const lb = rng.f32(N * r);
      const bias = rng.f32(N);
      const [xb, ub, lbb, biasb] = [x, u, lb, bias].map((v) => gpu.upload(v));
      for (const bF16 of [false, true]) {
        const wf = rng.f32(N * K);
        const w = bF16 ? toF16Array(wf) : wf;
        const wb = gpu.upload(w);
        const yb = poisonedF32(gpu, M * N);
        const rec = gpu.recorder();
        matmul(gpu, rec, { a: xb!, b: wb, c: yb, bias: biasb!, M, N, K, transB: true, bF16, lora: { u: ub!, b: lbb!, r, scale }, tuning });
        rec.submit();
        const base = matmulRef({ a: x, b: w, bias, M, N, K, transB: true });
        const want = matmulRef({ a: u, b: lb, c: base, M, N, K: r, transB: true, alpha: scale, beta: 1 });
        expectClose(await gpu.readF32(yb, M * N), want, TOL, `f16=${bF16}`);
        gpu.release(wb);
        gpu.release(yb);
      }
      for (const buf of [xb, ub, lbb, biasb]) gpu.release(buf!);
    });
  }

  it('rejects a LoRA term on a layout it does not cover', async () => {
    const gpu = await getTestGpu();
    const buf = gpu.upload(new Float32Array(64));
    const rec = gpu.recorder();
    expect(() => matmul(gpu, rec, { a: buf, b: buf, c: buf, M: 4, N: 4, K: 4, lora: { u: buf, b: buf, r: 2, scale: 1 } })).toThrow(/x·Wᵀ/);
    gpu.release(buf);
  });
});

describe('matmul, specialised GPU-plan pipelines (the default on real GPUs)', SLOW, () => {
  // One representative each: lavapipe compiles every specialised variant anew.
  it('blocked x·Wᵀ + bias with f16 W', async () => {
    const gpu = await getTestGpu();
    const blocked = { kernel: 'blocked', wgX: 8, wgY: 8, bk: 16, specialize: true } as const;
    expect(await runMatmulCase(gpu, { M: 70, N: 133, K: 61, transB: true, bF16: true, withBias: true, tuning: blocked }, 71)).toBeLessThanOrEqual(TOL);
  });

  it('GEMV x·Wᵀ with f16 W', async () => {
    const gpu = await getTestGpu();
    const gemv = { kernel: 'gemv', wgX: 16, specialize: true } as const;
    expect(await runMatmulCase(gpu, { M: 1, N: 133, K: 200, transB: true, bF16: true, tuning: gemv }, 72)).toBeLessThanOrEqual(TOL);
  });
});

describe('chooseGpuMatmul', () => {
  const limits = {
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupSizeX: 256,
    maxComputeWorkgroupSizeY: 256,
    maxComputeWorkgroupStorageSize: 16384,
    maxStorageBufferBindingSize: 128 << 20,
  };
  const pick = (M: number, N: number, K: number, l = limits, lora = false) => chooseGpuMatmul(l, { M, N, K, batch: 1, lora });

  it('takes GEMV for decode rows, large tiles for large grids, small tiles for small ones', () => {
    expect(pick(1, 49152, 576).kernel).toBe('gemv');
    expect(pick(16, 576, 576).kernel).toBe('gemv');
    expect(pick(16, 576, 576, limits, true)).toMatchObject({ kernel: 'blocked', wg: 4 });
    expect(pick(512, 49152, 576)).toMatchObject({ kernel: 'blocked', wg: 16, bk: 16, splitK: 1 });
    expect(pick(512, 576, 576)).toMatchObject({ kernel: 'blocked', wg: 8, bk: 32 });
    expect(pick(100, 100, 576)).toMatchObject({ kernel: 'blocked', wg: 4, bk: 32 });
  });

  it('fits the tiles to the workgroup memory and the workgroup to the invocation limit', () => {
    const small = { ...limits, maxComputeInvocationsPerWorkgroup: 128 };
    expect(pick(512, 49152, 576, small)).toMatchObject({ wg: 8 });
    const tight = { ...limits, maxComputeWorkgroupStorageSize: 8192 };
    const plan = pick(512, 49152, 576, tight);
    expect(blockedTileBytes(plan.wg, plan.bk)).toBeLessThanOrEqual(8192);
    expect(plan).toMatchObject({ wg: 16, bk: 8 });
  });

  it('splits K >= 4096 on a small grid (the LM head input gradient), never a batched or LoRA product', () => {
    expect(pick(512, 576, 49152)).toMatchObject({ kernel: 'blocked', wg: 8, splitK: 4 });
    expect(pick(512, 576, 4095).splitK).toBe(1);
    expect(pick(512, 576, 49152, limits, true).splitK).toBe(1);
    expect(chooseGpuMatmul(limits, { M: 512, N: 576, K: 49152, batch: 2, lora: false }).splitK).toBe(1);
    // Partial sums larger than one binding: fewer splits.
    expect(pick(512, 576, 49152, { ...limits, maxStorageBufferBindingSize: 512 * 576 * 4 * 2 }).splitK).toBe(2);
  });
});
