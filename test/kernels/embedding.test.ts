import { describe, expect, it } from 'vitest';
import { fromF16Array, toF16Array, type Gpu } from '../../src/gpu';
import {
  embedding,
  embeddingGradIndex,
  planEmbeddingShards,
  type EmbeddingShard,
  type TableDType,
} from '../../src/kernels/embedding';
import { embeddingBackwardRef, embeddingRef } from '../../src/kernels/reference/embedding';
import { scatterEmbeddingGrad, selfTestCases } from '../../src/selftest/embedding';
import { expectClose, maxRelError, numericGrad } from '../helpers/compare';
import { describeSelfTestCases, getTestGpu, poisonedF32 } from '../helpers/gpu';
import { Rng } from '../helpers/random';
import { withBuffers } from '../../src/selftest/buffers';

// Tolerances (maxRelError): the gather copies values, so it must be exact (0) for f32 and for f16
// (f16 -> f32 widening is exact). Adding a position row rounds once in f32: 1e-7 (half an ulp is
// 6e-8; measured 3e-8). Gradient sums in f32 in token order, against f64: 1e-6 (measured 8e-8).
const ADD_TOL = 1e-7;
const GRAD_TOL = 1e-6;

/** A random table in the requested dtype: its decoded values and the bytes to upload per row range. */
function makeTable(rng: Rng, rows: number, cols: number, dtype: TableDType) {
  const f32 = rng.f32(rows * cols, -2, 2);
  if (dtype === 'f32') return { values: f32, slice: (r0: number, r1: number) => f32.slice(r0 * cols, r1 * cols) };
  const bits = toF16Array(f32);
  return { values: fromF16Array(bits), slice: (r0: number, r1: number) => bits.slice(r0 * cols, r1 * cols) };
}

function uploadShards(
  gpu: Gpu,
  t: (b: GPUBuffer) => GPUBuffer,
  slice: (r0: number, r1: number) => ArrayBufferView,
  bounds: readonly number[],
): EmbeddingShard[] {
  const shards: EmbeddingShard[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const [r0, r1] = [bounds[i]!, bounds[i + 1]!];
    shards.push({ buffer: t(gpu.upload(slice(r0, r1))), rowStart: r0, rowCount: r1 - r0 });
  }
  return shards;
}

/** One gather of ids through the shards into a NaN-poisoned output, read back. */
async function gather(
  gpu: Gpu,
  t: (b: GPUBuffer) => GPUBuffer,
  args: { ids: Uint32Array; cols: number; shards: EmbeddingShard[]; dtype: TableDType },
): Promise<Float32Array> {
  const n = args.ids.length * args.cols;
  const out = t(poisonedF32(gpu, n));
  const rec = gpu.recorder();
  embedding(gpu, rec, { ...args, ids: t(gpu.upload(args.ids)), tokens: args.ids.length, out });
  rec.submit();
  return gpu.readF32(out, n);
}

describe('embedding gather', () => {
  for (const dtype of ['f32', 'f16'] as const) {
    it(`${dtype} table, one shard, tokens 1/7/33 x cols 1/7/33/127`, async () => {
      const gpu = await getTestGpu();
      const vocab = 50;
      for (const tokens of [1, 7, 33]) {
        for (const cols of [1, 7, 33, 127]) {
          const rng = new Rng(tokens * 1000 + cols + (dtype === 'f16' ? 7 : 0));
          const table = makeTable(rng, vocab, cols, dtype);
          const ids = Uint32Array.from({ length: tokens }, () => rng.int(vocab));
          await withBuffers(gpu, async (t) => {
            const got = await gather(gpu, t, { ids, cols, shards: uploadShards(gpu, t, table.slice, [0, vocab]), dtype });
            expect(maxRelError(got, embeddingRef(table.values, ids, cols)), `${dtype} ${tokens}x${cols}`).toBe(0);
          });
        }
      }
    });

    it(`${dtype} table in 3 row shards; each shard writes only its own tokens`, async () => {
      const gpu = await getTestGpu();
      const [vocab, cols, tokens] = [37, 7, 33];
      const bounds = [0, 13, 26, 37];
      const rng = new Rng(dtype === 'f16' ? 3 : 4);
      const table = makeTable(rng, vocab, cols, dtype);
      const ids = Uint32Array.from({ length: tokens }, () => rng.int(vocab));
      ids[0] = 0;
      ids[1] = vocab - 1; // both ends of the vocabulary
      ids[2] = 13; // first row of a middle shard
      const ref = embeddingRef(table.values, ids, cols);
      await withBuffers(gpu, async (t) => {
        const shards = uploadShards(gpu, t, table.slice, bounds);
        const idb = t(gpu.upload(ids));
        const all = t(poisonedF32(gpu, tokens * cols));
        const middleOnly = t(poisonedF32(gpu, tokens * cols));
        const rec = gpu.recorder();
        embedding(gpu, rec, { ids: idb, tokens, cols, shards, dtype, out: all });
        embedding(gpu, rec, { ids: idb, tokens, cols, shards: [shards[1]!], dtype, out: middleOnly });
        rec.submit();
        expect(maxRelError(await gpu.readF32(all, tokens * cols), ref)).toBe(0);
        const mid = await gpu.readF32(middleOnly, tokens * cols);
        for (let tk = 0; tk < tokens; tk++) {
          const inShard = ids[tk]! >= 13 && ids[tk]! < 26;
          for (let c = 0; c < cols; c++) {
            const v = mid[tk * cols + c]!;
            if (inShard) expect(v).toBe(ref[tk * cols + c]);
            else expect(v).toBeNaN();
          }
        }
      });
    });
  }

  it('binds only the shard bytes of a buffer larger than the shard', async () => {
    const gpu = await getTestGpu();
    const [vocab, cols] = [5, 3];
    const rng = new Rng(12);
    const values = rng.f32(vocab * cols);
    const ids = Uint32Array.from([4, 0, 2, 4]);
    await withBuffers(gpu, async (t) => {
      const big = t(gpu.createBuffer(4096));
      gpu.write(big, values);
      const got = await gather(gpu, t, { ids, cols, shards: [{ buffer: big, rowStart: 0, rowCount: vocab }], dtype: 'f32' });
      expect(maxRelError(got, embeddingRef(values, ids, cols))).toBe(0);
    });
  });
});

