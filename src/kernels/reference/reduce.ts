// Plain-TypeScript references of the reduce kernels (f64 accumulation).

export function sumRef(x: ArrayLike<number>, n = x.length, squared = false): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += squared ? x[i]! * x[i]! : x[i]!;
  return s;
}

/** Sum of squares of one tensor: what sumSquaresPartials' slots add up to. */
export function sumSquaresRef(x: ArrayLike<number>): number {
  return sumRef(x, x.length, true);
}

/**
 * torch.nn.utils.clip_grad_norm_(grads, maxNorm) with norm_type 2: total norm over all tensors,
 * coefficient min(1, maxNorm / (norm + 1e-6)), every gradient multiplied by it (stored in f32).
 */
export function clipGradNormRef(
  grads: readonly Float32Array[],
  maxNorm: number,
): { norm: number; coef: number; clipped: Float32Array[] } {
  let sq = 0;
  for (const g of grads) sq += sumSquaresRef(g);
  const norm = Math.sqrt(sq);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  return { norm, coef, clipped: grads.map((g) => g.map((v) => v * Math.fround(coef))) };
}
