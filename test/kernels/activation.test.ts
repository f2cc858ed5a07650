import { describe, expect, it } from 'vitest';
import {
  activation,
  activationBackward,
  activationFromHf,
  fusedGluLayout,
  swiglu,
  swigluBackward,
  type ActivationKind,
} from '../../src/kernels/activation';
import {
  actGradRef,
  actRef,
  activationBackwardRef,
  activationRef,
  erfRef,
  swigluBackwardRef,
  swigluRef,
} from '../../src/kernels/reference/activation';
import { selfTestCases } from '../../src/selftest/activation';
import { expectClose, maxRelError } from '../helpers/compare';
import { describeSelfTestCases, getTestGpu, poisonedF32 } from '../helpers/gpu';
import { Rng } from '../helpers/random';
import { withBuffers } from '../../src/selftest/buffers';

// Tolerances (maxRelError against f64 references, relative to the largest |reference|):
const FWD_TOL = 1e-6; // f32 exp, erfc fit with fractional error < 1.2e-7; measured <= 1.1e-7
const BWD_TOL = 2e-6; // measured <= 8.4e-7 (gelu_tanh over [-8, 8])
const FD_TOL = 1e-8; // f64 reference derivative vs central differences (h = 1e-5)

const KINDS: ActivationKind[] = ['silu', 'gelu_tanh', 'gelu_erf'];
const SIZES = [1, 7, 33, 127, 1000];

/**
 * Inputs over [-6, 6] plus far tails (when n > 2), where naive exp/tanh would overflow into NaN.
 * Not at n = 1: an output of ~1e-38 alone would make the relative error meaningless.
 */
function inputs(rng: Rng, n: number): Float32Array {
  const x = rng.f32(n, -6, 6);
  const tails = [-90, 50, -20, 30];
  for (let i = 0; i < tails.length && i * 5 + 2 < n; i++) x[i * 5 + 2] = tails[i]!;
  return x;
}

describe('activation forward and backward', () => {
  for (const kind of KINDS) {
    it(`${kind} matches the reference for n ${SIZES.join('/')}`, async () => {
      const gpu = await getTestGpu();
      for (const n of SIZES) {
        const rng = new Rng(n * 31 + kind.length);
        const x = inputs(rng, n);
        const dy = rng.f32(n);
        await withBuffers(gpu, async (t) => {
          const xb = t(gpu.upload(x));
          const out = t(poisonedF32(gpu, n));
          const dx = t(poisonedF32(gpu, n));
          const rec = gpu.recorder();
          activation(gpu, rec, { kind, x: xb, out, n });
          activationBackward(gpu, rec, { kind, x: xb, dOut: t(gpu.upload(dy)), dx, n });
          rec.submit();
          expectClose(await gpu.readF32(out, n), activationRef(kind, x), FWD_TOL, `${kind} n=${n}`);
          expectClose(await gpu.readF32(dx, n), activationBackwardRef(kind, x, dy), BWD_TOL, `${kind}' n=${n}`);
        });
      }
    });
  }

  it('maps Hugging Face activation names', () => {
    expect(activationFromHf('silu')).toBe('silu');
    expect(activationFromHf('gelu_new')).toBe('gelu_tanh');
    expect(activationFromHf('gelu_pytorch_tanh')).toBe('gelu_tanh');
    expect(activationFromHf('gelu')).toBe('gelu_erf');
    expect(() => activationFromHf('relu2')).toThrow(/Unsupported activation/);
  });
});

/** Copies the (rows, width) block at offset/stride out of a strided array into a contiguous one. */
function gather(src: Float32Array, rows: number, width: number, offset: number, stride: number): Float32Array {
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) for (let c = 0; c < width; c++) out[r * width + c] = src[offset + r * stride + c]!;
  return out;
}

