import { describe, expect, it } from 'vitest';
import { layerNorm, layerNormBackward, rmsNorm, rmsNormBackward } from '../../src/kernels/norm';
import {
  layerNormBackwardRef,
  layerNormRef,
  rmsNormBackwardRef,
  rmsNormRef,
} from '../../src/kernels/reference/norm';
import { selfTestCases } from '../../src/selftest/norm';
import { expectClose, maxRelError, numericGrad } from '../helpers/compare';
import { describeSelfTestCases, expectReductionVariant, getTestGpu, poisonedF32 } from '../helpers/gpu';
import { Rng, rowData } from '../helpers/random';
import { withBuffers } from '../../src/selftest/buffers';

// Tolerances (maxRelError, relative to the largest |reference|), f32 kernels against f64 references:
const FWD_TOL = 2e-6; // out, rstd, mean; measured <= 4.2e-7 (rows up to 33, cols up to 4096)
const BWD_TOL = 5e-6; // dx (relative to its terms, see below), dweight, dbias; measured <= 8.7e-7
const FD_TOL = 1e-7; // f64 reference gradient vs central differences (h = 1e-5)

const ROWS = [1, 7, 33];
const COLS = [1, 7, 33, 127, 1000];
const EPS = 1e-5;

/**
 * dx error relative to max(|ref|, max |dy * w * rstd|): with few columns dx is a difference of
 * terms of that size which nearly cancel (for cols = 1, RMSNorm's dx is ~eps), so f32 rounding
 * is bounded by the terms, not by the result.
 */
function expectCloseToTerms(actual: Float32Array, ref: ArrayLike<number>, termScale: number, tol: number, what: string) {
  let maxRef = termScale;
  for (let i = 0; i < ref.length; i++) maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  const scaled = (v: ArrayLike<number>) => Float64Array.from(v, (e) => e / maxRef);
  const a = scaled(actual);
  const e = scaled(ref);
  let diff = 0;
  for (let i = 0; i < e.length; i++) diff = Math.max(diff, Number.isFinite(a[i]!) ? Math.abs(a[i]! - e[i]!) : Infinity);
  if (!(diff <= tol)) expect.fail(`${what}: error ${diff.toExponential(3)} (relative to terms) > ${tol}`);
}

function termScale(dy: ArrayLike<number>, w: ArrayLike<number>, rstd: ArrayLike<number>, rows: number, cols: number) {
  let m = 0;
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(dy[r * cols + c]! * w[c]! * rstd[r]!));
  return m;
}

/**
 * rmsNorm of fresh row data against the f64 reference: out and rstd, and with `fused` the
 * residual add too (sum = x + residual, bit-exact, then normalised).
 */
async function checkRmsNorm(rng: Rng, rows: number, cols: number, what: string, fused = false): Promise<void> {
  const gpu = await getTestGpu();
  const x = rowData(rng, rows, cols);
  const res = fused ? rowData(rng, rows, cols) : null;
  const w = rng.f32(cols, 0.5, 1.5);
  const sumRef = res ? x.map((v, i) => v + res[i]!) : x; // Float32Array map rounds like the GPU add
  const ref = rmsNormRef(sumRef, w, rows, cols, EPS);
  await withBuffers(gpu, async (t) => {
    const out = t(poisonedF32(gpu, rows * cols));
    const rstd = t(poisonedF32(gpu, rows));
    const sum = res ? t(poisonedF32(gpu, rows * cols)) : null;
    const residual = res && sum ? { residual: t(gpu.upload(res)), sum } : {};
    const rec = gpu.recorder();
    rmsNorm(gpu, rec, { x: t(gpu.upload(x)), ...residual, weight: t(gpu.upload(w)), out, rstd, rows, cols, eps: EPS });
    rec.submit();
    if (sum) expect(Array.from(await gpu.readF32(sum, rows * cols))).toEqual(Array.from(sumRef));
    expectClose(await gpu.readF32(out, rows * cols), ref.out, FWD_TOL, `${what} out`);
    expectClose(await gpu.readF32(rstd, rows), ref.rstd, FWD_TOL, `${what} rstd`);
  });
}

