// Tokenized examples -> the [B, T] batches the model engine trains on (TokenBatch).
//
// One example per row: row r, position t holds inputs[t] and must predict targets[t] (the
// next-token shift of examples.ts), positions past the example are padding with mask 0. Packing
// several examples into one row is refused: the attention kernel is plain causal over the whole
// row, so a later example would attend to the earlier ones (cross-contamination).
//
// 'bucket' (default): shuffle by (seed, epoch), then within windows of `bucketWindow` batches sort
// by padded length and cut into batches, then shuffle the batch order. Similar lengths share a
// batch, so little compute goes to padding, while the windows and the shuffles keep epochs
// different. The sort key is the length rounded up to padMultiple, which gives each batch the same
// T as an exact sort would but leaves the shuffled order between examples of one key, so batch
// composition varies across epochs too.
// 'pad': shuffle by (seed, epoch) and cut into batches in that order; T = longest in the batch.
//
// Every example is in exactly one batch per epoch (the last batch of a window may be short), also
// examples with nothing to train on: filter those out beforehand if they should not cost compute.

import type { TokenBatch } from '../model/transformer';
import { fmix32, Rng } from '../util/random';

import { exampleAt, type ExampleList } from './exampleList';
import type { TokenSequence } from './examples';

export type BatchStrategy = 'bucket' | 'pad' | 'pack';

export interface BatchOptions {
  /** Most rows per batch (B). The last batch of an epoch, or of a bucket window, may have fewer. */
  batchSize: number;
  /** Longest example allowed, in ids (tokenize with the same value); T never exceeds it. */
  maxSeqLen: number;
  /** Default 'bucket'. 'pack' throws: see the file comment. */
  strategy?: BatchStrategy;
  seed: number;
  /** 0-based; each epoch gets its own order. */
  epoch: number;
  /** Token id written to padded positions (any id the model's vocabulary holds; masked anyway). */
  padId: number;
  /** T is rounded up to a multiple of this (capped at maxSeqLen), so fewer distinct shapes reach the GPU. Default 8. */
  padMultiple?: number;
  /** Optional cap on B*T: a batch takes fewer rows rather than exceed it. */
  tokensPerBatch?: number;
  /** 'bucket': examples sorted together, in batches (window = bucketWindow * batchSize examples). Default 50. */
  bucketWindow?: number;
}

/** A TokenBatch plus where its rows came from. */
export interface Batch extends TokenBatch {
  /** Index (into the makeBatches input) of the example in each row, row order. */
  examples: number[];
  /** Sum of mask: the trained targets of the batch. */
  trainedTokens: number;
}

/** A batch before its arrays are built. */
export interface BatchPlan {
  examples: number[];
  T: number;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/** The generator of one epoch's shuffles. */
export function epochRng(seed: number, epoch: number): Rng {
  return new Rng(fmix32((seed >>> 0) ^ fmix32((epoch + 0x9e3779b9) >>> 0)));
}

/** Fisher-Yates over an array or a typed array (the same draws either way). */
export function shuffleInPlace<A extends { length: number; [index: number]: unknown }>(items: A, rng: Rng): A {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = items[i];
    items[i] = items[j];
    items[j] = t;
  }
  return items;
}

/** Model positions of an example: L ids feed L-1 positions. */
function positionsOf(example: TokenSequence): number {
  return Math.max(0, example.ids.length - 1);
}

/**
 * Which examples go in which batch, and each batch's T, for one epoch. makeBatches builds the
 * arrays from this; call it alone to count an epoch's batches (e.g. for a learning-rate schedule:
 * with tokensPerBatch the count can differ between epochs).
 */
