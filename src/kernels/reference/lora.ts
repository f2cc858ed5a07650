// Plain-TypeScript references of the LoRA kernels (shaders/lora.wgsl): f64 loops and f64 results
// (so finite differences of the forward can check the backward), no Node imports, so the
// in-browser self-test can use them. Layouts follow Hugging Face / PEFT:
//   x [T, K], W [N, K], A [r, K], B [N, r], u = x_d A^T [T, r], y [T, N].

import { fmix32 } from '../../util/random';

type Vec = ArrayLike<number>;

/** Dropout on the LoRA branch's input: element i is kept with probability 1 - p. */
export interface DropoutSpec {
  /** Any integer; taken modulo 2^32. Same seed, same mask. */
  seed: number;
  /** Drop probability, 0 <= p < 1. */
  p: number;
}

/** What the kernels need to regenerate a mask: hash key, keep threshold, f32 1/(1-p). */
export interface DropoutKey {
  key: number;
  threshold: number;
  invKeep: number;
}

export function dropoutHash(i: number, key: number): number {
  return fmix32((fmix32((i ^ key) >>> 0) + key) >>> 0);
}

/** Added to a seed before fmix32 makes its mask key. */
export const DROPOUT_KEY_OFFSET = 0x9e3779b9;

export function dropoutKey(spec: DropoutSpec): DropoutKey {
  const { seed, p } = spec;
  if (!(p >= 0 && p < 1)) throw new Error(`dropout p must be in [0, 1), got ${p}`);
  if (!Number.isInteger(seed)) throw new Error(`dropout seed must be an integer, got ${seed}`);
  return {
    key: fmix32((seed + DROPOUT_KEY_OFFSET) >>> 0),
    // hash >= threshold keeps; p = 0 gives threshold 0, which keeps everything.
    threshold: Math.min(Math.floor(p * 2 ** 32), 2 ** 32 - 1),
    invKeep: Math.fround(1 / (1 - p)),
  };
}

/** The seed of a mask the GPU completes per pass (see PassSeed in kernels/loraCommon.ts): seed + multiplier * passSeed, mod 2^32. */
export function passMaskSeed(seed: number, multiplier: number, passSeed: number): number {
  return (seed + Math.imul(multiplier, passSeed)) >>> 0;
}

/** 0 (dropped) or 1/(1-p) (kept) for flat element index i; 1 without dropout. */
export function dropoutFactor(i: number, k: DropoutKey | null): number {
  if (!k) return 1;
  return dropoutHash(i, k.key) >= k.threshold ? k.invKeep : 0;
}

/** xd = x * mask / (1 - p), rounded to f32 exactly as the GPU does. */
export function dropoutMaskRef(x: Vec, spec: DropoutSpec): Float32Array {
  const k = dropoutKey(spec);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.fround(x[i]! * dropoutFactor(i, k));
  return out;
}

/** PEFT's scaling: alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScale(alpha: number, r: number, rsLora = false): number {
  return rsLora ? alpha / Math.sqrt(r) : alpha / r;
}

/** u = x_d A^T: [T, r]. With `dropout`, x_d is regenerated from x; without, x is used as is. */
export function loraDownRef(
  x: Vec,
  a: Vec,
  T: number,
  K: number,
  r: number,
  dropout: DropoutSpec | null = null,
): Float64Array {
  const dk = dropout ? dropoutKey(dropout) : null;
  const u = new Float64Array(T * r);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[t * K + k]! * dropoutFactor(t * K + k, dk) * a[j * K + k]!;
      u[t * r + j] = s;
    }
  }
  return u;
}

/** y = x W^T + bias + scale * u B^T: [T, N]. For f16 weights pass W rounded through f16. */
export function loraLinearRef(
  x: Vec,
  w: Vec,
  bias: Vec | null,
  u: Vec,
  b: Vec,
  T: number,
  K: number,
  N: number,
  r: number,
  scale: number,
): Float64Array {
  const y = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let base = bias ? bias[n]! : 0;
      for (let k = 0; k < K; k++) base += x[t * K + k]! * w[n * K + k]!;
      let low = 0;
      for (let j = 0; j < r; j++) low += u[t * r + j]! * b[n * r + j]!;
      y[t * N + n] = base + scale * low;
    }
  }
  return y;
}

export interface LoraBackwardRefArgs {
  /** The layer input (raw: dropout, if any, is applied from `dropout`). */
  x: Vec;
  dy: Vec;
  /** u from the forward pass. */
  u: Vec;
  a: Vec;
  b: Vec;
  T: number;
  K: number;
  N: number;
  r: number;
  scale: number;
  dropout?: DropoutSpec | null;
}

export interface LoraBackwardRefResult {
  /** du = scale * dy B: [T, r]. */
  du: Float64Array;
  /** dL/dA = du^T x_d: [r, K]. */
  gradA: Float64Array;
  /** dL/dB = scale * dy^T u: [N, r]. */
  gradB: Float64Array;
  /** The low-rank path's part of dL/dx: mask/(1-p) * (du A): [T, K]. The base part dy W is not in it. */
  dx: Float64Array;
}

export function loraBackwardRef(args: LoraBackwardRefArgs): LoraBackwardRefResult {
  const { x, dy, u, a, b, T, K, N, r, scale } = args;
  const dk = args.dropout ? dropoutKey(args.dropout) : null;
  const du = new Float64Array(T * r);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += dy[t * N + n]! * b[n * r + j]!;
      du[t * r + j] = scale * s;
    }
  }
  const gradB = new Float64Array(N * r);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let t = 0; t < T; t++) s += dy[t * N + n]! * u[t * r + j]!;
      gradB[n * r + j] = scale * s;
    }
  }
  const gradA = new Float64Array(r * K);
  for (let j = 0; j < r; j++) {
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let t = 0; t < T; t++) s += du[t * r + j]! * x[t * K + k]! * dropoutFactor(t * K + k, dk);
      gradA[j * K + k] = s;
    }
  }
  const dx = new Float64Array(T * K);
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let j = 0; j < r; j++) s += du[t * r + j]! * a[j * K + k]!;
      dx[t * K + k] = s * dropoutFactor(t * K + k, dk);
    }
  }
  return { du, gradA, gradB, dx };
}