/** layerNorm as checkRmsNorm does rmsNorm: out, mean and rstd, and the sum when `fused`. */
async function checkLayerNorm(rng: Rng, rows: number, cols: number, what: string, fused = false): Promise<void> {
  const gpu = await getTestGpu();
  const x = rowData(rng, rows, cols);
  const res = fused ? rowData(rng, rows, cols) : null;
  const w = rng.f32(cols, 0.5, 1.5);
  const b = rng.f32(cols);
  const sumRef = res ? x.map((v, i) => v + res[i]!) : x;
  const ref = layerNormRef(sumRef, w, b, rows, cols, EPS);
  await withBuffers(gpu, async (t) => {
    const out = t(poisonedF32(gpu, rows * cols));
    const stats = t(poisonedF32(gpu, rows * 2));
    const sum = res ? t(poisonedF32(gpu, rows * cols)) : null;
    const residual = res && sum ? { residual: t(gpu.upload(res)), sum } : {};
    const rec = gpu.recorder();
    const params = { weight: t(gpu.upload(w)), bias: t(gpu.upload(b)) };
    layerNorm(gpu, rec, { x: t(gpu.upload(x)), ...residual, ...params, out, stats, rows, cols, eps: EPS });
    rec.submit();
    if (sum) expect(Array.from(await gpu.readF32(sum, rows * cols))).toEqual(Array.from(sumRef));
    expectClose(await gpu.readF32(out, rows * cols), ref.out, FWD_TOL, `${what} out`);
    const s = await gpu.readF32(stats, rows * 2);
    expectClose(s.filter((_, i) => i % 2 === 0), ref.mean, FWD_TOL, `${what} mean`);
    expectClose(s.filter((_, i) => i % 2 === 1), ref.rstd, FWD_TOL, `${what} rstd`);
  });
}

describe('rmsNorm forward', () => {
  for (const rows of ROWS) {
    it(`matches the reference for rows=${rows}, cols ${COLS.join('/')}`, async () => {
      for (const cols of COLS) await checkRmsNorm(new Rng(rows * 1000 + cols), rows, cols, `rmsNorm ${rows}x${cols}`);
    });
  }

  it('fuses the residual add: sum = x + residual, normalised', async () => {
    await checkRmsNorm(new Rng(5), 7, 127, 'rmsNorm+res', true);
  });

  it('covers more than 65535 rows with a 2-D grid', async () => {
    await checkRmsNorm(new Rng(3), 65_537, 2, 'rmsNorm 2-D grid');
  });
});

describe('layerNorm forward', () => {
  for (const rows of ROWS) {
    it(`matches the reference for rows=${rows}, cols ${COLS.join('/')}`, async () => {
      for (const cols of COLS) await checkLayerNorm(new Rng(rows * 1000 + cols + 7), rows, cols, `layerNorm ${rows}x${cols}`);
    });
  }

  it('fuses the residual add', async () => {
    await checkLayerNorm(new Rng(9), 33, 33, 'layerNorm+res', true);
  });
});

