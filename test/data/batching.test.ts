import { describe, expect, it } from 'vitest';

import { makeBatches, planBatches, type Batch, type BatchOptions } from '../../src/data/batching';
import { toTrainingSequence, trainedTargets, type TokenSequence } from '../../src/data/examples';
import { splitValidation } from '../../src/data/split';
import { Rng } from '../../src/util/random';

const PAD = 3;

/** n examples of 1..maxLen ids (ids 4..299, never PAD), random trained flags, trained[0] = 0. */
function randomExamples(n: number, maxLen: number, seed: number): TokenSequence[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const L = 1 + rng.int(maxLen);
    const ids = Uint32Array.from({ length: L }, () => 4 + rng.int(296));
    const trained = Uint8Array.from({ length: L }, (_, i) => (i > 0 && rng.next() < 0.7 ? 1 : 0));
    return { ids, trained };
  });
}

const base: BatchOptions = { batchSize: 4, maxSeqLen: 40, seed: 7, epoch: 0, padId: PAD };

/** Checks every row against the example it holds, shifted, and the padding after it. */
function checkBatch(batch: Batch, examples: readonly TokenSequence[], options: BatchOptions): void {
  const { B, T } = batch;
  expect(B).toBe(batch.examples.length);
  expect(B).toBeGreaterThanOrEqual(1);
  expect(B).toBeLessThanOrEqual(options.batchSize);
  expect(batch.tokens.length).toBe(B * T);
  expect(batch.targets.length).toBe(B * T);
  expect(batch.mask.length).toBe(B * T);
  expect(T).toBeLessThanOrEqual(options.maxSeqLen);
  const multiple = options.padMultiple ?? 8;
  expect(T % multiple === 0 || T === options.maxSeqLen).toBe(true);
  if (options.tokensPerBatch !== undefined) expect(B * T).toBeLessThanOrEqual(options.tokensPerBatch);
  let trained = 0;
  let longest = 0;
  batch.examples.forEach((index, r) => {
    const seq = toTrainingSequence(examples[index]!);
    const p = seq.inputs.length;
    longest = Math.max(longest, p);
    expect(Array.from(batch.tokens.subarray(r * T, r * T + p))).toEqual(Array.from(seq.inputs));
    expect(Array.from(batch.targets.subarray(r * T, r * T + p))).toEqual(Array.from(seq.targets));
    expect(Array.from(batch.mask.subarray(r * T, r * T + p))).toEqual(Array.from(seq.mask));
    for (let t = p; t < T; t++) {
      expect(batch.tokens[r * T + t]).toBe(PAD);
      expect(batch.targets[r * T + t]).toBe(PAD);
      expect(batch.mask[r * T + t]).toBe(0);
    }
    trained += trainedTargets(examples[index]!);
  });
  // T is the longest example's positions rounded up (capped), not more.
  expect(T).toBe(Math.min(options.maxSeqLen, Math.ceil(Math.max(1, longest) / multiple) * multiple));
  expect(batch.trainedTokens).toBe(trained);
  expect(batch.mask.reduce((s, m) => s + m, 0)).toBe(trained);
}

function order(batches: Batch[]): number[] {
  return batches.flatMap((b) => b.examples);
}

