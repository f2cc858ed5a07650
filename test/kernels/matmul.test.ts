import { describe, expect, it } from 'vitest';
import { toF16Array } from '../../src/gpu';
import { defaultMatmulTuning, matmul, rowRange, sharedRowsFit, type MatmulArgs, type MatmulTuning } from '../../src/kernels/matmul';
import { matmulRef } from '../../src/kernels/reference/matmul';
import { runMatmulCase, selfTestCases } from '../../src/selftest/matmul';
import { expectClose } from '../helpers/compare';
import { describeSelfTestCases, getTestGpu, poisonedF32 } from '../helpers/gpu';
import { TRANSPOSES, transposeName } from '../helpers/matmulCases';
import { Rng } from '../helpers/random';

// Tolerances, relative to max |reference|: the reference accumulates in f64, the kernels in
// f32 over K <= 130 terms of size <= 1, measured at <= 4e-7. f16 weights are rounded through
// f16 in the reference too, so they get the same bound: it isolates kernel error.
const TOL = 1e-5;

const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1],
  [7, 33, 5],
  [33, 127, 65],
  [64, 64, 64],
];
const TRANS = TRANSPOSES;
const name = transposeName;

describe('matmulRef', () => {
  it('matches a product worked by hand, with alpha, beta and bias', () => {
    const a = new Float32Array([1, 2, 3, 4, 5, 6]); // [2, 3]
    const b = new Float32Array([7, 8, 9, 10, 11, 12]); // [3, 2]
    expect([...matmulRef({ a, b, M: 2, N: 2, K: 3 })]).toEqual([58, 64, 139, 154]);
    const c = new Float32Array([1, 1, 1, 1]);
    const bias = new Float32Array([10, 20]);
    const out = matmulRef({ a, b, c, M: 2, N: 2, K: 3, alpha: 2, beta: -1, bias });
    expect([...out]).toEqual([2 * 58 - 1 + 10, 2 * 64 - 1 + 20, 2 * 139 - 1 + 10, 2 * 154 - 1 + 20]);
  });

  it('reads transposed storage as the transpose', () => {
    const rng = new Rng(5);
    const [M, N, K] = [3, 4, 5];
    const a = rng.f32(M * K);
    const b = rng.f32(K * N);
    const at = new Float32Array(K * M);
    const bt = new Float32Array(N * K);
    for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) at[k * M + i] = a[i * K + k]!;
    for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) bt[j * K + k] = b[k * N + j]!;
    const plain = matmulRef({ a, b, M, N, K });
    expect(matmulRef({ a: at, b: bt, M, N, K, transA: true, transB: true })).toEqual(plain);
  });

  it('gives the linear-layer gradients (dX = G·W, dW = Gᵀ·X) that finite differences give', () => {
    // L = sum(G ⊙ (X·Wᵀ)) with X [T, I], W [O, I], G [T, O]; central differences in f64.
    const rng = new Rng(9);
    const [T, I, O] = [3, 4, 5];
    const x = Float64Array.from(rng.f32(T * I));
    const w = Float64Array.from(rng.f32(O * I));
    const g = rng.f32(T * O);
    const loss = (xv: Float64Array, wv: Float64Array) => {
      let s = 0;
      for (let t = 0; t < T; t++) {
        for (let o = 0; o < O; o++) {
          let y = 0;
          for (let i = 0; i < I; i++) y += xv[t * I + i]! * wv[o * I + i]!;
          s += g[t * O + o]! * y;
        }
      }
      return s;
    };
    const numeric = (v: Float64Array, k: number) => {
      const h = 1e-4;
      const save = v[k]!;
      v[k] = save + h;
      const up = loss(x, w);
      v[k] = save - h;
      const down = loss(x, w);
      v[k] = save;
      return (up - down) / (2 * h);
    };
    const dx = matmulRef({ a: g, b: Float32Array.from(w), M: T, N: I, K: O });
    const dw = matmulRef({ a: g, b: Float32Array.from(x), M: O, N: I, K: T, transA: true });
    for (let k = 0; k < T * I; k++) expect(dx[k]).toBeCloseTo(numeric(x, k), 4);
    for (let k = 0; k < O * I; k++) expect(dw[k]).toBeCloseTo(numeric(w, k), 4);
  });

  it('ignores NaN in C when beta is 0', () => {
    const out = matmulRef({ a: new Float32Array([2]), b: new Float32Array([3]), c: new Float32Array([NaN]), M: 1, N: 1, K: 1 });
    expect(out[0]).toBe(6);
  });
});