describe('norm backward', () => {
  for (const rows of ROWS) {
    it(`rmsNormBackward matches the reference for rows=${rows}`, async () => {
      const gpu = await getTestGpu();
      for (const cols of COLS) {
        const rng = new Rng(rows * 7919 + cols);
        const x = rowData(rng, rows, cols);
        const w = rng.f32(cols, 0.5, 1.5);
        const dy = rng.f32(rows * cols);
        const prior = rng.f32(rows * cols); // dx already there, for accumulate
        const priorW = rng.f32(cols);
        const ref = rmsNormBackwardRef(x, w, dy, rows, cols, EPS);
        const terms = termScale(dy, w, rmsNormRef(x, w, rows, cols, EPS).rstd, rows, cols);
        await withBuffers(gpu, async (t) => {
          const xb = t(gpu.upload(x));
          const wb = t(gpu.upload(w));
          const dyb = t(gpu.upload(dy));
          const rstd = t(poisonedF32(gpu, rows));
          const out = t(poisonedF32(gpu, rows * cols));
          const dx = t(poisonedF32(gpu, rows * cols));
          const dxAcc = t(gpu.upload(prior));
          const dW = t(poisonedF32(gpu, cols));
          const dWAcc = t(gpu.upload(priorW));
          const rec = gpu.recorder();
          rmsNorm(gpu, rec, { x: xb, weight: wb, out, rstd, rows, cols, eps: EPS });
          rmsNormBackward(gpu, rec, { x: xb, weight: wb, rstd, dOut: dyb, dx, rows, cols, dWeight: dW });
          rmsNormBackward(gpu, rec, {
            x: xb,
            weight: wb,
            rstd,
            dOut: dyb,
            dx: dxAcc,
            rows,
            cols,
            accumulate: true,
            dWeight: dWAcc,
            accumulateWeight: true,
          });
          rec.submit();
          expectCloseToTerms(await gpu.readF32(dx, rows * cols), ref.dx, terms, BWD_TOL, `rms dx ${rows}x${cols}`);
          expectClose(await gpu.readF32(dW, cols), ref.dWeight, BWD_TOL, `rms dW ${rows}x${cols}`);
          const dxAccRef = ref.dx.map((v, i) => v + prior[i]!);
          expectCloseToTerms(await gpu.readF32(dxAcc, rows * cols), dxAccRef, terms, BWD_TOL, 'rms dx accumulate');
          const dWAccRef = ref.dWeight.map((v, i) => v + priorW[i]!);
          expectClose(await gpu.readF32(dWAcc, cols), dWAccRef, BWD_TOL, 'rms dW accumulate');
        });
      }
    });

    it(`layerNormBackward matches the reference for rows=${rows}`, async () => {
      const gpu = await getTestGpu();
      for (const cols of COLS) {
        const rng = new Rng(rows * 104729 + cols);
        const x = rowData(rng, rows, cols);
        const w = rng.f32(cols, 0.5, 1.5);
        const b = rng.f32(cols);
        const dy = rng.f32(rows * cols);
        const prior = rng.f32(rows * cols);
        const ref = layerNormBackwardRef(x, w, dy, rows, cols, EPS);
        const terms = termScale(dy, w, layerNormRef(x, w, b, rows, cols, EPS).rstd, rows, cols);
        await withBuffers(gpu, async (t) => {
          const xb = t(gpu.upload(x));
          const wb = t(gpu.upload(w));
          const dyb = t(gpu.upload(dy));
          const stats = t(poisonedF32(gpu, 2 * rows));
          const out = t(poisonedF32(gpu, rows * cols));
          const dx = t(poisonedF32(gpu, rows * cols));
          const dxAcc = t(gpu.upload(prior));
          const dW = t(poisonedF32(gpu, cols));
          const dB = t(poisonedF32(gpu, cols));
          const rec = gpu.recorder();
          layerNorm(gpu, rec, { x: xb, weight: wb, bias: t(gpu.upload(b)), out, stats, rows, cols, eps: EPS });
          layerNormBackward(gpu, rec, {
            x: xb,
            weight: wb,
            stats,
            dOut: dyb,
            dx,
            rows,
            cols,
            dWeight: dW,
            dBias: dB,
          });
          layerNormBackward(gpu, rec, { x: xb, weight: wb, stats, dOut: dyb, dx: dxAcc, rows, cols, accumulate: true });
          rec.submit();
          expectCloseToTerms(await gpu.readF32(dx, rows * cols), ref.dx, terms, BWD_TOL, `ln dx ${rows}x${cols}`);
          expectClose(await gpu.readF32(dW, cols), ref.dWeight, BWD_TOL, `ln dW ${rows}x${cols}`);
          expectClose(await gpu.readF32(dB, cols), ref.dBias, BWD_TOL, `ln dB ${rows}x${cols}`);
          const dxAccRef = ref.dx.map((v, i) => v + prior[i]!);
          expectCloseToTerms(await gpu.readF32(dxAcc, rows * cols), dxAccRef, terms, BWD_TOL, 'ln dx accumulate');
        });
      }
    });
  }

  it('is deterministic: two runs give identical bits', async () => {
    const gpu = await getTestGpu();
    const rows = 33;
    const cols = 1000;
    const rng = new Rng(77);
    const x = rowData(rng, rows, cols);
    const w = rng.f32(cols, 0.5, 1.5);
    const dy = rng.f32(rows * cols);
    const runs: Float32Array[] = [];
    for (let k = 0; k < 2; k++) {
      await withBuffers(gpu, async (t) => {
        const xb = t(gpu.upload(x));
        const wb = t(gpu.upload(w));
        const rstd = t(poisonedF32(gpu, rows));
        const dx = t(poisonedF32(gpu, rows * cols));
        const dW = t(poisonedF32(gpu, cols));
        const rec = gpu.recorder();
        rmsNorm(gpu, rec, { x: xb, weight: wb, out: t(poisonedF32(gpu, rows * cols)), rstd, rows, cols, eps: EPS });
        rmsNormBackward(gpu, rec, { x: xb, weight: wb, rstd, dOut: t(gpu.upload(dy)), dx, rows, cols, dWeight: dW });
        rec.submit();
        const all = new Float32Array(rows * cols + cols);
        all.set(await gpu.readF32(dx, rows * cols));
        all.set(await gpu.readF32(dW, cols), rows * cols);
        runs.push(all);
      });
    }
    expect(Buffer.from(runs[0]!.buffer).equals(Buffer.from(runs[1]!.buffer))).toBe(true);
  });
});


