import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu';
import { clipGradNorm, gradNormClipStep, gradNormLayout, partialSlots, REDUCE_BLOCK, sum } from '../../src/kernels/reduce';
import { clipGradNormRef, sumRef } from '../../src/kernels/reference/reduce';
import { selfTestCases } from '../../src/selftest/reduce';
import { expectClose } from '../helpers/compare';
import { describeSelfTestCases, expectReductionVariant, getTestGpu, poisonedF32 } from '../helpers/gpu';
import { Rng } from '../helpers/random';

// f32 sums against f64: |error| <= 2e-6 * sum|x| covers both the one-workgroup loop (up to
// ~280 terms per thread here) and the two-stage tree.
const SUM_TOL = 2e-6;

async function gpuSum(
  gpu: Gpu,
  x: Float32Array,
  opts: { squared?: boolean; twoStage?: boolean; accumulateOnto?: number },
): Promise<number> {
  const xb = gpu.upload(x);
  const out = opts.accumulateOnto === undefined ? poisonedF32(gpu, 3) : gpu.upload(new Float32Array([0, opts.accumulateOnto, 0]));
  const scratch = opts.twoStage ? poisonedF32(gpu, partialSlots(x.length)) : undefined;
  const rec = gpu.recorder();
  const accumulate = opts.accumulateOnto !== undefined;
  sum(gpu, rec, { x: xb, n: x.length, out, outOffset: 1, squared: opts.squared, accumulate, scratch });
  rec.submit();
  const [v] = await gpu.readF32(out, 1, 1);
  gpu.release(xb);
  gpu.release(out);
  if (scratch) gpu.release(scratch);
  return v!;
}

function absSum(x: Float32Array, squared = false): number {
  return sumRef(x.map(Math.abs), x.length, squared);
}

describe('sum', () => {
  for (const n of [1, 7, 33, 1000, 5003, 70_001]) {
    it(`sums n=${n} in one workgroup and in two stages`, async () => {
      const gpu = await getTestGpu();
      const x = new Rng(n).f32(n);
      for (const twoStage of [false, true]) {
        const got = await gpuSum(gpu, x, { twoStage });
        expect(Math.abs(got - sumRef(x))).toBeLessThanOrEqual(SUM_TOL * absSum(x));
        const sq = await gpuSum(gpu, x, { twoStage, squared: true });
        expect(Math.abs(sq - sumRef(x, n, true))).toBeLessThanOrEqual(SUM_TOL * absSum(x, true));
      }
    });
  }

  it('accumulates onto the existing value', async () => {
    const gpu = await getTestGpu();
    const x = new Rng(5).f32(777);
    const got = await gpuSum(gpu, x, { accumulateOnto: 2.5 });
    expect(Math.abs(got - (2.5 + sumRef(x)))).toBeLessThanOrEqual(SUM_TOL * (2.5 + absSum(x)));
  });

  it('is bit-identical from run to run', async () => {
    const gpu = await getTestGpu();
    const x = new Rng(9).f32(3 * REDUCE_BLOCK + 17);
    const a = await gpuSum(gpu, x, { twoStage: true });
    const b = await gpuSum(gpu, x, { twoStage: true });
    expect(Object.is(a, b)).toBe(true);
  });
});

describe('clipGradNorm', () => {
  const sizes = [1, 7, 33, 5003];

  async function run(scaleOfNorm: number, applyScale: boolean) {
    const gpu = await getTestGpu();
    const rng = new Rng(42);
    const grads = sizes.map((n) => rng.f32(n, -0.5, 0.5));
    const refNorm = clipGradNormRef(grads, Infinity).norm;
    const maxNorm = refNorm * scaleOfNorm;
    const ref = clipGradNormRef(grads, maxNorm);
    const bufs = grads.map((g) => gpu.upload(g));
    const layout = gradNormLayout(sizes);
    const partials = poisonedF32(gpu, layout.slots);
    const normOut = poisonedF32(gpu, 2);
    const rec = gpu.recorder();
    clipGradNorm(gpu, rec, { grads: bufs.map((buffer, i) => ({ buffer, n: sizes[i]! })), partials, maxNorm, normOut, applyScale });
    rec.submit();
    const [norm, coef] = await gpu.readF32(normOut, 2);
    const out = await Promise.all(bufs.map((b, i) => gpu.readF32(b, sizes[i]!)));
    for (const b of [...bufs, partials, normOut]) gpu.release(b);
    return { grads, ref, norm: norm!, coef: coef!, out };
  }

  it('scales every gradient when the norm is above the max', async () => {
    const r = await run(0.4, true);
    expect(r.ref.coef).toBeLessThan(0.5);
    expectClose([r.norm], [r.ref.norm], 1e-5, 'norm');
    expectClose([r.coef], [r.ref.coef], 1e-5, 'coef');
    r.out.forEach((g, i) => expectClose(g, r.ref.clipped[i]!, 1e-5, `grad ${i}`));
  });

  it('leaves gradients unchanged when the norm is below the max', async () => {
    const r = await run(1.7, true);
    expect(r.ref.coef).toBe(1);
    expectClose([r.norm], [r.ref.norm], 1e-5, 'norm');
    expect(r.coef).toBe(1);
    r.out.forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(r.grads[i]!)));
  });

  it('only computes the coefficient with applyScale: false', async () => {
    const r = await run(0.4, false);
    expectClose([r.coef], [r.ref.coef], 1e-5, 'coef');
    r.out.forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(r.grads[i]!)));
  });
});

