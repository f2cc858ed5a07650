import { expect } from 'vitest';

/**
 * Error of `actual` against `expected`, relative to the largest magnitude in `expected`:
 * max_i |a_i - e_i| / max_i |e_i|. Element-wise relative error is meaningless near zero
 * crossings, so this is the bound the tests state. Any NaN/Inf in `actual` is Infinity.
 */
export function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!Number.isFinite(a)) return Infinity;
    maxDiff = Math.max(maxDiff, Math.abs(a - e));
    maxRef = Math.max(maxRef, Math.abs(e));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

/** Asserts maxRelError(actual, expected) <= tol, with a message naming the first bad element. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = ''): void {
  const err = maxRelError(actual, expected);
  if (!(err <= tol)) {
    let worst = 0;
    let at = 0;
    for (let i = 0; i < expected.length; i++) {
      const d = Number.isFinite(actual[i]!) ? Math.abs(actual[i]! - expected[i]!) : Infinity;
      if (d > worst) {
        worst = d;
        at = i;
      }
    }
    expect.fail(
      `${what} relative error ${err.toExponential(3)} > ${tol.toExponential(1)} ` +
        `(worst at [${at}]: got ${actual[at]}, want ${expected[at]})`,
    );
  }
}
