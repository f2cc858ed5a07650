import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu';
import { fromF16Array, toF16Array } from '../../src/util/f16';
import { dropoutMask, loraBackward, loraDown, loraLinear, loraScale, type LoraDropout } from '../../src/kernels/lora';
import {
  dropoutMaskRef,
  loraBackwardRef,
  loraDownRef,
  loraLinearRef,
  passMaskSeed,
  type DropoutSpec,
} from '../../src/kernels/reference/lora';
import { selfTestCases } from '../../src/selftest/lora';
import { expectClose, numericGrad } from '../helpers/compare';
import { describeSelfTestCases, getTestGpu, poisonedF32 } from '../helpers/gpu';
import { passSeedOf, seedBeforePass } from '../helpers/passSeed';
import { Rng } from '../helpers/random';

// Bounds, relative to max |reference|. The kernels accumulate in f32 against f64 references;
// sums here run over at most ~130 terms, so errors sit near 1e-7..1e-6.
const TOL_F32 = 1e-5;

type Shape = [T: number, K: number, N: number, r: number];
// Not multiples of any tile; T covers the 16- and 64-row tiles (and several of them);
// r covers one partial 16-column chunk (1, 4, 8), exactly one (16), a partial second (20) and four (64).
const SHAPES: Shape[] = [
  [1, 1, 1, 1],
  [7, 33, 5, 4],
  [33, 127, 65, 8],
  [20, 50, 30, 16],
  [130, 40, 70, 20],
  [5, 17, 9, 64],
];

function upload(gpu: Gpu, data: Float32Array | Uint16Array, made: GPUBuffer[]): GPUBuffer {
  const b = gpu.upload(data);
  made.push(b);
  return b;
}

function poisoned(gpu: Gpu, n: number, made: GPUBuffer[]): GPUBuffer {
  const b = poisonedF32(gpu, n);
  made.push(b);
  return b;
}

function release(gpu: Gpu, made: GPUBuffer[]): void {
  for (const b of made) gpu.release(b);
}

async function forwardCase(gpu: Gpu, shape: Shape, opts: { bias: boolean; f16: boolean; seed: number }) {
  const [T, K, N, r] = shape;
  const rng = new Rng(opts.seed);
  const x = rng.f32(T * K);
  const w32 = rng.f32(N * K);
  const a = rng.f32(r * K);
  const b = rng.f32(N * r); // PEFT starts B at zero; random B exercises the low-rank path
  const bias = opts.bias ? rng.f32(N) : null;
  const scale = loraScale(16, r);
  const wBits = toF16Array(w32);
  const wRef = opts.f16 ? fromF16Array(wBits) : w32;
  const made: GPUBuffer[] = [];
  const u = poisoned(gpu, T * r, made);
  const y = poisoned(gpu, T * N, made);
  const rec = gpu.recorder();
  const xb = upload(gpu, x, made);
  loraDown(gpu, rec, { x: xb, a: upload(gpu, a, made), u, T, K, r });
  loraLinear(gpu, rec, {
    x: xb,
    w: upload(gpu, opts.f16 ? wBits : w32, made),
    wF16: opts.f16,
    bias: bias ? upload(gpu, bias, made) : null,
    u,
    b: upload(gpu, b, made),
    y,
    T,
    K,
    N,
    r,
    scale,
  });
  rec.submit();
  const uRef = loraDownRef(x, a, T, K, r);
  const yRef = loraLinearRef(x, wRef, bias, uRef, b, T, K, N, r, scale);
  const uGpu = await gpu.readF32(u, T * r);
  const yGpu = await gpu.readF32(y, T * N);
  release(gpu, made);
  return { uGpu, uRef, yGpu, yRef };
}

