import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu';
import {
  CE_STATE_STRIDE,
  crossEntropy,
  crossEntropyChunkGrad,
  crossEntropyChunkStats,
  crossEntropyFinalize,
} from '../../src/kernels/crossentropy';
import { crossEntropyMeanRef, crossEntropyRef } from '../../src/kernels/reference/crossentropy';
import { selfTestCases } from '../../src/selftest/crossentropy';
import { expectClose } from '../helpers/compare';
import { describeSelfTestCases, expectReductionVariant, getTestGpu, poisonedF32 } from '../helpers/gpu';
import { Rng } from '../helpers/random';

// f32 online softmax vs f64: loss and dlogits within 1e-5 of max |ref| (measured ~1e-7..1e-6).
const TOL = 1e-5;
const PAD_TARGET = 0xffffffff;

interface Problem {
  rows: number;
  V: number;
  logits: Float32Array;
  targets: Uint32Array;
  mask: Float32Array;
}

/** Random logits in [-6, 6]; every third row untrained, with NaN logits and an out-of-vocab target. */
function makeProblem(rows: number, V: number, seed: number): Problem {
  const rng = new Rng(seed);
  const logits = rng.f32(rows * V, -6, 6);
  const targets = new Uint32Array(rows);
  const mask = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const trained = r % 3 !== 1;
    mask[r] = trained ? 1 : 0;
    targets[r] = trained ? rng.int(V) : PAD_TARGET;
    if (!trained) logits.fill(NaN, r * V, (r + 1) * V);
  }
  return { rows, V, logits, targets, mask };
}

/** Columns [v0, v0+vc) of every row, stored with row stride ld (padding is NaN). */
function chunkOf(p: Problem, v0: number, vc: number, ld = vc): Float32Array {
  const out = new Float32Array(p.rows * ld).fill(NaN);
  for (let r = 0; r < p.rows; r++) out.set(p.logits.subarray(r * p.V + v0, r * p.V + v0 + vc), r * ld);
  return out;
}

function chunkStarts(V: number, vc: number, reverse: boolean): number[] {
  const starts: number[] = [];
  for (let v0 = 0; v0 < V; v0 += vc) starts.push(v0);
  return reverse ? starts.reverse() : starts;
}

/** One problem's labels on the GPU and its outputs, poisoned: everything a loss binds but the logits. */
function lossBuffers(gpu: Gpu, p: Problem) {
  return {
    targets: gpu.upload(p.targets),
    mask: gpu.upload(p.mask),
    state: poisonedF32(gpu, p.rows * CE_STATE_STRIDE),
    rowLoss: poisonedF32(gpu, p.rows),
    rowCorrect: poisonedF32(gpu, p.rows),
    totals: poisonedF32(gpu, 3),
  };
}

async function runChunked(gpu: Gpu, p: Problem, vc: number, opts: { reverse?: boolean; ld?: number } = {}) {
  const ld = opts.ld ?? vc;
  const count = p.mask.reduce((a, b) => a + b, 0);
  const gradScale = 1 / count;
  const { targets, mask, state, rowLoss, rowCorrect, totals } = lossBuffers(gpu, p);
  const starts = chunkStarts(p.V, vc, opts.reverse ?? false);
  const widthOf = (v0: number) => Math.min(vc, p.V - v0);

  const rec = gpu.recorder();
  const statChunks = starts.map((v0) => gpu.upload(chunkOf(p, v0, widthOf(v0), ld)));
  starts.forEach((v0, i) => {
    crossEntropyChunkStats(gpu, rec, {
      logits: statChunks[i]!,
      targets,
      mask,
      state,
      rows: p.rows,
      vStart: v0,
      vc: widthOf(v0),
      ld,
      first: i === 0,
    });
  });
  crossEntropyFinalize(gpu, rec, { targets, mask, state, rows: p.rows, rowLoss, rowCorrect, totals });
  // The backward recomputes each chunk; here it is a fresh upload of the same values. Every
  // other chunk reads its scale from a buffer (as a replayed training step does): same result.
  const gradChunks = starts.map((v0) => gpu.upload(chunkOf(p, v0, widthOf(v0), ld)));
  const scaleBuffer = gpu.upload(Float32Array.of(gradScale));
  starts.forEach((v0, i) => {
    const chunk = { logits: gradChunks[i]!, targets, mask, state, rows: p.rows, vStart: v0, vc: widthOf(v0), ld };
    crossEntropyChunkGrad(gpu, rec, { ...chunk, gradScale: i % 2 === 1 ? { buffer: scaleBuffer } : gradScale });
  });
  rec.submit();

  const dlogits = new Float32Array(p.rows * p.V).fill(NaN);
  for (let i = 0; i < starts.length; i++) {
    const v0 = starts[i]!;
    const w = widthOf(v0);
    const c = await gpu.readF32(gradChunks[i]!, p.rows * ld);
    for (let r = 0; r < p.rows; r++) dlogits.set(c.subarray(r * ld, r * ld + w), r * p.V + v0);
  }
  const out = {
    rowLoss: await gpu.readF32(rowLoss, p.rows),
    rowCorrect: await gpu.readF32(rowCorrect, p.rows),
    totals: await gpu.readF32(totals, 3),
    dlogits,
    gradScale,
  };
  for (const b of [targets, mask, state, rowLoss, rowCorrect, totals, ...statChunks, ...gradChunks]) gpu.release(b);
  return out;
}

