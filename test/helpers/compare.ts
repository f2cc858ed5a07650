import { expect } from 'vitest';

import { maxRelError } from '../../src/selftest/compare';

export { maxRelError };

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
