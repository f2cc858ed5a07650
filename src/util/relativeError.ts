// The error measure every numeric bound in Whittle states: max error over max magnitude.

/**
 * Error of `actual` against `expected`, relative to the largest magnitude in `expected`:
 * max_i |a_i - e_i| / max_i |e_i|. Element-wise relative error is meaningless near zero
 * crossings, so this is the bound tests and the self-test state. NaN/Inf in `actual` -> Infinity.
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
