import { axpby, axpbyRef } from '../kernels/elementwise';
import { maxRelError, Rng } from './compare';
import type { SelfTestCase } from './types';

// n = 1000 is not a multiple of the 256-thread workgroup, so the bounds check in the shader is exercised.
const N = 1000;

export const selfTestCases: SelfTestCase[] = [
  {
    name: 'axpby f32 (n=1000)',
    tol: 1e-6,
    async run(gpu) {
      const rng = new Rng(11);
      const x = rng.f32(N);
      const y = rng.f32(N);
      const xb = gpu.upload(x, 'selftest:x');
      const yb = gpu.upload(y, 'selftest:y');
      try {
        const rec = gpu.recorder('selftest:axpby');
        axpby(gpu, rec, xb, yb, N, 0.75, -1.5);
        rec.submit();
        return maxRelError(await gpu.readF32(yb, N), axpbyRef(x, y, 0.75, -1.5));
      } finally {
        gpu.release(xb);
        gpu.release(yb);
      }
    },
  },
];
