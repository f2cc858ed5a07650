// A deterministic validation holdout from the training file, for runs without a validation file.

import { Rng } from '../util/random';

import { shuffleInPlace } from './batching';

export interface SplitOptions {
  /** Fraction held out, in [0, 1). Default 0.1. */
  share?: number;
  /** Seed of the choice; the same seed and item count hold out the same positions. */
  seed: number;
  /** Most items held out (e.g. to keep evaluation cheap on big files). Default: no cap. */
  max?: number;
}

export interface Split<T> {
  /** Items not held out, in their original order. */
  train: T[];
  /** Held-out items, in their original order. */
  validation: T[];
  /** Original indices of the validation items, ascending. */
  validationIndices: number[];
}

/**
 * Holds out round(share * n) items (at most `max`), chosen by `seed`, and never all of them:
 * train keeps at least one item, so fewer than 2 items give an empty validation set.
 */
export function splitValidation<T>(items: readonly T[], options: SplitOptions): Split<T> {
  const share = options.share ?? 0.1;
  if (!(share >= 0 && share < 1)) throw new RangeError(`share must be in [0, 1), got ${share}`);
  const max = options.max ?? Infinity;
  if (!(max >= 0)) throw new RangeError(`max must be >= 0, got ${max}`);
  if (!Number.isFinite(options.seed)) throw new RangeError(`seed must be a number, got ${options.seed}`);
  const n = items.length;
  const count = Math.max(0, Math.min(Math.round(share * n), Math.floor(max), n - 1));
  // Its own stream (seed xor a constant), so the holdout is not the first epoch's first batch.
  const order = shuffleInPlace(
    Array.from({ length: n }, (_, i) => i),
    new Rng((options.seed ^ 0x5eed5417) >>> 0),
  );
  const held = new Uint8Array(n);
  for (const i of order.slice(0, count)) held[i] = 1;
  const split: Split<T> = { train: [], validation: [], validationIndices: [] };
  items.forEach((item, i) => {
    if (held[i]) {
      split.validation.push(item);
      split.validationIndices.push(i);
    } else {
      split.train.push(item);
    }
  });
  return split;
}
