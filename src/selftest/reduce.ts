import type { Gpu } from '../gpu';
import { clipGradNorm, gradNormLayout, partialSlots, sum } from '../kernels/reduce';
import { clipGradNormRef, sumRef } from '../kernels/reference/reduce';
import { maxRelError, Rng } from './compare';
import type { SelfTestCase } from './types';

export const selfTestCases: SelfTestCase[] = [
  {
    name: 'reduce: two-stage sum of 9001 values',
    tol: 1e-5,
    async run(gpu: Gpu): Promise<number> {
      const n = 9001;
      // Positive values keep the sum away from zero, so a relative error means something.
      const x = new Rng(11).f32(n, 0.1, 1);
      const xb = gpu.upload(x);
      const out = gpu.upload(new Float32Array([NaN]));
      const scratch = gpu.createBuffer(partialSlots(n) * 4);
      const rec = gpu.recorder();
      sum(gpu, rec, { x: xb, n, out, scratch });
      rec.submit();
      const got = await gpu.readF32(out, 1);
      for (const b of [xb, out, scratch]) gpu.release(b);
      return maxRelError(got, [sumRef(x)]);
    },
  },
  {
    name: 'reduce: clip_grad_norm_ over 3 tensors',
    tol: 1e-5,
    async run(gpu: Gpu): Promise<number> {
      const sizes = [7, 130, 4099];
      const rng = new Rng(12);
      const grads = sizes.map((n) => rng.f32(n));
      const ref = clipGradNormRef(grads, 3);
      const bufs = grads.map((g) => gpu.upload(g));
      const layout = gradNormLayout(sizes);
      const partials = gpu.createBuffer(layout.slots * 4);
      const normOut = gpu.createBuffer(8);
      const rec = gpu.recorder();
      clipGradNorm(gpu, rec, { grads: bufs.map((buffer, i) => ({ buffer, n: sizes[i]! })), partials, maxNorm: 3, normOut });
      rec.submit();
      const norm = await gpu.readF32(normOut, 2);
      let err = maxRelError(norm, [ref.norm, ref.coef]);
      for (let i = 0; i < bufs.length; i++) {
        err = Math.max(err, maxRelError(await gpu.readF32(bufs[i]!, sizes[i]!), ref.clipped[i]!));
      }
      for (const b of [...bufs, partials, normOut]) gpu.release(b);
      return err;
    },
  },
];