describe('loraDown + loraLinear (forward)', () => {
  for (const shape of SHAPES) {
    it(`matches the reference for T,K,N,r = ${shape.join(',')} (f32 W, bias)`, async () => {
      const gpu = await getTestGpu();
      const { uGpu, uRef, yGpu, yRef } = await forwardCase(gpu, shape, { bias: true, f16: false, seed: 11 });
      expectClose(uGpu, uRef, TOL_F32, 'u');
      expectClose(yGpu, yRef, TOL_F32, 'y');
    });
  }

  it('works without a bias', async () => {
    const gpu = await getTestGpu();
    const { yGpu, yRef } = await forwardCase(gpu, [33, 127, 65, 8], { bias: false, f16: false, seed: 12 });
    expectClose(yGpu, yRef, TOL_F32, 'y no bias');
  });

  // The reference uses the same f16-rounded weights, so only f32 accumulation order separates them.
  for (const shape of [[7, 33, 5, 4], [33, 127, 65, 8], [130, 41, 70, 20]] as Shape[]) {
    it(`reads f16 weights, T,K,N,r = ${shape.join(',')} (odd K: rows start mid-word)`, async () => {
      const gpu = await getTestGpu();
      const { yGpu, yRef } = await forwardCase(gpu, shape, { bias: true, f16: true, seed: 13 });
      expectClose(yGpu, yRef, TOL_F32, 'y f16 W');
    });
  }

  it('adds the low-rank path with its scale (B and scale matter)', async () => {
    // Guards against a kernel that silently drops the r-loop: y with B differs from y without.
    const gpu = await getTestGpu();
    const [T, K, N, r] = [9, 20, 11, 4];
    const rng = new Rng(5);
    const x = rng.f32(T * K);
    const w = rng.f32(N * K);
    const u = rng.f32(T * r);
    const b = rng.f32(N * r);
    const made: GPUBuffer[] = [];
    const y = poisoned(gpu, T * N, made);
    const rec = gpu.recorder();
    const scale = loraScale(8, r, true); // rsLoRA: 8 / 2
    expect(scale).toBe(4);
    loraLinear(gpu, rec, { x: upload(gpu, x, made), w: upload(gpu, w, made), u: upload(gpu, u, made), b: upload(gpu, b, made), y, T, K, N, r, scale });
    rec.submit();
    const got = await gpu.readF32(y, T * N);
    expectClose(got, loraLinearRef(x, w, null, u, b, T, K, N, r, scale), TOL_F32, 'y');
    const base = loraLinearRef(x, w, null, u, b, T, K, N, r, 0);
    let diff = 0;
    for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i]! - base[i]!));
    expect(diff).toBeGreaterThan(0.1);
    release(gpu, made);
  });
});

describe('reference backward vs finite differences of the reference forward', () => {
  // loss = sum(y * g), y = x W^T + bias + s * (x_d A^T) B^T; y is linear in each of A, B, x, so
  // central differences are exact up to f64 rounding.
  for (const dropout of [null, { seed: 3, p: 0.4 }] as (DropoutSpec | null)[]) {
    it(`gradA, gradB and dx ${dropout ? 'with' : 'without'} dropout`, () => {
      const [T, K, N, r] = [3, 6, 4, 2];
      const rng = new Rng(21);
      const x = Float64Array.from(rng.f32(T * K));
      const w = Float64Array.from(rng.f32(N * K));
      const bias = Float64Array.from(rng.f32(N));
      const a = Float64Array.from(rng.f32(r * K));
      const b = Float64Array.from(rng.f32(N * r));
      const g = Float64Array.from(rng.f32(T * N));
      const scale = 1.7;
      const loss = () => {
        const u = loraDownRef(x, a, T, K, r, dropout);
        const y = loraLinearRef(x, w, bias, u, b, T, K, N, r, scale);
        let s = 0;
        for (let i = 0; i < y.length; i++) s += y[i]! * g[i]!;
        return s;
      };
      const fd = (p: Float64Array) => numericGrad(p, loss, 1e-4);
      const u = loraDownRef(x, a, T, K, r, dropout);
      const ref = loraBackwardRef({ x, dy: g, u, a, b, T, K, N, r, scale, dropout });
      // The reference's dx is the low-rank part only; add the base path's g W.
      const dxFull = Float64Array.from(ref.dx, (v, i) => {
        const t = Math.floor(i / K);
        const k = i % K;
        let s = v;
        for (let n = 0; n < N; n++) s += g[t * N + n]! * w[n * K + k]!;
        return s;
      });
      expectClose(ref.gradA, fd(a), 1e-8, 'gradA vs FD');
      expectClose(ref.gradB, fd(b), 1e-8, 'gradB vs FD');
      expectClose(dxFull, fd(x), 1e-8, 'dx vs FD');
      if (dropout) {
        // The mask must really drop something here, or the dropout branch was not exercised.
        expect(dropoutMaskRef(new Float64Array(T * K).fill(1), dropout).some((v) => v === 0)).toBe(true);
      }
    });
  }
});

