import type { Gpu } from '../gpu';
import { CE_STATE_STRIDE, crossEntropyChunkGrad, crossEntropyChunkStats, crossEntropyFinalize } from '../kernels/crossentropy';
import { crossEntropyRef } from '../kernels/reference/crossentropy';
import { maxRelError, Rng } from './compare';
import type { SelfTestCase } from './types';

/** rows x V logits split in chunks of vc columns (the last one shorter); returns the worst error. */
async function chunkedCase(gpu: Gpu, rows: number, V: number, vc: number, seed: number): Promise<number> {
  const rng = new Rng(seed);
  const logits = rng.f32(rows * V, -5, 5);
  const targets = Uint32Array.from({ length: rows }, () => rng.int(V));
  const mask = Float32Array.from({ length: rows }, (_, r) => (r % 4 === 2 ? 0 : 1));
  const count = mask.reduce((a, b) => a + b, 0);
  const ref = crossEntropyRef(logits, rows, V, targets, mask, 1 / count);

  const tb = gpu.upload(targets);
  const mb = gpu.upload(mask);
  const state = gpu.createBuffer(rows * CE_STATE_STRIDE * 4);
  const rowLoss = gpu.createBuffer(rows * 4);
  const rowCorrect = gpu.createBuffer(rows * 4);
  const totals = gpu.createBuffer(12);
  const chunks: { v0: number; w: number; buf: GPUBuffer }[] = [];
  for (let v0 = 0; v0 < V; v0 += vc) {
    const w = Math.min(vc, V - v0);
    const c = new Float32Array(rows * w);
    for (let r = 0; r < rows; r++) c.set(logits.subarray(r * V + v0, r * V + v0 + w), r * w);
    chunks.push({ v0, w, buf: gpu.upload(c) });
  }
  const rec = gpu.recorder();
  for (const c of chunks) {
    crossEntropyChunkStats(gpu, rec, { logits: c.buf, targets: tb, mask: mb, state, rows, vStart: c.v0, vc: c.w });
  }
  crossEntropyFinalize(gpu, rec, { targets: tb, mask: mb, state, rows, rowLoss, rowCorrect, totals });
  // Stats are complete, so the chunks can be overwritten by their gradient in place.
  for (const c of chunks) {
    crossEntropyChunkGrad(gpu, rec, {
      logits: c.buf,
      targets: tb,
      mask: mb,
      state,
      rows,
      vStart: c.v0,
      vc: c.w,
      gradScale: 1 / count,
    });
  }
  rec.submit();

  const dlogits = new Float32Array(rows * V);
  for (const c of chunks) {
    const g = await gpu.readF32(c.buf, rows * c.w);
    for (let r = 0; r < rows; r++) dlogits.set(g.subarray(r * c.w, (r + 1) * c.w), r * V + c.v0);
  }
  const t = await gpu.readF32(totals, 3);
  const err = Math.max(
    maxRelError(await gpu.readF32(rowLoss, rows), ref.rowLoss),
    maxRelError(await gpu.readF32(rowCorrect, rows), ref.rowCorrect),
    maxRelError(t, [ref.lossSum, ref.tokenCount, ref.correctCount]),
    maxRelError(dlogits, ref.dlogits),
  );
  for (const b of [tb, mb, state, rowLoss, rowCorrect, totals, ...chunks.map((c) => c.buf)]) gpu.release(b);
  return err;
}

export const selfTestCases: SelfTestCase[] = [
  {
    name: 'crossentropy: 9 rows, V=1000 in chunks of 384',
    tol: 1e-5,
    run: (gpu) => chunkedCase(gpu, 9, 1000, 384, 31),
  },
  {
    name: 'crossentropy: 5 rows, V=33 in chunks of 7',
    tol: 1e-5,
    run: (gpu) => chunkedCase(gpu, 5, 33, 7, 32),
  },
];
