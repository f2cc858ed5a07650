import { layerNorm, layerNormBackward, rmsNorm, rmsNormBackward } from '../kernels/norm';
import { layerNormBackwardRef, layerNormRef, rmsNormBackwardRef, rmsNormRef } from '../kernels/reference/norm';
import { maxRelError, Rng } from './compare';
import type { SelfTestCase } from './types';
import { withBuffers } from './buffers';

const EPS = 1e-5;

export const selfTestCases: SelfTestCase[] = [
  {
    name: 'rmsNorm forward + backward (9x130)',
    tol: 5e-6,
    run: (gpu) =>
      withBuffers(gpu, async (t) => {
        const rows = 9;
        const cols = 130;
        const rng = new Rng(101);
        const x = rng.f32(rows * cols, -2, 2);
        const w = rng.f32(cols, 0.5, 1.5);
        const dy = rng.f32(rows * cols);
        const xb = t(gpu.upload(x));
        const wb = t(gpu.upload(w));
        const out = t(gpu.createBuffer(rows * cols * 4));
        const rstd = t(gpu.createBuffer(rows * 4));
        const dx = t(gpu.createBuffer(rows * cols * 4));
        const dW = t(gpu.createBuffer(cols * 4));
        const rec = gpu.recorder('selftest.rmsNorm');
        rmsNorm(gpu, rec, { x: xb, weight: wb, out, rstd, rows, cols, eps: EPS });
        rmsNormBackward(gpu, rec, { x: xb, weight: wb, rstd, dOut: t(gpu.upload(dy)), dx, rows, cols, dWeight: dW });
        rec.submit();
        const fwd = rmsNormRef(x, w, rows, cols, EPS);
        const bwd = rmsNormBackwardRef(x, w, dy, rows, cols, EPS);
        return Math.max(
          maxRelError(await gpu.readF32(out, rows * cols), fwd.out),
          maxRelError(await gpu.readF32(dx, rows * cols), bwd.dx),
          maxRelError(await gpu.readF32(dW, cols), bwd.dWeight),
        );
      }),
  },
  {
    name: 'layerNorm forward + backward (5x77)',
    tol: 5e-6,
    run: (gpu) =>
      withBuffers(gpu, async (t) => {
        const rows = 5;
        const cols = 77;
        const rng = new Rng(202);
        const x = rng.f32(rows * cols, -1, 3);
        const w = rng.f32(cols, 0.5, 1.5);
        const b = rng.f32(cols);
        const dy = rng.f32(rows * cols);
        const xb = t(gpu.upload(x));
        const wb = t(gpu.upload(w));
        const out = t(gpu.createBuffer(rows * cols * 4));
        const stats = t(gpu.createBuffer(rows * 8));
        const dx = t(gpu.createBuffer(rows * cols * 4));
        const dW = t(gpu.createBuffer(cols * 4));
        const dB = t(gpu.createBuffer(cols * 4));
        const rec = gpu.recorder('selftest.layerNorm');
        layerNorm(gpu, rec, { x: xb, weight: wb, bias: t(gpu.upload(b)), out, stats, rows, cols, eps: EPS });
        layerNormBackward(gpu, rec, {
          x: xb,
          weight: wb,
          stats,
          dOut: t(gpu.upload(dy)),
          dx,
          rows,
          cols,
          dWeight: dW,
          dBias: dB,
        });
        rec.submit();
        const fwd = layerNormRef(x, w, b, rows, cols, EPS);
        const bwd = layerNormBackwardRef(x, w, dy, rows, cols, EPS);
        return Math.max(
          maxRelError(await gpu.readF32(out, rows * cols), fwd.out),
          maxRelError(await gpu.readF32(dx, rows * cols), bwd.dx),
          maxRelError(await gpu.readF32(dW, cols), bwd.dWeight),
          maxRelError(await gpu.readF32(dB, cols), bwd.dBias),
        );
      }),
  },
];
