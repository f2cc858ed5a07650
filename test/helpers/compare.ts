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

/**
 * Central differences of loss() with respect to each element of v (changed in place and
 * restored): the numeric gradient the plain-TypeScript backward references are checked against.
 */
export function numericGrad(v: Float64Array, loss: () => number, h = 1e-5): Float64Array {
  const g = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i]!;
    v[i] = keep + h;
    const up = loss();
    v[i] = keep - h;
    const down = loss();
    v[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}
