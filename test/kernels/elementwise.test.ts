import { describe, expect, it } from 'vitest';
import { axpby, axpbyRef, copyColumns, copyColumnsRef } from '../../src/kernels/elementwise';
import { expectClose } from '../helpers/compare';
import { describeSelfTestCases, getTestGpu } from '../helpers/gpu';
import { selfTestCases } from '../../src/selftest/elementwise';
import { Rng } from '../helpers/random';

describe('axpby', () => {
  for (const n of [1, 7, 33, 1000, 70_001]) {
    it(`matches the reference for n=${n}`, async () => {
      const gpu = await getTestGpu();
      const rng = new Rng(n);
      const x = rng.f32(n);
      const y = rng.f32(n);
      const xb = gpu.upload(x);
      const yb = gpu.upload(y);
      const rec = gpu.recorder();
      axpby(gpu, rec, xb, yb, n, 0.5, -2);
      rec.submit();
      expectClose(await gpu.readF32(yb, n), axpbyRef(x, y, 0.5, -2), 1e-6, 'axpby f32');
      gpu.release(xb);
      gpu.release(yb);
    });
  }

  it('spreads more than 65535 groups over a 2-D grid', async () => {
    const gpu = await getTestGpu();
    const n = 65536 * 256 + 3;
    const x = new Float32Array(n).fill(1);
    const xb = gpu.upload(x);
    const yb = gpu.upload(new Float32Array(n).fill(-1)); // an unwritten element stays -1
    const rec = gpu.recorder();
    axpby(gpu, rec, xb, yb, n, 3, 1);
    rec.submit();
    const out = await gpu.readF32(yb, n);
    expect(out.every((v) => v === 2)).toBe(true);
    gpu.release(xb);
    gpu.release(yb);
  });
});

describe('copyColumns', () => {
  for (const accumulate of [false, true]) {
    it(`copies a column block between strided matrices (accumulate=${accumulate})`, async () => {
      const gpu = await getTestGpu();
      const rng = new Rng(accumulate ? 2 : 3);
      const rows = 7;
      const src = rng.f32(rows * 33);
      const dst = rng.f32(rows * 20);
      const dims = { rows, width: 11, srcStride: 33, srcOffset: 22, dstStride: 20, dstOffset: 5, accumulate };
      const sb = gpu.upload(src);
      const db = gpu.upload(dst);
      const rec = gpu.recorder();
      copyColumns(gpu, rec, { src: sb, dst: db, ...dims });
      rec.submit();
      expectClose(await gpu.readF32(db, rows * 20), copyColumnsRef(src, dst, dims), 1e-6, 'copyColumns');
      gpu.release(sb);
      gpu.release(db);
    });
  }
});

describeSelfTestCases('elementwise', selfTestCases);