describe('swiglu', () => {
  for (const rows of [1, 7, 33]) {
    it(`separate gate/up buffers, rows=${rows}`, async () => {
      const gpu = await getTestGpu();
      for (const width of [1, 7, 33, 127]) {
        const n = rows * width;
        const rng = new Rng(rows * 131 + width);
        const gate = inputs(rng, n);
        const up = rng.f32(n, -2, 2);
        const dh = rng.f32(n);
        const ref = swigluBackwardRef(gate, up, dh);
        await withBuffers(gpu, async (t) => {
          const gb = t(gpu.upload(gate));
          const ub = t(gpu.upload(up));
          const h = t(poisonedF32(gpu, n));
          const dGate = t(poisonedF32(gpu, n));
          const dUp = t(poisonedF32(gpu, n));
          const rec = gpu.recorder();
          swiglu(gpu, rec, { gate: gb, up: ub, out: h, rows, width });
          swigluBackward(gpu, rec, { gate: gb, up: ub, dOut: t(gpu.upload(dh)), dGate, dUp, rows, width });
          rec.submit();
          expectClose(await gpu.readF32(h, n), swigluRef(gate, up), FWD_TOL, `swiglu ${rows}x${width}`);
          expectClose(await gpu.readF32(dGate, n), ref.dGate, BWD_TOL, `swiglu dGate ${rows}x${width}`);
          expectClose(await gpu.readF32(dUp, n), ref.dUp, BWD_TOL, `swiglu dUp ${rows}x${width}`);
        });
      }
    });
  }

  it('one fused [rows, 2*width] buffer for gate|up and for their gradients', async () => {
    const gpu = await getTestGpu();
    for (const [rows, width] of [
      [1, 1],
      [7, 33],
      [33, 127],
    ] as const) {
      const rng = new Rng(rows + 1000 * width);
      const gu = inputs(rng, rows * 2 * width);
      const dh = rng.f32(rows * width);
      const layout = fusedGluLayout(width);
      const gate = gather(gu, rows, width, layout.gateOffset, layout.gateStride);
      const up = gather(gu, rows, width, layout.upOffset, layout.upStride);
      const ref = swigluBackwardRef(gate, up, dh);
      await withBuffers(gpu, async (t) => {
        const gub = t(gpu.upload(gu));
        const h = t(poisonedF32(gpu, rows * width));
        const dgu = t(poisonedF32(gpu, rows * 2 * width));
        const rec = gpu.recorder();
        swiglu(gpu, rec, { gate: gub, up: gub, out: h, rows, width, ...layout });
        swigluBackward(gpu, rec, {
          gate: gub,
          up: gub,
          dOut: t(gpu.upload(dh)),
          dGate: dgu,
          dUp: dgu,
          rows,
          width,
          ...layout,
          dGateOffset: layout.gateOffset,
          dGateStride: layout.gateStride,
          dUpOffset: layout.upOffset,
          dUpStride: layout.upStride,
        });
        rec.submit();
        expectClose(await gpu.readF32(h, rows * width), swigluRef(gate, up), FWD_TOL, `fused swiglu ${rows}x${width}`);
        const d = await gpu.readF32(dgu, rows * 2 * width);
        expectClose(gather(d, rows, width, 0, 2 * width), ref.dGate, BWD_TOL, 'fused dGate');
        expectClose(gather(d, rows, width, width, 2 * width), ref.dUp, BWD_TOL, 'fused dUp');
      });
    }
  });

  it('rejects two different bindings of one gradient buffer', async () => {
    const gpu = await getTestGpu();
    const b = gpu.createBuffer(64);
    const rec = gpu.recorder();
    expect(() =>
      swigluBackward(gpu, rec, { gate: b, up: b, dOut: b, dGate: { buffer: b }, dUp: { buffer: b }, rows: 1, width: 1 }),
    ).toThrow(/same binding/);
    gpu.release(b);
  });
});

describe('activation references: derivative = finite differences', () => {
  it('erfRef matches tabulated values', () => {
    // erf(0.5), erf(1), erf(2), erf(3.5) from standard tables (15+ digits)
    expect(Math.abs(erfRef(0.5) - 0.5204998778130465)).toBeLessThan(1e-15);
    expect(Math.abs(erfRef(1) - 0.8427007929497149)).toBeLessThan(1e-15);
    expect(Math.abs(erfRef(-2) + 0.9953222650189527)).toBeLessThan(1e-15);
    expect(Math.abs(erfRef(3.5) - 0.9999992569016276)).toBeLessThan(1e-15);
  });

  for (const kind of KINDS) {
    it(`actGradRef(${kind})`, () => {
      const rng = new Rng(kind.length * 17);
      const h = 1e-5;
      const xs = Array.from({ length: 200 }, () => rng.uniform(-8, 8));
      const fd = xs.map((x) => (actRef(kind, x + h) - actRef(kind, x - h)) / (2 * h));
      expect(maxRelError(xs.map((x) => actGradRef(kind, x)), fd)).toBeLessThan(FD_TOL);
    });
  }

  it('swigluBackwardRef', () => {
    const rng = new Rng(5);
    const n = 50;
    const gate = Float64Array.from({ length: n }, () => rng.uniform(-6, 6));
    const up = Float64Array.from({ length: n }, () => rng.uniform(-2, 2));
    const G = Float64Array.from({ length: n }, () => rng.uniform());
    const ref = swigluBackwardRef(gate, up, G);
    const h = 1e-5;
    // Elementwise op: d/dgate_i of sum(G * h) only involves element i.
    const fdGate = Array.from(gate, (g, i) => (G[i]! * (swigluRef([g + h], [up[i]!])[0]! - swigluRef([g - h], [up[i]!])[0]!)) / (2 * h));
    const fdUp = Array.from(up, (u, i) => (G[i]! * (swigluRef([gate[i]!], [u + h])[0]! - swigluRef([gate[i]!], [u - h])[0]!)) / (2 * h));
    expect(maxRelError(ref.dGate, fdGate)).toBeLessThan(FD_TOL);
    expect(maxRelError(ref.dUp, fdUp)).toBeLessThan(FD_TOL);
  });
});

describeSelfTestCases('activation', selfTestCases);
