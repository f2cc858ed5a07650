// Plain-TypeScript references for src/kernels/activation.ts (f64 arithmetic).
import type { ActivationKind } from '../activation';

type Vec = ArrayLike<number>;

/**
 * erf to ~1e-15: erf(x) = 2/sqrt(pi) exp(-x²) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)). All terms are
 * positive, so there is no cancellation; beyond |x| = 6, erf is 1 to double precision.
 */
export function erfRef(x: number): number {
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x);
  let term = a;
  let sum = a;
  for (let n = 1; n < 500; n++) {
    term *= (2 * a * a) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const K = Math.sqrt(2 / Math.PI);
const A = 0.044715;

export function actRef(kind: ActivationKind, x: number): number {
  switch (kind) {
    case 'silu':
      return x * sigmoid(x);
    case 'gelu_tanh':
      return 0.5 * x * (1 + Math.tanh(K * (x + A * x ** 3)));
    case 'gelu_erf':
      return 0.5 * x * (1 + erfRef(x / Math.SQRT2));
  }
}

export function actGradRef(kind: ActivationKind, x: number): number {
  switch (kind) {
    case 'silu': {
      const s = sigmoid(x);
      return s * (1 + x * (1 - s));
    }
    case 'gelu_tanh': {
      const t = Math.tanh(K * (x + A * x ** 3));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * K * (1 + 3 * A * x * x);
    }
    case 'gelu_erf':
      return 0.5 * (1 + erfRef(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
  }
}

export function activationRef(kind: ActivationKind, x: Vec): Float64Array {
  return Float64Array.from(x, (v) => actRef(kind, v));
}

export function activationBackwardRef(kind: ActivationKind, x: Vec, dOut: Vec): Float64Array {
  return Float64Array.from(x, (v, i) => dOut[i]! * actGradRef(kind, v));
}

/** h = silu(gate) * up over contiguous arrays of equal length. */
export function swigluRef(gate: Vec, up: Vec): Float64Array {
  return Float64Array.from(gate, (g, i) => actRef('silu', g) * up[i]!);
}

export function swigluBackwardRef(gate: Vec, up: Vec, dOut: Vec): { dGate: Float64Array; dUp: Float64Array } {
  const dGate = Float64Array.from(gate, (g, i) => dOut[i]! * up[i]! * actGradRef('silu', g));
  const dUp = Float64Array.from(gate, (g, i) => dOut[i]! * actRef('silu', g));
  return { dGate, dUp };
}