function checkAgainstRef(p: Problem, got: Awaited<ReturnType<typeof runChunked>>, what: string): void {
  const ref = crossEntropyRef(p.logits, p.rows, p.V, p.targets, p.mask, got.gradScale);
  expectClose(got.rowLoss, ref.rowLoss, TOL, `${what} row loss`);
  expect(Array.from(got.rowCorrect)).toEqual(Array.from(ref.rowCorrect));
  expectClose([got.totals[0]!], [ref.lossSum], TOL, `${what} loss sum`);
  expect(got.totals[1]).toBe(ref.tokenCount);
  expect(got.totals[2]).toBe(ref.correctCount);
  expectClose(got.dlogits, ref.dlogits, TOL, `${what} dlogits`);
}

describe('chunked cross-entropy', () => {
  const cases: [rows: number, V: number, vc: number][] = [
    [5, 1, 1],
    [7, 7, 3],
    [9, 33, 10],
    [11, 1000, 300],
    [4, 5003, 1024],
  ];
  for (const [rows, V, vc] of cases) {
    it(`matches the f64 reference: rows=${rows} V=${V} chunk=${vc}`, async () => {
      const p = makeProblem(rows, V, V * 31 + rows);
      checkAgainstRef(p, await runChunked(await getTestGpu(), p, vc), `V=${V}`);
    });
  }

  it('gives the same answer with chunks in reverse order and a padded row stride', async () => {
    const p = makeProblem(6, 257, 7);
    checkAgainstRef(p, await runChunked(await getTestGpu(), p, 64, { reverse: true, ld: 70 }), 'reverse');
  });

  it('counts a tied maximum as the lowest index, across chunks in either order', async () => {
    const p = makeProblem(3, 40, 3);
    // Row 0: max at 5 and 35 (different chunks), target 5 -> correct.
    // Row 2: max at 12 and 33, target 33 -> wrong (argmax is 12).
    for (const [r, a, b, t] of [
      [0, 5, 35, 5],
      [2, 12, 33, 33],
    ] as const) {
      p.logits[r * 40 + a] = 9;
      p.logits[r * 40 + b] = 9;
      p.targets[r] = t;
    }
    for (const reverse of [false, true]) {
      const got = await runChunked(await getTestGpu(), p, 16, { reverse });
      expect(got.rowCorrect[0]).toBe(1);
      expect(got.rowCorrect[2]).toBe(0);
      checkAgainstRef(p, got, `ties reverse=${reverse}`);
    }
  });

  it('non-chunked wrapper: loss, totals and in-place gradient', async () => {
    const gpu = await getTestGpu();
    const p = makeProblem(13, 129, 77);
    const count = p.mask.reduce((a, b) => a + b, 0);
    const ref = crossEntropyRef(p.logits, p.rows, p.V, p.targets, p.mask, 1 / count);
    const logits = gpu.upload(p.logits);
    const { targets, mask, state, rowLoss, rowCorrect, totals } = lossBuffers(gpu, p);
    const rec = gpu.recorder();
    const gradScale = 1 / count;
    crossEntropy(gpu, rec, { logits, targets, mask, state, rows: p.rows, V: p.V, rowLoss, rowCorrect, totals, gradScale });
    rec.submit();
    expectClose(await gpu.readF32(rowLoss, p.rows), ref.rowLoss, TOL, 'row loss');
    const t = await gpu.readF32(totals, 3);
    expectClose([t[0]!], [ref.lossSum], TOL, 'loss sum');
    expect([t[1], t[2]]).toEqual([ref.tokenCount, ref.correctCount]);
    expectClose(await gpu.readF32(logits, p.rows * p.V), ref.dlogits, TOL, 'dlogits');
    for (const b of [logits, targets, mask, state, rowLoss, rowCorrect, totals]) gpu.release(b);
  });

  it('accumulates totals over two micro-batches', async () => {
    const gpu = await getTestGpu();
    const problems = [makeProblem(5, 33, 1), makeProblem(8, 33, 2)];
    const totals = gpu.upload(new Float32Array(3));
    const bufs: GPUBuffer[] = [totals];
    let lossSum = 0;
    let tokens = 0;
    for (const p of problems) {
      const ref = crossEntropyRef(p.logits, p.rows, p.V, p.targets, p.mask);
      lossSum += ref.lossSum;
      tokens += ref.tokenCount;
      const [logits, targets, mask] = [gpu.upload(p.logits), gpu.upload(p.targets), gpu.upload(p.mask)];
      const [state, rowLoss, rowCorrect] = [poisonedF32(gpu, p.rows * 4), poisonedF32(gpu, p.rows), poisonedF32(gpu, p.rows)];
      bufs.push(logits, targets, mask, state, rowLoss, rowCorrect);
      const rec = gpu.recorder();
      crossEntropyChunkStats(gpu, rec, { logits, targets, mask, state, rows: p.rows, vStart: 0, vc: p.V });
      crossEntropyFinalize(gpu, rec, { targets, mask, state, rows: p.rows, rowLoss, rowCorrect, totals, accumulate: true });
      rec.submit();
    }
    const t = await gpu.readF32(totals, 3);
    expectClose([t[0]!], [lossSum], TOL, 'accumulated loss');
    expect(t[1]).toBe(tokens);
    for (const b of bufs) gpu.release(b);
  });

  it("chunk stats run the device plan's reductions (subgroups under the GPU plan)", async () => {
    const gpu = await getTestGpu();
    const p = makeProblem(5, 333, 21);
    checkAgainstRef(p, await runChunked(gpu, p, 300), 'variant');
    expectReductionVariant(gpu, ['crossentropy.chunk_stats']);
  });

  it('rejects an empty chunk', async () => {
    const gpu = await getTestGpu();
    const b = gpu.createBuffer(16);
    expect(() =>
      crossEntropyChunkStats(gpu, gpu.recorder(), { logits: b, targets: b, mask: b, state: b, rows: 1, vStart: 0, vc: 0 }),
    ).toThrow(/empty chunk/);
    gpu.release(b);
  });
});

