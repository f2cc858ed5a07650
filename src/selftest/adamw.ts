import type { Gpu } from '../gpu';
import { adamwStep } from '../kernels/adamw';
import { adamwStepRef } from '../kernels/reference/adamw';
import { maxRelError, Rng } from './compare';
import type { SelfTestCase } from './types';

export const selfTestCases: SelfTestCase[] = [
  {
    name: 'adamw: 3 steps with weight decay and a clip factor, n=1031',
    tol: 3e-6,
    async run(gpu: Gpu): Promise<number> {
      const n = 1031;
      const rng = new Rng(21);
      const param = rng.f32(n);
      const m = new Float32Array(n);
      const v = new Float32Array(n);
      const pb = gpu.upload(param);
      const mb = gpu.upload(m);
      const vb = gpu.upload(v);
      const gb = gpu.createBuffer(n * 4);
      const coef = gpu.upload(new Float32Array([0, 0.6]));
      let err = 0;
      for (let step = 1; step <= 3; step++) {
        const grad = rng.f32(n);
        gpu.write(gb, grad);
        const hp = { lr: 2e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step };
        const rec = gpu.recorder();
        adamwStep(gpu, rec, { param: pb, grad: gb, expAvg: mb, expAvgSq: vb, n }, hp, { buffer: coef, index: 1 });
        rec.submit();
        adamwStepRef(param, grad, m, v, hp, 0.6);
        err = Math.max(err, maxRelError(await gpu.readF32(pb, n), param), maxRelError(await gpu.readF32(vb, n), v));
      }
      for (const b of [pb, mb, vb, gb, coef]) gpu.release(b);
      return err;
    },
  },
];
