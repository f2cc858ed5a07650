// Plain-TypeScript reference of masked softmax cross-entropy: full softmax per row in f64.

export interface CrossEntropyRefResult {
  /** (logsumexp - target logit) * mask, per row. */
  rowLoss: Float64Array;
  /** mask where argmax (lowest index on ties) == target, else 0. */
  rowCorrect: Float64Array;
  lossSum: number;
  tokenCount: number;
  correctCount: number;
  /** (softmax - onehot(target)) * mask * gradScale, [rows, V]. */
  dlogits: Float64Array;
}

export function crossEntropyRef(
  logits: ArrayLike<number>,
  rows: number,
  V: number,
  targets: ArrayLike<number>,
  mask: ArrayLike<number>,
  gradScale = 1,
): CrossEntropyRefResult {
  const rowLoss = new Float64Array(rows);
  const rowCorrect = new Float64Array(rows);
  const dlogits = new Float64Array(rows * V);
  let lossSum = 0;
  let tokenCount = 0;
  let correctCount = 0;
  for (let r = 0; r < rows; r++) {
    const w = mask[r]!;
    tokenCount += w;
    if (w === 0) continue;
    const t = targets[r]!;
    let max = -Infinity;
    let arg = 0;
    for (let j = 0; j < V; j++) {
      const x = logits[r * V + j]!;
      if (x > max) {
        max = x;
        arg = j;
      }
    }
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(logits[r * V + j]! - max);
    const lse = max + Math.log(s);
    rowLoss[r] = (lse - logits[r * V + t]!) * w;
    rowCorrect[r] = arg === t ? w : 0;
    lossSum += rowLoss[r]!;
    correctCount += rowCorrect[r]!;
    for (let j = 0; j < V; j++) {
      const prob = Math.exp(logits[r * V + j]! - lse);
      dlogits[r * V + j] = (prob - (j === t ? 1 : 0)) * w * gradScale;
    }
  }
  return { rowLoss, rowCorrect, lossSum, tokenCount, correctCount, dlogits };
}

/** Mean loss over trained tokens: the scalar the trainer minimises (0 when nothing is trained). */
export function crossEntropyMeanRef(
  logits: ArrayLike<number>,
  rows: number,
  V: number,
  targets: ArrayLike<number>,
  mask: ArrayLike<number>,
): number {
  const r = crossEntropyRef(logits, rows, V, targets, mask);
  return r.tokenCount === 0 ? 0 : r.lossSum / r.tokenCount;
}