// The tiled kernel is the default on real GPUs; small tiles make these shapes span several.
const TILED: Partial<MatmulTuning> = { kernel: 'tiled', wgX: 4, wgY: 4, bk: 8 };

for (const [label, tuning] of [
  ['rows-shared kernel', { kernel: 'rows-shared' }],
  ['rows kernel', { kernel: 'rows', wgX: 4 }],
  ['register kernel', { kernel: 'register', wgX: 8, wgY: 8 }],
  ['tiled kernel', TILED],
] as Array<[string, Partial<MatmulTuning>]>) {
  describe(`matmul, ${label}`, () => {
    for (const t of TRANS) {
      it(`${name(t)} for every shape, NaN-poisoned C`, async () => {
        const gpu = await getTestGpu();
        for (const [M, N, K] of SHAPES) {
          const err = await runMatmulCase(gpu, { M, N, K, transA: t[0], transB: t[1], tuning }, M * 1000 + N + K);
          expect(err, `${M}x${N}x${K}`).toBeLessThanOrEqual(TOL);
        }
      });
    }

    it('alpha, beta and bias (beta 0 over NaN, and beta != 0 over old values)', async () => {
      const gpu = await getTestGpu();
      for (const t of TRANS) {
        const base = { M: 29, N: 70, K: 40, transA: t[0], transB: t[1], tuning, withBias: true };
        expect(await runMatmulCase(gpu, { ...base, alpha: -1.5 }, 11), name(t)).toBeLessThanOrEqual(TOL);
        expect(await runMatmulCase(gpu, { ...base, alpha: 0.25, beta: 0.5 }, 12), name(t)).toBeLessThanOrEqual(TOL);
      }
    });

    it('batched, with a broadcast operand (stride 0)', async () => {
      const gpu = await getTestGpu();
      // Shared weight: y_b = x_b Wᵀ for every batch item.
      expect(await runMatmulCase(gpu, { M: 9, N: 20, K: 16, batch: 3, transB: true, strideB: 0, tuning }, 21)).toBeLessThanOrEqual(TOL);
      // Shared left operand, odd sizes (unaligned strides).
      expect(await runMatmulCase(gpu, { M: 5, N: 7, K: 11, batch: 4, strideA: 0, tuning }, 22)).toBeLessThanOrEqual(TOL);
      // Aᵀ·B per item (weight-gradient shape), with beta.
      expect(
        await runMatmulCase(gpu, { M: 12, N: 8, K: 13, batch: 2, transA: true, beta: 1, tuning }, 23),
      ).toBeLessThanOrEqual(TOL);
    });

    it('f16 weights (B) with f32 activations, forward x·Wᵀ and backward dY·W', async () => {
      const gpu = await getTestGpu();
      for (const [M, N, K] of [
        [33, 48, 64],
        [7, 33, 5],
        [20, 65, 127],
      ] as const) {
        for (const transB of [true, false]) {
          const err = await runMatmulCase(gpu, { M, N, K, transB, bF16: true, withBias: transB, tuning }, M + N + K);
          expect(err, `${M}x${N}x${K} transB=${transB}`).toBeLessThanOrEqual(TOL);
        }
      }
      // batched f16 with an odd element offset per item
      expect(
        await runMatmulCase(gpu, { M: 6, N: 10, K: 7, batch: 3, transB: true, bF16: true, tuning }, 31),
      ).toBeLessThanOrEqual(TOL);
    });
  });
}

