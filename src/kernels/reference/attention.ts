/**
 * Plain-TypeScript references for src/kernels/attention.ts: naive causal grouped-query attention
 * with the whole score row materialised, in f64. Same layouts as the kernels:
 * q/out/dout [B, T, Hq, D], k/v [B, kvCapacity, Hkv, D], lse [B, Hq, T].
 */

import type { AttentionDims } from '../attention';

/** The kernels' dimensions, plus the k/v cache geometry of AttentionForwardArgs. */
export interface AttentionRefDims extends AttentionDims {
  /** Keys before the first query; query t sits at position pastLen + t. Default 0. */
  pastLen?: number;
  /** Rows per sequence in k/v. Default pastLen + T. */
  kvCapacity?: number;
}

interface Geometry {
  B: number;
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  scale: number;
  pastLen: number;
  cap: number;
  group: number;
}

function geometry(d: AttentionRefDims): Geometry {
  const pastLen = d.pastLen ?? 0;
  return {
    B: d.B,
    T: d.T,
    Hq: d.Hq,
    Hkv: d.Hkv,
    D: d.D,
    scale: d.scale ?? 1 / Math.sqrt(d.D),
    pastLen,
    cap: d.kvCapacity ?? pastLen + d.T,
    group: d.Hq / d.Hkv,
  };
}

const qIndex = (g: Geometry, b: number, t: number, h: number) => ((b * g.T + t) * g.Hq + h) * g.D;
const kvIndex = (g: Geometry, b: number, j: number, hk: number) => ((b * g.cap + j) * g.Hkv + hk) * g.D;

/** Softmax probabilities of one query row over keys 0 ..= pastLen + t, and its logsumexp. */
function probabilities(g: Geometry, q: ArrayLike<number>, k: ArrayLike<number>, b: number, t: number, h: number) {
  const hk = Math.floor(h / g.group);
  const nKeys = g.pastLen + t + 1;
  const s = new Float64Array(nKeys);
  const qo = qIndex(g, b, t, h);
  let max = -Infinity;
  for (let j = 0; j < nKeys; j++) {
    const ko = kvIndex(g, b, j, hk);
    let dot = 0;
    for (let d = 0; d < g.D; d++) dot += q[qo + d]! * k[ko + d]!;
    s[j] = dot * g.scale;
    max = Math.max(max, s[j]!);
  }
  let sum = 0;
  for (let j = 0; j < nKeys; j++) sum += Math.exp(s[j]! - max);
  const p = s.map((x) => Math.exp(x - max) / sum);
  return { p, lse: max + Math.log(sum), hk, qo };
}

/** out = softmax(scale q k^T + causal mask) v; lse[b, h, t] = logsumexp of the scaled scores. */
export function attentionForwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: AttentionRefDims,
): { out: Float64Array; lse: Float64Array } {
  const g = geometry(dims);
  const out = new Float64Array(g.B * g.T * g.Hq * g.D);
  const lse = new Float64Array(g.B * g.Hq * g.T);
  for (let b = 0; b < g.B; b++)
    for (let t = 0; t < g.T; t++)
      for (let h = 0; h < g.Hq; h++) {
        const { p, lse: l, hk, qo } = probabilities(g, q, k, b, t, h);
        lse[(b * g.Hq + h) * g.T + t] = l;
        for (let j = 0; j < p.length; j++) {
          const vo = kvIndex(g, b, j, hk);
          for (let d = 0; d < g.D; d++) out[qo + d] = out[qo + d]! + p[j]! * v[vo + d]!;
        }
      }
  return { out, lse };
}

/**
 * Gradients of sum(dout * out) with respect to q, k, v, derived by hand:
 * dV_j += P_ij dO_i;  dP_ij = dO_i . V_j;  dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij');
 * dQ_i += scale dS_ij K_j;  dK_j += scale dS_ij Q_i. (sum_j' P dP equals dO_i . O_i, the
 * `delta` the GPU kernel precomputes.) dk/dv rows past pastLen + T stay 0.
 */
export function attentionBackwardRef(
  dout: ArrayLike<number>,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: AttentionRefDims,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const g = geometry(dims);
  const dq = new Float64Array(g.B * g.T * g.Hq * g.D);
  const dk = new Float64Array(g.B * g.cap * g.Hkv * g.D);
  const dv = new Float64Array(dk.length);
  for (let b = 0; b < g.B; b++)
    for (let t = 0; t < g.T; t++)
      for (let h = 0; h < g.Hq; h++) {
        const { p, hk, qo } = probabilities(g, q, k, b, t, h);
        const dp = new Float64Array(p.length);
        let rowDot = 0;
        for (let j = 0; j < p.length; j++) {
          const vo = kvIndex(g, b, j, hk);
          let s = 0;
          for (let d = 0; d < g.D; d++) {
            s += dout[qo + d]! * v[vo + d]!;
            dv[vo + d] = dv[vo + d]! + p[j]! * dout[qo + d]!;
          }
          dp[j] = s;
          rowDot += p[j]! * s;
        }
        for (let j = 0; j < p.length; j++) {
          const ds = p[j]! * (dp[j]! - rowDot) * g.scale;
          const ko = kvIndex(g, b, j, hk);
          for (let d = 0; d < g.D; d++) {
            dq[qo + d] = dq[qo + d]! + ds * k[ko + d]!;
            dk[ko + d] = dk[ko + d]! + ds * q[qo + d]!;
          }
        }
      }
  return { dq, dk, dv };
}

/**
 * Single-token attention over a cache: q [B, 1, Hq, D] at position kvLen - 1 over cache rows
 * 0 .. kvLen-1 of [B, capacity, Hkv, D]. The same as the forward with pastLen = kvLen - 1.
 */
export function attentionDecodeRef(
  q: ArrayLike<number>,
  kCache: ArrayLike<number>,
  vCache: ArrayLike<number>,
  dims: { B: number; Hq: number; Hkv: number; D: number; capacity: number; kvLen: number; scale?: number },
): Float64Array {
  const { B, Hq, Hkv, D, capacity, kvLen, scale } = dims;
  return attentionForwardRef(q, kCache, vCache, { B, T: 1, Hq, Hkv, D, scale, pastLen: kvLen - 1, kvCapacity: capacity })
    .out;
}

/** The caches after writing rows [B, rows, Hkv, D] at row `pos` of [B, capacity, Hkv, D]. */
export function appendKvRef(
  kNew: ArrayLike<number>,
  vNew: ArrayLike<number>,
  kCache: Float32Array,
  vCache: Float32Array,
  dims: { B: number; rows: number; Hkv: number; D: number; capacity: number; pos: number },
): { kCache: Float32Array; vCache: Float32Array } {
  const k = kCache.slice();
  const v = vCache.slice();
  const rowElems = dims.Hkv * dims.D;
  for (let b = 0; b < dims.B; b++)
    for (let i = 0; i < dims.rows * rowElems; i++) {
      const src = b * dims.rows * rowElems + i;
      const dst = (b * dims.capacity + dims.pos) * rowElems + i;
      k[dst] = kNew[src]!;
      v[dst] = vNew[src]!;
    }
  return { kCache: k, vCache: v };
}