async function backwardCase(
  gpu: Gpu,
  shape: Shape,
  opts: { accumulate: boolean; dx: 'none' | 'overwrite' | 'accumulate'; dropout: LoraDropout | null; seed: number },
) {
  const [T, K, N, r] = shape;
  const rng = new Rng(opts.seed);
  const x = rng.f32(T * K);
  const dy = rng.f32(T * N);
  const u = rng.f32(T * r);
  const a = rng.f32(r * K);
  const b = rng.f32(N * r);
  const gradA0 = rng.f32(r * K);
  const gradB0 = rng.f32(N * r);
  const dx0 = rng.f32(T * K);
  const scale = 0.75;
  const made: GPUBuffer[] = [];
  const du = poisoned(gpu, T * r, made);
  const gradA = opts.accumulate ? upload(gpu, gradA0, made) : poisoned(gpu, r * K, made);
  const gradB = opts.accumulate ? upload(gpu, gradB0, made) : poisoned(gpu, N * r, made);
  const dx = opts.dx === 'accumulate' ? upload(gpu, dx0, made) : poisoned(gpu, T * K, made);
  const rec = gpu.recorder();
  loraBackward(gpu, rec, {
    x: upload(gpu, x, made),
    dy: upload(gpu, dy, made),
    u: upload(gpu, u, made),
    a: upload(gpu, a, made),
    b: upload(gpu, b, made),
    du,
    gradA,
    gradB,
    dx: opts.dx === 'none' ? null : dx,
    accumulateDx: opts.dx === 'accumulate',
    T,
    K,
    N,
    r,
    scale,
    accumulate: opts.accumulate,
    dropout: opts.dropout,
  });
  rec.submit();
  const ref = loraBackwardRef({ x, dy, u, a, b, T, K, N, r, scale, dropout: opts.dropout });
  const out = {
    du: await gpu.readF32(du, T * r),
    gradA: await gpu.readF32(gradA, r * K),
    gradB: await gpu.readF32(gradB, N * r),
    dx: await gpu.readF32(dx, T * K),
  };
  release(gpu, made);
  const plus = (base: Float32Array, d: Float64Array) => Float64Array.from(d, (v, i) => v + base[i]!);
  const want = {
    du: ref.du,
    gradA: opts.accumulate ? plus(gradA0, ref.gradA) : ref.gradA,
    gradB: opts.accumulate ? plus(gradB0, ref.gradB) : ref.gradB,
    dx: opts.dx === 'accumulate' ? plus(dx0, ref.dx) : ref.dx,
  };
  return { out, want };
}

describe('loraBackward', () => {
  for (const shape of SHAPES) {
    it(`matches the reference for T,K,N,r = ${shape.join(',')}`, async () => {
      const gpu = await getTestGpu();
      const { out, want } = await backwardCase(gpu, shape, { accumulate: false, dx: 'overwrite', dropout: null, seed: 31 });
      expectClose(out.du, want.du, TOL_F32, 'du');
      expectClose(out.gradA, want.gradA, TOL_F32, 'gradA');
      expectClose(out.gradB, want.gradB, TOL_F32, 'gradB');
      expectClose(out.dx, want.dx, TOL_F32, 'dx');
    });
  }

  it('accumulates into gradA, gradB and dx when asked', async () => {
    const gpu = await getTestGpu();
    const { out, want } = await backwardCase(gpu, [33, 127, 65, 8], { accumulate: true, dx: 'accumulate', dropout: null, seed: 32 });
    expectClose(out.gradA, want.gradA, TOL_F32, 'gradA +=');
    expectClose(out.gradB, want.gradB, TOL_F32, 'gradB +=');
    expectClose(out.dx, want.dx, TOL_F32, 'dx +=');
  });

  it('leaves dx alone when it is not given', async () => {
    const gpu = await getTestGpu();
    const { out, want } = await backwardCase(gpu, [7, 33, 5, 4], { accumulate: false, dx: 'none', dropout: null, seed: 33 });
    expect(out.dx.every((v) => Number.isNaN(v))).toBe(true); // still the poison
    expectClose(out.gradA, want.gradA, TOL_F32, 'gradA');
  });

  it('applies the forward dropout mask to gradA and dx', async () => {
    const gpu = await getTestGpu();
    const dropout = { seed: 77, p: 0.3 };
    const { out, want } = await backwardCase(gpu, [130, 40, 70, 20], { accumulate: false, dx: 'overwrite', dropout, seed: 34 });
    expectClose(out.gradA, want.gradA, TOL_F32, 'gradA dropout');
    expectClose(out.gradB, want.gradB, TOL_F32, 'gradB dropout');
    expectClose(out.dx, want.dx, TOL_F32, 'dx dropout');
    const noDrop = loraBackwardRef({ ...refInputs(130, 40, 70, 20, 34), dropout: null });
    expect(Math.abs(noDrop.gradA[0]! - want.gradA[0]!)).toBeGreaterThan(0); // the mask changed something
  });
});

