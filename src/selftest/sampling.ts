import type { Gpu } from '../gpu';
import { argmaxRows, sampleRows, type SamplingSettings } from '../kernels/sampling';
import { argmaxRef, sampleRef } from '../kernels/reference/sampling';
import { maxRelError, Rng } from './compare';
import type { SelfTestCase } from './types';

async function ids(
  gpu: Gpu,
  logits: Float32Array,
  rows: number,
  record: (lb: GPUBuffer, out: GPUBuffer) => void,
): Promise<Uint32Array> {
  const lb = gpu.upload(logits);
  const out = gpu.upload(new Uint32Array(rows).fill(0xdeadbeef));
  record(lb, out);
  const got = await gpu.readU32(out, rows);
  gpu.release(lb);
  gpu.release(out);
  return got;
}

export const selfTestCases: SelfTestCase[] = [
  {
    name: 'sampling: argmax of 4 rows, V=5003',
    tol: 0,
    async run(gpu: Gpu): Promise<number> {
      const rows = 4;
      const V = 5003;
      const logits = new Rng(41).f32(rows * V);
      const got = await ids(gpu, logits, rows, (lb, out) => {
        const rec = gpu.recorder();
        argmaxRows(gpu, rec, { logits: lb, rows, V, out });
        rec.submit();
      });
      return maxRelError(got, argmaxRef(logits, rows, V));
    },
  },
  {
    name: 'sampling: top-k 40 / top-p 0.9 draws, 16 rows, V=1000',
    // Returns 1 when a drawn id is outside the allowed set, or differs from the reference where
    // u is not within 1e-5 of a boundary of the distribution (f32 rounding could decide there).
    tol: 0,
    async run(gpu: Gpu): Promise<number> {
      const rows = 16;
      const V = 1000;
      const rng = new Rng(42);
      const logits = rng.f32(rows * V, -3, 3);
      const random = Array.from({ length: rows }, () => rng.next());
      const s: SamplingSettings = { temperature: 0.8, topK: 40, topP: 0.9 };
      const got = await ids(gpu, logits, rows, (lb, out) => {
        const rec = gpu.recorder();
        sampleRows(gpu, rec, { logits: lb, rows, V, out, random, ...s });
        rec.submit();
      });
      const ref = sampleRef(logits, rows, V, s, random);
      for (let r = 0; r < rows; r++) {
        const want = ref[r]!;
        if (!want.allowed.includes(got[r]!)) return 1;
        if (want.drawMargin > 1e-5 && want.topPMargin > 1e-5 && got[r] !== want.id) return 1;
      }
      return 0;
    },
  },
];