describe('makeBatches', () => {
  it('builds the exact arrays of a small batch: shifted rows, padding masked', () => {
    const examples: TokenSequence[] = [
      { ids: Uint32Array.of(10, 11, 12), trained: Uint8Array.of(0, 1, 1) },
      { ids: Uint32Array.of(20, 21, 22, 23, 24), trained: Uint8Array.of(0, 0, 1, 0, 1) },
    ];
    const [batch, ...rest] = makeBatches(examples, { batchSize: 2, maxSeqLen: 8, seed: 1, epoch: 0, padId: 0, padMultiple: 1, strategy: 'pad' });
    expect(rest).toEqual([]);
    const b = batch!;
    expect([b.B, b.T]).toEqual([2, 4]);
    const rows = b.examples[0] === 0 ? [0, 1] : [1, 0];
    const row = (e: number) => rows.indexOf(e) * 4;
    expect(Array.from(b.tokens.subarray(row(0), row(0) + 4))).toEqual([10, 11, 0, 0]);
    expect(Array.from(b.targets.subarray(row(0), row(0) + 4))).toEqual([11, 12, 0, 0]);
    expect(Array.from(b.mask.subarray(row(0), row(0) + 4))).toEqual([1, 1, 0, 0]);
    expect(Array.from(b.tokens.subarray(row(1), row(1) + 4))).toEqual([20, 21, 22, 23]);
    expect(Array.from(b.targets.subarray(row(1), row(1) + 4))).toEqual([21, 22, 23, 24]);
    expect(Array.from(b.mask.subarray(row(1), row(1) + 4))).toEqual([0, 1, 0, 1]);
    expect(b.trainedTokens).toBe(4);
  });

  for (const strategy of ['bucket', 'pad'] as const) {
    describe(`strategy '${strategy}'`, () => {
      const examples = randomExamples(203, 40, 11);
      const options: BatchOptions = { ...base, strategy, bucketWindow: 5 };

      it('rows hold their examples shifted and padded; shapes and T follow the options', () => {
        for (const b of makeBatches(examples, options)) checkBatch(b, examples, options);
      });

      it('puts every example in exactly one batch per epoch, ceil(n / batchSize) batches', () => {
        for (const epoch of [0, 1, 2]) {
          const batches = makeBatches(examples, { ...options, epoch });
          expect(order(batches).sort((a, b) => a - b)).toEqual(examples.map((_, i) => i));
          expect(batches.length).toBe(Math.ceil(examples.length / options.batchSize));
        }
      });

      it('is deterministic in (seed, epoch), and epochs and seeds give different orders', () => {
        expect(makeBatches(examples, options)).toEqual(makeBatches(examples, options));
        const orders = [0, 1, 2].map((epoch) => order(makeBatches(examples, { ...options, epoch })).join(','));
        expect(new Set(orders).size).toBe(3);
        expect(order(makeBatches(examples, { ...options, seed: 8 }))).not.toEqual(order(makeBatches(examples, options)));
      });

      it('respects tokensPerBatch: B*T never exceeds it, every example still once', () => {
        const capped: BatchOptions = { ...options, tokensPerBatch: 80 };
        const batches = makeBatches(examples, capped);
        for (const b of batches) checkBatch(b, examples, capped);
        expect(order(batches).sort((a, b) => a - b)).toEqual(examples.map((_, i) => i));
        expect(planBatches(examples, capped).length).toBe(batches.length);
        // Long examples (T = 40) fit two to a batch, so there are more batches than without the cap.
        expect(batches.length).toBeGreaterThan(Math.ceil(examples.length / options.batchSize));
        expect(batches.some((b) => b.T === 40 && b.B === 2)).toBe(true);
      });
    });
  }

  it("'bucket' groups similar lengths: within a window the batches' length ranges do not overlap", () => {
    const examples = randomExamples(100, 60, 3);
    const options: BatchOptions = { ...base, maxSeqLen: 60, padMultiple: 1, bucketWindow: 1000 };
    const batches = makeBatches(examples, options);
    // Compared in model positions (L - 1, at least 1): the length a batch's T depends on.
    const ranges = batches
      .map((b) => b.examples.map((i) => Math.max(1, examples[i]!.ids.length - 1)))
      .map((lengths) => [Math.min(...lengths), Math.max(...lengths)] as const)
      .sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBeGreaterThanOrEqual(ranges[i - 1]![1]);
    // ...so far less padding than random batches.
    const padded = (bs: Batch[]) => bs.reduce((s, b) => s + b.B * b.T, 0);
    expect(padded(batches)).toBeLessThan(0.8 * padded(makeBatches(examples, { ...options, strategy: 'pad' })));
    // The batch order is shuffled, not sorted by length.
    const firstLengths = batches.map((b) => b.T);
    expect(firstLengths).not.toEqual([...firstLengths].sort((a, b) => a - b));
  });

  it('caps the rounded-up T at maxSeqLen and keeps T >= 1 for one-token examples', () => {
    const examples: TokenSequence[] = [
      { ids: Uint32Array.from({ length: 10 }, (_, i) => 10 + i), trained: Uint8Array.from({ length: 10 }, (_, i) => (i > 0 ? 1 : 0)) },
      { ids: Uint32Array.of(5), trained: Uint8Array.of(0) },
    ];
    const options: BatchOptions = { ...base, batchSize: 1, maxSeqLen: 10 };
    const batches = makeBatches(examples, options);
    expect(batches.map((b) => [b.examples[0], b.T]).sort()).toEqual([
      [0, 10],
      [1, 8],
    ]);
    for (const b of batches) checkBatch(b, examples, options);
  });

  it('refuses packing, over-long examples, impossible budgets and bad options', () => {
    const examples = randomExamples(10, 20, 5);
    expect(() => makeBatches(examples, { ...base, strategy: 'pack' })).toThrow(/packing is not supported yet: packing needs per-example attention masks/);
    expect(() => makeBatches(examples, { ...base, maxSeqLen: 5 })).toThrow(/more than maxSeqLen 5/);
    const long = [{ ids: new Uint32Array(30).fill(9), trained: new Uint8Array(30) }];
    expect(() => makeBatches(long, { ...base, tokensPerBatch: 16 })).toThrow(/tokensPerBatch/);
    expect(() => makeBatches(examples, { ...base, batchSize: 0 })).toThrow(RangeError);
    expect(() => makeBatches(examples, { ...base, epoch: -1 })).toThrow(RangeError);
    expect(() => makeBatches(examples, { ...base, padId: -1 })).toThrow(RangeError);
    expect(() => makeBatches([{ ids: Uint32Array.of(1, 2), trained: Uint8Array.of(0) }], base)).toThrow(/trained has 1 entries/);
  });

  it('an empty dataset gives no batches', () => {
    expect(makeBatches([], base)).toEqual([]);
  });
});