/** Rebuilds backwardCase's inputs (same Rng sequence) for a reference-only comparison. */
function refInputs(T: number, K: number, N: number, r: number, seed: number) {
  const rng = new Rng(seed);
  return { x: rng.f32(T * K), dy: rng.f32(T * N), u: rng.f32(T * r), a: rng.f32(r * K), b: rng.f32(N * r), T, K, N, r, scale: 0.75 };
}

describe('dropout', () => {
  async function mask(gpu: Gpu, x: Float32Array, seed: number, p: number): Promise<Float32Array> {
    const made: GPUBuffer[] = [];
    const xd = poisoned(gpu, x.length, made);
    const rec = gpu.recorder();
    dropoutMask(gpu, rec, { x: upload(gpu, x, made), xd, n: x.length, seed, p });
    rec.submit();
    const out = await gpu.readF32(xd, x.length);
    release(gpu, made);
    return out;
  }

  it('matches the reference bit for bit, is deterministic per seed and scales kept elements by 1/(1-p)', async () => {
    const gpu = await getTestGpu();
    const n = 20_011;
    const x = new Rng(41).f32(n, 0.5, 1.5); // no zeros, so a zero output means dropped
    const p = 0.3;
    const first = await mask(gpu, x, 1234, p);
    const again = await mask(gpu, x, 1234, p);
    const other = await mask(gpu, x, 1235, p);
    expect(Array.from(first)).toEqual(Array.from(dropoutMaskRef(x, { seed: 1234, p })));
    expect(Array.from(again)).toEqual(Array.from(first));
    let dropped = 0;
    let differ = 0;
    const invKeep = Math.fround(1 / (1 - p));
    for (let i = 0; i < n; i++) {
      if (first[i] === 0) dropped++;
      else expect(first[i]).toBe(Math.fround(x[i]! * invKeep));
      if ((first[i] === 0) !== (other[i] === 0)) differ++;
    }
    // Binomial: sd of the dropped fraction is sqrt(0.21 / n) ~ 0.003.
    expect(Math.abs(dropped / n - p)).toBeLessThan(0.02);
    // Two independent masks disagree on 2 p (1 - p) = 42% of elements.
    expect(Math.abs(differ / n - 0.42)).toBeLessThan(0.03);
  });

  it('keeps everything at p = 0 and rejects p outside [0, 1)', async () => {
    const gpu = await getTestGpu();
    const x = new Rng(42).f32(333);
    expect(Array.from(await mask(gpu, x, 9, 0))).toEqual(Array.from(x));
    const rec = gpu.recorder();
    const xb = gpu.upload(x);
    expect(() => dropoutMask(gpu, rec, { x: xb, xd: xb, n: 333, seed: 1, p: 1 })).toThrow(/dropout p/);
    gpu.release(xb);
  });

  it('inline dropout in loraDown equals loraDown over the materialised x_d', async () => {
    const gpu = await getTestGpu();
    const [T, K, r] = [33, 127, 8];
    const rng = new Rng(43);
    const x = rng.f32(T * K);
    const a = rng.f32(r * K);
    const dropout = { seed: 5, p: 0.25 };
    const made: GPUBuffer[] = [];
    const xd = poisoned(gpu, T * K, made);
    const uInline = poisoned(gpu, T * r, made);
    const uMaterial = poisoned(gpu, T * r, made);
    const xb = upload(gpu, x, made);
    const ab = upload(gpu, a, made);
    const rec = gpu.recorder();
    loraDown(gpu, rec, { x: xb, a: ab, u: uInline, T, K, r, dropout });
    dropoutMask(gpu, rec, { x: xb, xd, n: T * K, ...dropout });
    loraDown(gpu, rec, { x: xd, a: ab, u: uMaterial, T, K, r });
    rec.submit();
    const inline = await gpu.readF32(uInline, T * r);
    const material = await gpu.readF32(uMaterial, T * r);
    release(gpu, made);
    const ref = loraDownRef(x, a, T, K, r, dropout);
    expectClose(inline, ref, TOL_F32, 'u inline dropout');
    // Same products in the same order: identical.
    expect(Array.from(inline)).toEqual(Array.from(material));
    expect(Math.abs(loraDownRef(x, a, T, K, r)[0]! - ref[0]!)).toBeGreaterThan(0);
  });
});