export function planBatches(examples: ExampleList<TokenSequence>, options: BatchOptions): BatchPlan[] {
  const batchSize = positiveInt('batchSize', options.batchSize);
  const maxSeqLen = positiveInt('maxSeqLen', options.maxSeqLen);
  const padMultiple = positiveInt('padMultiple', options.padMultiple ?? 8);
  const bucketWindow = positiveInt('bucketWindow', options.bucketWindow ?? 50);
  const budget = options.tokensPerBatch === undefined ? Infinity : positiveInt('tokensPerBatch', options.tokensPerBatch);
  if (!Number.isInteger(options.epoch) || options.epoch < 0) throw new RangeError(`epoch must be a non-negative integer, got ${options.epoch}`);
  if (!Number.isFinite(options.seed)) throw new RangeError(`seed must be a number, got ${options.seed}`);
  const strategy = options.strategy ?? 'bucket';
  if (strategy === 'pack') {
    throw new Error(
      'packing is not supported yet: packing needs per-example attention masks, and without them a packed example attends to the ones before it in its row',
    );
  }
  if (strategy !== 'bucket' && strategy !== 'pad') throw new RangeError(`unknown batching strategy ${JSON.stringify(strategy)}`);

  // T of a batch whose longest example has p positions.
  const paddedT = (p: number) => Math.min(maxSeqLen, Math.ceil(Math.max(1, p) / padMultiple) * padMultiple);
  const positions = new Uint32Array(examples.length);
  for (let i = 0; i < examples.length; i++) {
    const example = exampleAt(examples, i);
    if (example.trained.length !== example.ids.length) {
      throw new RangeError(`example ${i}: trained has ${example.trained.length} entries for ${example.ids.length} ids`);
    }
    if (example.ids.length > maxSeqLen) {
      throw new RangeError(`example ${i} has ${example.ids.length} tokens, more than maxSeqLen ${maxSeqLen}: tokenize with the same maxSeqLen`);
    }
    const p = positionsOf(example);
    if (paddedT(p) > budget) {
      throw new RangeError(`example ${i} needs T = ${paddedT(p)}, more than tokensPerBatch ${budget} allows for one row`);
    }
    positions[i] = p;
  }

  // Greedy cut of an ordered list: a batch closes when full or when one more row would break the budget.
  const cut = (order: Iterable<number>, into: BatchPlan[]) => {
    let rows: number[] = [];
    let longest = 0;
    for (const i of order) {
      const p = positions[i]!;
      if (rows.length > 0 && (rows.length >= batchSize || (rows.length + 1) * paddedT(Math.max(longest, p)) > budget)) {
        into.push({ examples: rows, T: paddedT(longest) });
        rows = [];
        longest = 0;
      }
      rows.push(i);
      longest = Math.max(longest, p);
    }
    if (rows.length > 0) into.push({ examples: rows, T: paddedT(longest) });
  };

  const rng = epochRng(options.seed, options.epoch);
  const order = shuffleInPlace(
    Uint32Array.from({ length: examples.length }, (_, i) => i),
    rng,
  );
  const plans: BatchPlan[] = [];
  if (strategy === 'pad') {
    cut(order, plans);
    return plans;
  }
  const key = (i: number) => Math.ceil(Math.max(1, positions[i]!) / padMultiple);
  const window = bucketWindow * batchSize;
  for (let start = 0; start < order.length; start += window) {
    // Array.prototype.sort is stable, so equal keys keep the shuffled order.
    const slice = Array.from(order.subarray(start, start + window)).sort((a, b) => key(a) - key(b));
    cut(slice, plans);
  }
  return shuffleInPlace(plans, rng);
}

/** Builds one batch's arrays: row r = example plan.examples[r], shifted, then padded with mask 0. */
export function buildBatch(examples: ExampleList<TokenSequence>, plan: BatchPlan, padId: number): Batch {
  if (!Number.isInteger(padId) || padId < 0) throw new RangeError(`padId must be a non-negative integer, got ${padId}`);
  const B = plan.examples.length;
  const T = plan.T;
  const tokens = new Uint32Array(B * T).fill(padId);
  const targets = new Uint32Array(B * T).fill(padId);
  const mask = new Float32Array(B * T);
  let trainedTokens = 0;
  plan.examples.forEach((index, row) => {
    const example = exampleAt(examples, index);
    const p = positionsOf(example);
    if (p > T) throw new RangeError(`example ${index} has ${p} positions, more than the batch's T = ${T}`);
    const at = row * T;
    tokens.set(example.ids.subarray(0, p), at);
    targets.set(example.ids.subarray(1, p + 1), at);
    for (let t = 0; t < p; t++) {
      const bit = example.trained[t + 1]!;
      mask[at + t] = bit;
      trainedTokens += bit;
    }
  });
  return { B, T, tokens, targets, mask, examples: plan.examples.slice(), trainedTokens };
}

/** One epoch of batches; same (examples, options) -> same batches. */
export function makeBatches(examples: ExampleList<TokenSequence>, options: BatchOptions): Batch[] {
  return planBatches(examples, options).map((plan) => buildBatch(examples, plan, options.padId));
}
