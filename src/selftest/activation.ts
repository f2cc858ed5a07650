import { activation, activationBackward, fusedGluLayout, swiglu, swigluBackward } from '../kernels/activation';
import { activationBackwardRef, activationRef, swigluBackwardRef, swigluRef } from '../kernels/reference/activation';
import { maxRelError, Rng } from './compare';
import type { SelfTestCase } from './types';
import { withBuffers } from './buffers';

export const selfTestCases: SelfTestCase[] = [
  {
    name: 'silu / gelu_tanh / gelu_erf forward + backward (n=1000)',
    tol: 2e-6,
    run: (gpu) =>
      withBuffers(gpu, async (t) => {
        const n = 1000;
        const rng = new Rng(303);
        const x = rng.f32(n, -6, 6);
        const dy = rng.f32(n);
        const xb = t(gpu.upload(x));
        const dyb = t(gpu.upload(dy));
        let worst = 0;
        for (const kind of ['silu', 'gelu_tanh', 'gelu_erf'] as const) {
          const out = t(gpu.createBuffer(n * 4));
          const dx = t(gpu.createBuffer(n * 4));
          const rec = gpu.recorder('selftest.activation');
          activation(gpu, rec, { kind, x: xb, out, n });
          activationBackward(gpu, rec, { kind, x: xb, dOut: dyb, dx, n });
          rec.submit();
          worst = Math.max(
            worst,
            maxRelError(await gpu.readF32(out, n), activationRef(kind, x)),
            maxRelError(await gpu.readF32(dx, n), activationBackwardRef(kind, x, dy)),
          );
        }
        return worst;
      }),
  },
  {
    name: 'swiglu fused gate|up forward + backward (9x67)',
    tol: 2e-6,
    run: (gpu) =>
      withBuffers(gpu, async (t) => {
        const rows = 9;
        const width = 67;
        const rng = new Rng(404);
        const gu = rng.f32(rows * 2 * width, -5, 5);
        const dh = rng.f32(rows * width);
        const layout = fusedGluLayout(width);
        const gate = new Float32Array(rows * width);
        const up = new Float32Array(rows * width);
        for (let r = 0; r < rows; r++) {
          gate.set(gu.subarray(r * 2 * width, r * 2 * width + width), r * width);
          up.set(gu.subarray(r * 2 * width + width, (r + 1) * 2 * width), r * width);
        }
        const gub = t(gpu.upload(gu));
        const h = t(gpu.createBuffer(rows * width * 4));
        const dGate = t(gpu.createBuffer(rows * width * 4));
        const dUp = t(gpu.createBuffer(rows * width * 4));
        const rec = gpu.recorder('selftest.swiglu');
        swiglu(gpu, rec, { gate: gub, up: gub, out: h, rows, width, ...layout });
        swigluBackward(gpu, rec, { gate: gub, up: gub, dOut: t(gpu.upload(dh)), dGate, dUp, rows, width, ...layout });
        rec.submit();
        const ref = swigluBackwardRef(gate, up, dh);
        return Math.max(
          maxRelError(await gpu.readF32(h, rows * width), swigluRef(gate, up)),
          maxRelError(await gpu.readF32(dGate, rows * width), ref.dGate),
          maxRelError(await gpu.readF32(dUp, rows * width), ref.dUp),
        );
      }),
  },
];