describe("matmul, 'rows-shared' against 'rows'", () => {
  it('is the CPU plan default on this adapter (lavapipe: subgroups of 8)', async () => {
    const gpu = await getTestGpu();
    expect(sharedRowsFit(gpu)).toBe(true);
    expect(defaultMatmulTuning(gpu).kernel).toBe(gpu.kernels === 'cpu' ? 'rows-shared' : 'by-shape');
  });

  // The two kernels feed the same values to the same expression, so they agree bit for bit:
  // the goldens, written with 'rows', hold for 'rows-shared' without a new bound.
  it('gives bit-identical outputs: odd shapes, every transpose, f16 B, batched, bias', async () => {
    const gpu = await getTestGpu();
    const rng = new Rng(41);
    const cases: Array<Omit<MatmulArgs, 'a' | 'b' | 'c'>> = [
      { M: 37, N: 70, K: 132 },
      { M: 9, N: 33, K: 68, transA: true },
      { M: 21, N: 45, K: 64, transB: true },
      { M: 16, N: 36, K: 40, transA: true, transB: true },
      { M: 13, N: 52, K: 40, transB: true, bF16: true },
      { M: 11, N: 20, K: 19, transB: true },
      { M: 10, N: 12, K: 16, batch: 3, transA: true, alpha: 0.5, beta: 1 },
    ];
    for (const [i, shape] of cases.entries()) {
      const batch = shape.batch ?? 1;
      const a = gpu.upload(rng.f32(shape.M * shape.K * batch));
      const bVals = rng.f32(shape.K * shape.N * batch);
      const b = gpu.upload(shape.bF16 ? toF16Array(bVals) : bVals);
      const c0 = rng.f32(shape.M * shape.N * batch);
      const bias = gpu.upload(rng.f32(shape.N));
      const outs: Float32Array[] = [];
      for (const kernel of ['rows', 'rows-shared'] as const) {
        const c = gpu.upload(c0);
        const rec = gpu.recorder('test');
        matmul(gpu, rec, { ...shape, a, b, c, bias: i % 2 === 0 ? bias : undefined, tuning: { kernel, wgX: 16 } });
        rec.submit();
        outs.push(await gpu.readF32(c));
        gpu.release(c);
      }
      expect(outs[1], JSON.stringify(shape)).toEqual(outs[0]);
      for (const buf of [a, b, bias]) gpu.release(buf);
    }
  });
});