describe('cross-entropy reference', () => {
  it('its gradient matches central finite differences of the mean loss', () => {
    const rows = 4;
    const V = 7;
    const rng = new Rng(5);
    const logits = Array.from({ length: rows * V }, () => rng.uniform(-3, 3));
    const targets = [3, 0, 6, 2];
    const mask = [1, 0, 1, 1];
    const count = 3;
    const ref = crossEntropyRef(logits, rows, V, targets, mask, 1 / count);
    const h = 1e-5;
    const fd = logits.map((_, i) => {
      const plus = logits.slice();
      const minus = logits.slice();
      plus[i]! += h;
      minus[i]! -= h;
      return (crossEntropyMeanRef(plus, rows, V, targets, mask) - crossEntropyMeanRef(minus, rows, V, targets, mask)) / (2 * h);
    });
    expectClose(ref.dlogits, fd, 1e-8, 'finite differences');
    // Rows with mask 0 get no gradient at all.
    expect(Array.from(ref.dlogits.subarray(V, 2 * V))).toEqual(new Array(V).fill(0));
  });

  it('its loss is the textbook value on a tiny case', () => {
    // logits [0, ln 3], target 1: p = 3/4, loss = ln(4/3).
    const r = crossEntropyRef([0, Math.log(3)], 1, 2, [1], [1]);
    expect(r.rowLoss[0]).toBeCloseTo(Math.log(4 / 3), 12);
    expect(r.rowCorrect[0]).toBe(1);
  });
});

describeSelfTestCases('crossentropy', selfTestCases);
