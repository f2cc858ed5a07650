// Plain-TypeScript references of the sampling kernels (f64), with the same conventions:
// ties go to the lower index, candidates are ordered by (value desc, index asc), top-k off means
// the 256 largest logits with top-p probabilities from the full-vocabulary softmax.

export const SAMPLE_REF_MAX_CANDIDATES = 256;

export function argmaxRowRef(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

export function argmaxRef(logits: ArrayLike<number>, rows: number, V: number): Uint32Array {
  const out = new Uint32Array(rows);
  for (let r = 0; r < rows; r++) out[r] = argmaxRowRef(Array.from({ length: V }, (_, j) => logits[r * V + j]!));
  return out;
}

/** HF RepetitionPenaltyLogitsProcessor: gather the seen ids' logits, penalise, scatter back. */
export function repetitionPenaltyRef(
  logits: Float32Array,
  rows: number,
  V: number,
  ids: ArrayLike<number>,
  idsPerRow: number,
  penalty: number,
): Float32Array {
  const out = logits.slice();
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < idsPerRow; j++) {
      const id = ids[r * idsPerRow + j]!;
      if (id >= V) continue; // padding
      const x = logits[r * V + id]!; // from the input: a repeated id is penalised once
      out[r * V + id] = x < 0 ? x * penalty : x / penalty;
    }
  }
  return out;
}

export interface SampleRefSettings {
  temperature: number;
  topK: number;
  topP: number;
}

export interface SampleRowRefResult {
  id: number;
  /** Ids that may be drawn at all (the kept set), in rank order (index order for a full draw). */
  allowed: number[];
  /** Distance of the top-p cut's decisive sum from top_p, in probability units (Infinity if none). */
  topPMargin: number;
  /** Distance of u from the nearest boundary of the cumulative distribution used for the draw. */
  drawMargin: number;
}

function drawFrom(weights: readonly number[], u: number): { pick: number; margin: number } {
  const total = weights.reduce((a, b) => a + b, 0);
  const target = u * total;
  let c = 0;
  let pick = -1;
  let margin = Infinity;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i]! <= 0) continue;
    c += weights[i]!;
    margin = Math.min(margin, Math.abs(c - target) / total);
    if (pick < 0 && c > target) pick = i;
  }
  if (pick < 0) for (let i = weights.length - 1; i >= 0 && pick < 0; i--) if (weights[i]! > 0) pick = i;
  return { pick, margin };
}

/** The token sampleRows picks for one row with uniform number u. */
export function sampleRowRef(row: ArrayLike<number>, s: SampleRefSettings, u: number): SampleRowRefResult {
  const V = row.length;
  if (s.temperature <= 0 || s.topK === 1) {
    const id = argmaxRowRef(row);
    return { id, allowed: [id], topPMargin: Infinity, drawMargin: Infinity };
  }
  const t = s.temperature;
  let max = -Infinity;
  for (let i = 0; i < V; i++) max = Math.max(max, row[i]! / t);
  if (s.topK === 0 && s.topP >= 1) {
    const w = Array.from({ length: V }, (_, i) => Math.exp(row[i]! / t - max));
    const { pick, margin } = drawFrom(w, u);
    return { id: pick, allowed: w.map((_, i) => i).filter((i) => w[i]! > 0), topPMargin: Infinity, drawMargin: margin };
  }
  const k = Math.min(s.topK === 0 ? SAMPLE_REF_MAX_CANDIDATES : s.topK, V);
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => row[b]! - row[a]! || a - b);
  const cand = order.slice(0, k);
  const w = cand.map((i) => Math.exp(row[i]! / t - max));
  let z = w.reduce((a, b) => a + b, 0);
  if (s.topK === 0) {
    z = 0;
    for (let i = 0; i < V; i++) z += Math.exp(row[i]! / t - max);
  }
  let keep = k;
  let topPMargin = Infinity;
  if (s.topP < 1) {
    keep = 1;
    let above = w[0]!;
    for (;;) {
      topPMargin = Math.min(topPMargin, Math.abs(above / z - s.topP));
      if (keep >= k || !(above < s.topP * z)) break;
      above += w[keep]!;
      keep++;
    }
  }
  const kept = w.slice(0, keep);
  const { pick, margin } = drawFrom(kept, u);
  return { id: cand[pick]!, allowed: cand.slice(0, keep), topPMargin, drawMargin: margin };
}

export function sampleRef(
  logits: ArrayLike<number>,
  rows: number,
  V: number,
  s: SampleRefSettings,
  random: ArrayLike<number>,
): SampleRowRefResult[] {
  const out: SampleRowRefResult[] = [];
  for (let r = 0; r < rows; r++) {
    const row = Array.from({ length: V }, (_, j) => logits[r * V + j]!);
    out.push(sampleRowRef(row, s, random[r]!));
  }
  return out;
}
