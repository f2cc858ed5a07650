import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu';
import { ADAMW_HYPER_FLOATS, ADAMW_TABLE, adamwFlat, adamwHyperTable, adamwStep, adamwStepAll, type AdamWHyper } from '../../src/kernels/adamw';
import { adamwStepRef } from '../../src/kernels/reference/adamw';
import { selfTestCases } from '../../src/selftest/adamw';
import { expectClose } from '../helpers/compare';
import { describeSelfTestCases, getTestGpu } from '../helpers/gpu';
import { Rng } from '../helpers/random';

// f32 kernel vs the f64-per-op reference with f32 storage: a few ulp per step, relative to
// max |ref| of each tensor. 5 steps stay well inside 3e-6.
const TOL = 3e-6;
// Elements past n: the kernel must not touch them.
const TAIL = 5;
const SENTINEL = 123.25;

interface State {
  param: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

function withTail(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length + TAIL).fill(SENTINEL);
  out.set(x);
  return out;
}

async function runSteps(
  gpu: Gpu,
  n: number,
  base: Omit<AdamWHyper, 'step'>,
  opts: { firstStep?: number; steps: number; nonzeroState?: boolean; clipCoefs?: number[] },
): Promise<void> {
  const rng = new Rng(1000 + n);
  const ref: State = {
    param: rng.f32(n),
    m: opts.nonzeroState ? rng.f32(n, -0.1, 0.1) : new Float32Array(n),
    v: opts.nonzeroState ? rng.f32(n, 1e-4, 1e-2) : new Float32Array(n),
  };
  const pb = gpu.upload(withTail(ref.param));
  const mb = gpu.upload(withTail(ref.m));
  const vb = gpu.upload(withTail(ref.v));
  const gb = gpu.createBuffer((n + TAIL) * 4);
  const scaleBuf = gpu.createBuffer(8);
  const first = opts.firstStep ?? 1;
  for (let s = 0; s < opts.steps; s++) {
    const step = first + s;
    const grad = rng.f32(n);
    gpu.write(gb, withTail(grad));
    const hp = { ...base, step };
    const coef = opts.clipCoefs?.[s];
    const rec = gpu.recorder();
    if (coef !== undefined) {
      gpu.write(scaleBuf, new Float32Array([NaN, coef]));
      adamwStep(gpu, rec, { param: pb, grad: gb, expAvg: mb, expAvgSq: vb, n }, hp, { buffer: scaleBuf, index: 1 });
    } else {
      adamwStep(gpu, rec, { param: pb, grad: gb, expAvg: mb, expAvgSq: vb, n }, hp);
    }
    rec.submit();
    adamwStepRef(ref.param, grad, ref.m, ref.v, hp, coef ?? 1);
    const [p, m, v] = await Promise.all([pb, mb, vb].map((b) => gpu.readF32(b, n + TAIL)));
    expectClose(p!.subarray(0, n), ref.param, TOL, `param n=${n} step ${step}`);
    expectClose(m!.subarray(0, n), ref.m, TOL, `exp_avg n=${n} step ${step}`);
    expectClose(v!.subarray(0, n), ref.v, TOL, `exp_avg_sq n=${n} step ${step}`);
    for (const out of [p!, m!, v!]) expect(Array.from(out.subarray(n))).toEqual(new Array(TAIL).fill(SENTINEL));
  }
  for (const b of [pb, mb, vb, gb, scaleBuf]) gpu.release(b);
}

const HP = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

describe('adamwStep', () => {
  for (const n of [1, 7, 33, 1000, 5003]) {
    it(`matches torch.optim.AdamW over steps 1..5, n=${n}`, async () => {
      await runSteps(await getTestGpu(), n, HP, { steps: 5 });
    });
  }

  it('matches without weight decay and with other betas', async () => {
    await runSteps(await getTestGpu(), 257, { lr: 3e-3, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0 }, { steps: 5 });
  });

  it('resumes from saved moments at a later step', async () => {
    await runSteps(await getTestGpu(), 130, HP, { firstStep: 17, steps: 3, nonzeroState: true });
  });

  it('folds in the clip coefficient read from a buffer', async () => {
    await runSteps(await getTestGpu(), 129, HP, { steps: 4, clipCoefs: [0.37, 1, 0.052, 0.9] });
  });

  it('moves a parameter by about lr at step 1 (bias correction cancels)', async () => {
    // At step 1 m/bc1 = g and sqrt(v/bc2) = |g|, so p' = p(1 - lr*wd) - lr*sign(g) (eps aside).
    const gpu = await getTestGpu();
    const param = new Float32Array([0.5, -0.25, 2]);
    const grad = new Float32Array([0.3, -7, 1e-3]);
    const [pb, gb, mb, vb] = [param, grad, new Float32Array(3), new Float32Array(3)].map((a) => gpu.upload(a));
    const rec = gpu.recorder();
    adamwStepAll(gpu, rec, [{ param: pb!, grad: gb!, expAvg: mb!, expAvgSq: vb!, n: 3 }], { ...HP, step: 1 });
    rec.submit();
    const got = await gpu.readF32(pb!, 3);
    const want = Array.from(param, (p, i) => p * (1 - HP.lr * HP.weightDecay) - HP.lr * Math.sign(grad[i]!));
    expectClose(got, want, 1e-5, 'step-1 update');
    for (const b of [pb!, gb!, mb!, vb!]) gpu.release(b);
  });

  it('rejects a 0-based step', async () => {
    const gpu = await getTestGpu();
    const b = gpu.createBuffer(16);
    expect(() => adamwStep(gpu, gpu.recorder(), { param: b, grad: b, expAvg: b, expAvgSq: b, n: 1 }, { ...HP, step: 0 })).toThrow(
      /step/,
    );
    gpu.release(b);
  });
});