const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

describe('norm references: backward = finite differences of forward', () => {
  const rows = 3;
  const cols = 5;
  it('rmsNormBackwardRef', () => {
    const rng = new Rng(11);
    const x = Float64Array.from(rowData(rng, rows, cols));
    const w = Float64Array.from(rng.f32(cols, 0.5, 1.5));
    const G = rng.f32(rows * cols);
    const loss = () => dot(G, rmsNormRef(x, w, rows, cols, EPS).out);
    const ref = rmsNormBackwardRef(x, w, G, rows, cols, EPS);
    expect(maxRelError(ref.dx, numericGrad(x, loss))).toBeLessThan(FD_TOL);
    expect(maxRelError(ref.dWeight, numericGrad(w, loss))).toBeLessThan(FD_TOL);
  });

  it('layerNormBackwardRef', () => {
    const rng = new Rng(12);
    const x = Float64Array.from(rowData(rng, rows, cols));
    const w = Float64Array.from(rng.f32(cols, 0.5, 1.5));
    const b = Float64Array.from(rng.f32(cols));
    const G = rng.f32(rows * cols);
    const loss = () => dot(G, layerNormRef(x, w, b, rows, cols, EPS).out);
    const ref = layerNormBackwardRef(x, w, G, rows, cols, EPS);
    expect(maxRelError(ref.dx, numericGrad(x, loss))).toBeLessThan(FD_TOL);
    expect(maxRelError(ref.dWeight, numericGrad(w, loss))).toBeLessThan(FD_TOL);
    expect(maxRelError(ref.dBias, numericGrad(b, loss))).toBeLessThan(FD_TOL);
  });
});

describe('reduction variant', () => {
  it("the row kernels run the device plan's reductions (subgroups under the GPU plan)", async () => {
    const gpu = await getTestGpu();
    const rng = new Rng(5);
    const [rows, cols] = [3, 301];
    await checkRmsNorm(rng, rows, cols, 'rms', false);
    await checkRmsNorm(rng, rows, cols, 'rms fused', true);
    await checkLayerNorm(rng, rows, cols, 'ln', false);
    await checkLayerNorm(rng, rows, cols, 'ln fused', true);
    await withBuffers(gpu, async (t) => {
      const [x, w, dy] = [t(gpu.upload(rowData(rng, rows, cols))), t(gpu.upload(rng.f32(cols))), t(gpu.upload(rng.f32(rows * cols)))];
      const saved = t(gpu.upload(rng.f32(rows * 2, 0.5, 1)));
      const rec = gpu.recorder();
      rmsNormBackward(gpu, rec, { x, weight: w, rstd: saved, dOut: dy, dx: t(poisonedF32(gpu, rows * cols)), rows, cols });
      layerNormBackward(gpu, rec, { x, weight: w, stats: saved, dOut: dy, dx: t(poisonedF32(gpu, rows * cols)), rows, cols });
      rec.submit();
      await gpu.sync();
    });
    const kernels = ['rmsnorm_fwd', 'rmsnorm_res_fwd', 'layernorm_fwd', 'layernorm_res_fwd', 'rmsnorm_bwd', 'layernorm_bwd'];
    expectReductionVariant(gpu, kernels.map((k) => `norm.${k}`));
  });
});

describeSelfTestCases('norm', selfTestCases);