describe('embedding with learned positions (GPT-2 wte + wpe)', () => {
  for (const [dtype, posDtype] of [
    ['f32', 'f32'],
    ['f16', 'f16'],
    ['f16', 'f32'],
  ] as const) {
    it(`wte ${dtype}, wpe ${posDtype}: per-token positions and a start offset`, async () => {
      const gpu = await getTestGpu();
      const [vocab, maxPos, cols, batch, seqLen] = [41, 20, 33, 3, 7];
      const tokens = batch * seqLen;
      const rng = new Rng(dtype.length + 3 * posDtype.length);
      const wte = makeTable(rng, vocab, cols, dtype);
      const wpe = makeTable(rng, maxPos, cols, posDtype);
      const ids = Uint32Array.from({ length: tokens }, () => rng.int(vocab));
      const positions = Uint32Array.from({ length: tokens }, () => rng.int(maxPos));
      const start = 5;
      const seqPositions = Uint32Array.from({ length: tokens }, (_, tk) => start + (tk % seqLen));
      await withBuffers(gpu, async (t) => {
        const common = {
          ids: t(gpu.upload(ids)),
          tokens,
          cols,
          shards: uploadShards(gpu, t, wte.slice, [0, 20, vocab]),
          dtype,
          positionTable: t(gpu.upload(wpe.slice(0, maxPos))),
          positionDtype: posDtype,
        };
        const outA = t(poisonedF32(gpu, tokens * cols));
        const outB = t(poisonedF32(gpu, tokens * cols));
        const rec = gpu.recorder();
        embedding(gpu, rec, { ...common, out: outA, positions: t(gpu.upload(positions)) });
        embedding(gpu, rec, { ...common, out: outB, positionStart: start, seqLen });
        rec.submit();
        const refA = embeddingRef(wte.values, ids, cols, { table: wpe.values, positions });
        const refB = embeddingRef(wte.values, ids, cols, { table: wpe.values, positions: seqPositions });
        expectClose(await gpu.readF32(outA, tokens * cols), refA, ADD_TOL, 'wte+wpe positions');
        expectClose(await gpu.readF32(outB, tokens * cols), refB, ADD_TOL, 'wte+wpe start offset');
      });
    });
  }
});

describe('planEmbeddingShards', () => {
  it('splits Qwen2.5-0.5B (151936 x 896 f32 = 544 MB) under a 128 MiB binding', () => {
    const max = 128 * 1024 * 1024;
    const shards = planEmbeddingShards(151936, 896, 'f32', max);
    expect(shards.length).toBe(5);
    let next = 0;
    for (const s of shards) {
      expect(s.rowStart).toBe(next);
      expect(s.rowCount * 896 * 4).toBeLessThanOrEqual(max);
      expect((s.rowStart * 896 * 4) % 256).toBe(0);
      next += s.rowCount;
    }
    expect(next).toBe(151936);
  });

  it('keeps shard starts 256-byte aligned for odd row sizes, and one shard when it fits', () => {
    const shards = planEmbeddingShards(10_000, 7, 'f16', 4096);
    for (const s of shards) {
      expect((s.rowStart * 7 * 2) % 256).toBe(0);
      expect(s.rowCount * 14).toBeLessThanOrEqual(4096);
    }
    expect(shards.reduce((n, s) => n + s.rowCount, 0)).toBe(10_000);
    expect(planEmbeddingShards(100, 8, 'f32', 1 << 20)).toEqual([{ rowStart: 0, rowCount: 100 }]);
  });
});