describeSelfTestCases('adamw', selfTestCases);

describe('adamw.flat (many tensors, one dispatch)', () => {
  const base = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

  // The flat kernel must give the per-tensor kernel's bits: same f32 operations in the same order.
  it('equals adamwStep bit for bit over steps 1..4, the table entry picked by the GPU step count', async () => {
    const gpu = await getTestGpu();
    const n = 1000;
    const rng = new Rng(7);
    const init = { p: rng.f32(n), m: rng.f32(n, -0.1, 0.1), v: rng.f32(n, 1e-4, 1e-2) };
    const mk = () => ({ param: gpu.upload(init.p), expAvg: gpu.upload(init.m), expAvgSq: gpu.upload(init.v) });
    const one = mk();
    const flat = mk();
    const grad = gpu.createBuffer(n * 4);
    const scale = gpu.createBuffer(16);
    const hyper = gpu.createBuffer(ADAMW_HYPER_FLOATS * 4);
    for (let step = 1; step <= 4; step++) {
      gpu.write(grad, rng.f32(n));
      const coef = step === 2 ? 0.37 : 1;
      // state = [norm, coef, skip, count after the increment]; the table's base lags by up to 2.
      const lag = Math.min(step - 1, step % 3);
      gpu.write(scale, Float32Array.of(1, coef, 0, step));
      gpu.write(hyper, adamwHyperTable(base, step - 1 - lag));
      const rec = gpu.recorder();
      adamwStep(gpu, rec, { ...one, grad, n }, { ...base, step }, { buffer: scale, index: 1 });
      adamwFlat(gpu, rec, { hyper, state: scale, grad, ...flat, n });
      rec.submit();
    }
    for (const k of ['param', 'expAvg', 'expAvgSq'] as const) {
      expect(Array.from(await gpu.readF32(flat[k], n))).toEqual(Array.from(await gpu.readF32(one[k], n)));
    }
    for (const b of [grad, scale, hyper, ...Object.values(one), ...Object.values(flat)]) gpu.release(b);
  });

  it('writes nothing when the state flags the step as skipped', async () => {
    const gpu = await getTestGpu();
    const n = 300;
    const rng = new Rng(8);
    const p = rng.f32(n);
    const m = rng.f32(n, -0.1, 0.1);
    const v = rng.f32(n, 1e-4, 1e-2);
    const bufs = { param: gpu.upload(p), expAvg: gpu.upload(m), expAvgSq: gpu.upload(v) };
    const grad = gpu.upload(rng.f32(n).fill(NaN, 0, 3));
    const state = gpu.upload(Float32Array.of(NaN, NaN, 1, 5));
    const hyper = gpu.upload(adamwHyperTable(base, 4));
    const rec = gpu.recorder();
    adamwFlat(gpu, rec, { hyper, state, grad, ...bufs, n });
    rec.submit();
    expect(Array.from(await gpu.readF32(bufs.param, n))).toEqual(Array.from(p));
    expect(Array.from(await gpu.readF32(bufs.expAvg, n))).toEqual(Array.from(m));
    expect(Array.from(await gpu.readF32(bufs.expAvgSq, n))).toEqual(Array.from(v));
    for (const b of [grad, state, hyper, ...Object.values(bufs)]) gpu.release(b);
  });

  it('adamwHyperTable holds the f64 scalars of adamwStep for base+1 .. base+ADAMW_TABLE', () => {
    const t = adamwHyperTable(base, 10);
    expect(t[6]).toBe(10);
    for (let j = 0; j < ADAMW_TABLE; j++) {
      expect(t[8 + j]).toBe(Math.fround(-base.lr / (1 - base.beta1 ** (11 + j))));
      expect(t[8 + ADAMW_TABLE + j]).toBe(Math.fround(Math.sqrt(1 - base.beta2 ** (11 + j))));
    }
    expect(() => adamwHyperTable(base, -1)).toThrow(/base/);
  });
});