describe('matmul views and large operands', () => {
  it('writes a column block of a wider C through ldc/offsetC and leaves the rest alone', async () => {
    const gpu = await getTestGpu();
    const rng = new Rng(41);
    const [M, N, K, ldc, offC, lda, offA] = [9, 13, 21, 40, 17, 25, 3];
    const a = rng.f32(offA + M * lda);
    const b = rng.f32(N * K);
    const c = rng.f32(offC + M * ldc);
    const ab = gpu.upload(a);
    const bb = gpu.upload(b);
    const cb = gpu.upload(c);
    const rec = gpu.recorder();
    const view = { M, N, K, transB: true, lda, offsetA: offA, ldc, offsetC: offC };
    matmul(gpu, rec, { ...view, a: ab, b: bb, c: cb });
    rec.submit();
    const got = await gpu.readF32(cb, c.length);
    const want = matmulRef({ ...view, a, b, c });
    expectClose(got, want, TOL, 'view');
    expect(got[0]).toBe(c[0]); // untouched prefix
    expect(got[offC + N]).toBe(c[offC + N]); // untouched column past the block
    for (const buf of [ab, bb, cb]) gpu.release(buf);
  });

  // A small binding limit forces the split path with ranges at unaligned element offsets.
  for (const [label, args] of [
    ['B rows along N (x·Wᵀ), f32', { M: 10, N: 150, K: 24, transB: true, withBias: true }],
    ['B rows along N (x·Wᵀ), f16', { M: 10, N: 150, K: 24, transB: true, bF16: true, withBias: true }],
    ['B rows along K (dY·W), with beta and bias', { M: 10, N: 24, K: 150, beta: 0.5, withBias: true }],
    ['C and A rows along M', { M: 90, N: 20, K: 30, transB: true }],
    ['Aᵀ rows along K', { M: 24, N: 16, K: 100, transA: true }],
  ] as const) {
    it(`splits operands over the binding limit: ${label}`, async () => {
      const gpu = await getTestGpu();
      const err = await runMatmulCase(gpu, { ...args, maxBindingBytes: 2048 }, 51);
      expect(err).toBeLessThanOrEqual(TOL);
    });
  }

  it('walks a weight in row chunks through rowRange (LM head by vocabulary chunk)', async () => {
    const gpu = await getTestGpu();
    const rng = new Rng(57);
    const [M, N, K, chunk] = [5, 100, 22, 37];
    const x = rng.f32(M * K);
    const w = toF16Array(rng.f32(N * K));
    const xb = gpu.upload(x);
    const wb = gpu.upload(w);
    const want = matmulRef({ a: x, b: w, M, N, K, transB: true });
    for (let n0 = 0; n0 < N; n0 += chunk) {
      const n = Math.min(chunk, N - n0);
      const view = rowRange(gpu, wb, n0, n, K, 2);
      const yb = poisonedF32(gpu, M * n);
      const rec = gpu.recorder();
      matmul(gpu, rec, { a: xb, b: view.binding, offsetB: view.offset, c: yb, M, N: n, K, transB: true, bF16: true });
      rec.submit();
      const got = await gpu.readF32(yb, M * n);
      const wantChunk = new Float32Array(M * n);
      for (let i = 0; i < M; i++) wantChunk.set(want.subarray(i * N + n0, i * N + n0 + n), i * n);
      expectClose(got, wantChunk, TOL, `chunk at ${n0}`);
      gpu.release(yb);
    }
    gpu.release(xb);
    gpu.release(wb);
  });

  it('runs an f16 weight larger than maxStorageBufferBindingSize (LM-head shape)', async () => {
    const gpu = await getTestGpu();
    const limit = gpu.limits.maxStorageBufferBindingSize;
    const K = 256;
    const N = Math.ceil((limit + (1 << 20)) / (2 * K)); // just over the limit, in f16
    const M = 3;
    const rng = new Rng(61);
    // A random table repeated with a period prime to K (rows differ), so the CPU side stays fast.
    const w = new Uint16Array(N * K);
    const table = toF16Array(rng.f32(4093));
    for (let i = 0; i < w.length; i += table.length) w.set(table.subarray(0, Math.min(table.length, w.length - i)), i);
    const x = rng.f32(M * K);
    const wb = gpu.upload(w, 'big-w');
    const xb = gpu.upload(x);
    const yb = poisonedF32(gpu, M * N);
    const rec = gpu.recorder();
    matmul(gpu, rec, { a: xb, b: wb, c: yb, M, N, K, transB: true, bF16: true });
    rec.submit();
    const got = await gpu.readF32(yb, M * N);
    // Check the first and last 64 columns of every row: they come from different chunks.
    const cols = [...Array(64).keys()].flatMap((j) => [j, N - 1 - j]);
    const wCols = new Uint16Array(cols.length * K);
    cols.forEach((j, r) => wCols.set(w.subarray(j * K, (j + 1) * K), r * K));
    const want = matmulRef({ a: x, b: wCols, M, N: cols.length, K, transB: true });
    const gotCols = new Float32Array(M * cols.length);
    for (let i = 0; i < M; i++) cols.forEach((j, r) => (gotCols[i * cols.length + r] = got[i * N + j]!));
    expectClose(gotCols, want, TOL, 'big f16 weight');
    expect(got.every(Number.isFinite)).toBe(true);
    gpu.pool.destroy(wb);
    gpu.release(xb);
    gpu.release(yb);
  });

  it('rejects shapes that do not fit their bindings', async () => {
    const gpu = await getTestGpu();
    const small = gpu.upload(new Float32Array(16));
    const rec = gpu.recorder();
    expect(() => matmul(gpu, rec, { a: small, b: small, c: small, M: 8, N: 8, K: 8 })).toThrow(/needs/);
    expect(() => matmul(gpu, rec, { a: small, b: small, c: small, M: 2, N: 2, K: 2, lda: 1 })).toThrow(/lda/);
    expect(rec.length).toBe(0);
    gpu.release(small);
  });
});

describe('matmul with specialised pipelines (the default on real GPUs)', () => {
  // Same code with the option flags folded in as constants; lavapipe compiles each variant for
  // seconds, so one representative (forward x·Wᵀ + bias, aligned) stands for the rest.
  it('x·Wᵀ + bias, tiled', async () => {
    const gpu = await getTestGpu();
    const tuning = { ...TILED, specialize: true };
    const err = await runMatmulCase(gpu, { M: 70, N: 72, K: 40, transB: true, withBias: true, tuning }, 71);
    expect(err).toBeLessThanOrEqual(TOL);
  });
});

describeSelfTestCases('matmul', selfTestCases);
