import { fromF16Array, toF16Array } from '../gpu';
import type { Gpu } from '../gpu';
import { embedding, embeddingBackward, embeddingGradIndex, packEmbeddingGradIndex, type EmbeddingShard } from '../kernels/embedding';
import { embeddingBackwardRef, embeddingRef } from '../kernels/reference/embedding';
import { maxRelError, Rng } from './compare';
import type { SelfTestCase } from './types';
import { withBuffers } from './buffers';

/** Records and submits the gradient scatter-add of dOut over the tokens' ids into the shards. */
export function scatterEmbeddingGrad(gpu: Gpu, t: (b: GPUBuffer) => GPUBuffer, ids: Uint32Array, dOut: Float32Array, cols: number, shards: EmbeddingShard[]): void {
  const index = embeddingGradIndex(ids);
  const rec = gpu.recorder('embeddingGrad');
  embeddingBackward(gpu, rec, {
    index,
    indexBuffer: t(gpu.upload(packEmbeddingGradIndex(index))),
    dOut: t(gpu.upload(dOut)),
    cols,
    shards,
  });
  rec.submit();
}

export const selfTestCases: SelfTestCase[] = [
  {
    name: 'embedding f16 table in 2 shards + f32 position table (21 tokens, C=35)',
    tol: 1e-7,
    run: (gpu) =>
      withBuffers(gpu, async (t) => {
        const [vocab, cols, tokens, maxPos] = [29, 35, 21, 24];
        const rng = new Rng(606);
        const bits = toF16Array(rng.f32(vocab * cols, -2, 2));
        const wpe = rng.f32(maxPos * cols);
        const ids = Uint32Array.from({ length: tokens }, () => rng.int(vocab));
        const positions = Uint32Array.from({ length: tokens }, () => rng.int(maxPos));
        const split = 11;
        const out = t(gpu.createBuffer(tokens * cols * 4));
        const rec = gpu.recorder('selftest.embedding');
        embedding(gpu, rec, {
          ids: t(gpu.upload(ids)),
          tokens,
          cols,
          shards: [
            { buffer: t(gpu.upload(bits.slice(0, split * cols))), rowStart: 0, rowCount: split },
            { buffer: t(gpu.upload(bits.slice(split * cols))), rowStart: split, rowCount: vocab - split },
          ],
          dtype: 'f16',
          out,
          positionTable: t(gpu.upload(wpe)),
          positions: t(gpu.upload(positions)),
        });
        rec.submit();
        const ref = embeddingRef(fromF16Array(bits), ids, cols, { table: wpe, positions });
        return maxRelError(await gpu.readF32(out, tokens * cols), ref);
      }),
  },
  {
    name: 'embedding gradient scatter-add (33 tokens over 9 ids, C=70)',
    tol: 1e-6,
    run: (gpu) =>
      withBuffers(gpu, async (t) => {
        const [vocab, cols, tokens] = [9, 70, 33];
        const rng = new Rng(707);
        const ids = Uint32Array.from({ length: tokens }, () => rng.int(vocab));
        const dOut = rng.f32(tokens * cols);
        const dTable = t(gpu.upload(new Float32Array(vocab * cols)));
        scatterEmbeddingGrad(gpu, t, ids, dOut, cols, [{ buffer: dTable, rowStart: 0, rowCount: vocab }]);
        return maxRelError(await gpu.readF32(dTable, vocab * cols), embeddingBackwardRef(dOut, ids, vocab, cols));
      }),
  },
];