describe('splitValidation', () => {
  const items = Array.from({ length: 100 }, (_, i) => `example ${i}`);

  it('holds out round(share * n), deterministically by seed, preserving order', () => {
    const a = splitValidation(items, { share: 0.1, seed: 42 });
    expect(a).toEqual(splitValidation(items, { share: 0.1, seed: 42 }));
    expect(a.validation.length).toBe(10);
    expect(a.train.length).toBe(90);
    expect(a.validation).toEqual(a.validationIndices.map((i) => items[i]));
    expect([...a.validationIndices].sort((x, y) => x - y)).toEqual(a.validationIndices);
    // A partition, in the original order.
    const held = new Set(a.validationIndices);
    expect(a.train).toEqual(items.filter((_, i) => !held.has(i)));
    expect(splitValidation(items, { share: 0.1, seed: 43 }).validationIndices).not.toEqual(a.validationIndices);
    expect(splitValidation(items, { seed: 42 }).validation.length).toBe(10);
  });

  it('caps the holdout at max and never leaves train empty', () => {
    expect(splitValidation(items, { share: 0.5, seed: 1, max: 3 }).validation.length).toBe(3);
    expect(splitValidation(['only'], { share: 0.5, seed: 1 })).toEqual({ train: ['only'], validation: [], validationIndices: [] });
    const three = splitValidation(['a', 'b', 'c'], { share: 0.9, seed: 1 });
    expect([three.train.length, three.validation.length]).toEqual([1, 2]);
    expect(splitValidation(items.slice(0, 4), { share: 0.1, seed: 1 }).validation.length).toBe(0);
    expect(splitValidation([], { seed: 1 })).toEqual({ train: [], validation: [], validationIndices: [] });
  });

  it('rejects shares outside [0, 1)', () => {
    expect(() => splitValidation(items, { share: 1, seed: 1 })).toThrow(RangeError);
    expect(() => splitValidation(items, { share: -0.1, seed: 1 })).toThrow(RangeError);
  });
});