describe('embedding gradient', () => {
  it('embeddingGradIndex groups tokens by id, stable', () => {
    const idx = embeddingGradIndex([5, 2, 5, 0, 2, 5]);
    expect(Array.from(idx.order)).toEqual([3, 1, 4, 0, 2, 5]);
    expect(Array.from(idx.segStart)).toEqual([0, 1, 3, 6]);
    expect(Array.from(idx.uniqueIds)).toEqual([0, 2, 5]);
    const empty = embeddingGradIndex([]);
    expect(Array.from(empty.segStart)).toEqual([0]);
    expect(empty.uniqueIds.length).toBe(0);
  });

  for (const cols of [1, 7, 33, 127]) {
    it(`scatter-adds into a 2-shard gradient table, cols=${cols}`, async () => {
      const gpu = await getTestGpu();
      const [vocab, tokens] = [40, 33];
      const rng = new Rng(cols * 13);
      // Few distinct ids, so most ids repeat; ids 0 and 39 (both ends) always present.
      const ids = Uint32Array.from({ length: tokens }, () => [0, 3, 16, 17, 18, 25, 39][rng.int(7)]!);
      ids[0] = 0;
      ids[1] = 39;
      const dOut = rng.f32(tokens * cols);
      const init = rng.f32(vocab * cols);
      const ref = embeddingBackwardRef(dOut, ids, vocab, cols).map((v, i) => v + init[i]!);
      await withBuffers(gpu, async (t) => {
        const shards = uploadShards(gpu, t, (r0, r1) => init.slice(r0 * cols, r1 * cols), [0, 17, vocab]);
        scatterEmbeddingGrad(gpu, t, ids, dOut, cols, shards);
        const got = new Float32Array(vocab * cols);
        got.set(await gpu.readF32(shards[0]!.buffer as GPUBuffer, 17 * cols), 0);
        got.set(await gpu.readF32(shards[1]!.buffer as GPUBuffer, (vocab - 17) * cols), 17 * cols);
        expectClose(got, ref, GRAD_TOL, `embedding grad cols=${cols}`);
        // Rows of ids not in the batch are left exactly as they were.
        const present = new Set(ids);
        for (let r = 0; r < vocab; r++) {
          if (present.has(r)) continue;
          for (let c = 0; c < cols; c++) expect(got[r * cols + c]).toBe(init[r * cols + c]);
        }
      });
    });
  }

  it('is deterministic and covers more than 65535 distinct ids (3-D grid)', async () => {
    const gpu = await getTestGpu();
    const vocab = 70_000;
    const tokens = 70_003;
    const cols = 1;
    const rng = new Rng(99);
    // Every id once (shuffled) plus three repeats.
    const ids = Uint32Array.from({ length: tokens }, (_, i) => (i < vocab ? i : rng.int(vocab)));
    for (let i = vocab - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [ids[i], ids[j]] = [ids[j]!, ids[i]!];
    }
    const dOut = rng.f32(tokens * cols);
    expect(embeddingGradIndex(ids).uniqueIds.length).toBe(vocab);
    const ref = embeddingBackwardRef(dOut, ids, vocab, cols);
    const runs: Float32Array[] = [];
    for (let k = 0; k < 2; k++) {
      await withBuffers(gpu, async (t) => {
        const dTable = t(gpu.upload(new Float32Array(vocab * cols)));
        scatterEmbeddingGrad(gpu, t, ids, dOut, cols, [{ buffer: dTable, rowStart: 0, rowCount: vocab }]);
        runs.push(await gpu.readF32(dTable, vocab * cols));
      });
    }
    expectClose(runs[0]!, ref, GRAD_TOL, 'grad 70000 ids');
    expect(Buffer.from(runs[0]!.buffer).equals(Buffer.from(runs[1]!.buffer))).toBe(true);
  });
});

describe('embedding reference: backward = finite differences of forward', () => {
  it('embeddingBackwardRef (with a position table in the forward)', () => {
    const [vocab, cols, tokens] = [6, 3, 8];
    const rng = new Rng(71);
    const table = Float64Array.from(rng.f32(vocab * cols));
    const ids = Uint32Array.from({ length: tokens }, () => rng.int(vocab));
    const pos = { table: rng.f32(tokens * cols), positions: Uint32Array.from({ length: tokens }, (_, i) => i) };
    const G = rng.f32(tokens * cols);
    const loss = () => embeddingRef(table, ids, cols, pos).reduce((s, v, i) => s + v * G[i]!, 0);
    const fd = numericGrad(table, loss);
    expect(maxRelError(embeddingBackwardRef(G, ids, vocab, cols), fd)).toBeLessThan(1e-9);
  });
});

describeSelfTestCases('embedding', selfTestCases);