// The training pass's form of a mask seed: seed + multiplier * S, S read by the kernels from a
// buffer when the pass runs (so a recorded pass replays with new masks). It must draw exactly
// the mask of the fixed seed it adds up to.
describe('dropout seeds completed per pass', () => {
  const bits = (v: Float32Array) => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));

  it('gives loraBackward the bits of the fixed seed they add up to, whatever the pass seed', async () => {
    const gpu = await getTestGpu();
    const shape: Shape = [130, 40, 70, 20];
    const fixed = { seed: 77, p: 0.3 };
    const want = await backwardCase(gpu, shape, { accumulate: false, dx: 'overwrite', dropout: fixed, seed: 34 });
    expectClose(want.out.gradA, want.want.gradA, TOL_F32, 'gradA (fixed seed)');
    for (const S of [0, 12_345, 0xfffffff1]) {
      const pass = passSeedOf(gpu, S);
      const got = await backwardCase(gpu, shape, { accumulate: false, dx: 'overwrite', dropout: { seed: seedBeforePass(fixed.seed, S), p: fixed.p, pass }, seed: 34 });
      gpu.release(pass.values);
      for (const k of ['du', 'gradA', 'gradB', 'dx'] as const) expect(bits(got.out[k]), `${k}, pass seed ${S}`).toEqual(bits(want.out[k]));
    }
  });

  it('draws in loraDown the mask of the pass seed in the buffer when the pass runs', async () => {
    const gpu = await getTestGpu();
    const [T, K, r] = [33, 127, 8];
    const rng = new Rng(44);
    const x = rng.f32(T * K);
    const a = rng.f32(r * K);
    const p = 0.25;
    const made: GPUBuffer[] = [];
    const xb = upload(gpu, x, made);
    const ab = upload(gpu, a, made);
    const u = poisoned(gpu, T * r, made);
    const pass = passSeedOf(gpu, 0);
    made.push(pass.values);
    const dropout = { seed: 1000, p, pass };
    // The same dispatch (same parameters, same bind group) in two passes with different pass seeds.
    for (const S of [3, 0x80000001]) {
      gpu.write(pass.values, Uint32Array.of(S), 4);
      const rec = gpu.recorder();
      loraDown(gpu, rec, { x: xb, a: ab, u, T, K, r, dropout });
      rec.submit();
      const got = await gpu.readF32(u, T * r);
      const maskSeed = passMaskSeed(1000, pass.multiplier, S);
      expectClose(got, loraDownRef(x, a, T, K, r, { seed: maskSeed, p }), TOL_F32, `u, pass seed ${S}`);
      const fixed = poisoned(gpu, T * r, made);
      const rec2 = gpu.recorder();
      loraDown(gpu, rec2, { x: xb, a: ab, u: fixed, T, K, r, dropout: { seed: maskSeed, p } });
      rec2.submit();
      expect(bits(got)).toEqual(bits(await gpu.readF32(fixed, T * r)));
    }
    release(gpu, made);
  });
});

describe('argument checks', () => {
  it('rejects buffers too small for the stated shape', async () => {
    const gpu = await getTestGpu();
    const small = gpu.createBuffer(16);
    const rec = gpu.recorder();
    expect(() => loraDown(gpu, rec, { x: small, a: small, u: small, T: 8, K: 8, r: 2 })).toThrow(/x holds 16 bytes, needs 256/);
    expect(() => loraDown(gpu, rec, { x: small, a: small, u: small, T: 1, K: 1, r: 0 })).toThrow(/r must be >= 1/);
    gpu.release(small);
  });
});

describeSelfTestCases('lora', selfTestCases);