describe('reduction variant', () => {
  it("the sums and the norm run the device plan's reductions (subgroups under the GPU plan)", async () => {
    const gpu = await getTestGpu();
    const x = new Rng(4).f32(2 * REDUCE_BLOCK + 3);
    expect(Math.abs((await gpuSum(gpu, x, { twoStage: true })) - sumRef(x))).toBeLessThanOrEqual(SUM_TOL * absSum(x));
    const grads = [gpu.upload(x)];
    const partials = poisonedF32(gpu, gradNormLayout([x.length]).slots);
    const normOut = poisonedF32(gpu, 2);
    const state = gpu.upload(new Float32Array(4));
    const rec = gpu.recorder();
    clipGradNorm(gpu, rec, { grads: [{ buffer: grads[0]!, n: x.length }], partials, maxNorm: 1, normOut, applyScale: false });
    gradNormClipStep(gpu, rec, { partials, slots: gradNormLayout([x.length]).slots, maxNorm: 1, state });
    rec.submit();
    const norm = Math.sqrt(sumRef(x, x.length, true));
    expect(Math.abs((await gpu.readF32(normOut, 1))[0]! - norm)).toBeLessThanOrEqual(SUM_TOL * norm);
    expect(Math.abs((await gpu.readF32(state, 1))[0]! - norm)).toBeLessThanOrEqual(SUM_TOL * norm);
    for (const b of [...grads, partials, normOut, state]) gpu.release(b);
    expectReductionVariant(gpu, ['reduce.sum_blocks', 'reduce.norm_and_clip_coef', 'reduce.norm_clip_step']);
  });
});

describeSelfTestCases('reduce', selfTestCases);

describe('gradNormClipStep', () => {
  async function verdict(gpu: Gpu, partials: number[], maxNorm: number, before: number): Promise<Float32Array> {
    const p = gpu.upload(Float32Array.from(partials));
    const state = gpu.upload(Float32Array.of(0, 0, 0, before));
    const rec = gpu.recorder();
    gradNormClipStep(gpu, rec, { partials: p, slots: partials.length, maxNorm, state });
    rec.submit();
    const out = await gpu.readF32(state);
    gpu.release(p);
    gpu.release(state);
    return out;
  }

  it('writes the norm, the clip coefficient, no skip, and counts the step', async () => {
    const gpu = await getTestGpu();
    const out = await verdict(gpu, [9, 16], 1, 6);
    expect(out[0]).toBe(5);
    expect(out[1]).toBe(Math.fround(1 / (5 + 1e-6)));
    expect(out[2]).toBe(0);
    expect(out[3]).toBe(7);
    expect((await verdict(gpu, [0.25], 1, 0))[1]).toBe(1);
  });

  it('flags NaN and infinite norms as skipped and leaves the step count', async () => {
    const gpu = await getTestGpu();
    for (const bad of [NaN, Infinity, 3e38]) {
      // 3e38 + 3e38 overflows to Infinity in the sum: an overflowing finite gradient also skips.
      const out = await verdict(gpu, [bad, bad === 3e38 ? 3e38 : 1], 1, 6);
      expect(out[2]).toBe(1);
      expect(out[3]).toBe(6);
      expect(Number.isFinite(out[0])).toBe(false);
    }
  });
});
