// Causal grouped-query attention in f32, flash-attention style: no T x T matrix is ever stored.
//
// Layouts (row-major, what the q/k/v projections produce):
//   q, out, dout, dq   [B, T, Hq, D]
//   k, v, dk, dv       [B, kv_cap, Hkv, D]   rows 0 .. past_len+T-1 are used (kv_cap = T in training)
//   lse, delta         [B, Hq, T]            lse in natural-log units
// Query t sits at position past_len + t and sees keys 0 ..= past_len + t. Query head h reads kv
// head h / (Hq / Hkv), as Hugging Face's repeat_kv does.
//
// Scores are kept in base 2: q (or k) is pre-multiplied by scale * log2(e) so the softmax uses
// exp2; lse is converted back to natural units on output.
//
// Design: one thread per query row (forward, dq, decode split) or per key row (dk/dv). The row's
// own vectors and accumulators live in private vec4 arrays; the other side is read straight from
// storage. The rows a workgroup walks are the same for all its threads (loop bounds are
// workgroup-uniform, causal masking is per thread), so those reads are broadcasts that the cache
// serves. There are no workgroup barriers: on software Vulkan (lavapipe, SwiftShader) barriers
// make shaders slow to compile and to run. For the same reason the head dim is a runtime
// parameter (one pipeline for every head size, loops not unrolled into huge code), the forward
// takes four keys per step and the backward and decode kernels one (smaller shaders; the
// forward's extra speed is worth its compile time, theirs was not).
// Trade-off on real GPUs: arrays indexed by a runtime bound live in local memory, not registers.
// The binding module prepends attentionCommon.wgsl (AttnParams, NEG, LOG2E, LN2).

// Threads per workgroup.
override ROWS: u32 = 64u;

const MAX_D4: u32 = 32u; // head dim <= 128, a multiple of 4
const LANE = vec4<u32>(0u, 1u, 2u, 3u);


struct AppendParams {
  n: u32,          // B * rows * Hkv * D elements to copy
  row_stride: u32,
  new_rows: u32,   // rows appended per sequence
  row_elems: u32,  // Hkv * D
  kv_cap: u32,
  pos: u32,        // first cache row written
  live: u32,       // 1: the first row written is live_pos[0] instead of pos
}

// Entry points share binding numbers with different variables; each uses only its own set.
// forward: p, q, k, v, out, lse
@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<storage, read> q_in: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k_in: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v_in: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> o_out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lse_out: array<f32>;
// backward dq: p, q, k, v, dout, lse, out, delta (written), dq
@group(0) @binding(4) var<storage, read> do_in: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> lse_in: array<f32>;
@group(0) @binding(6) var<storage, read> o_in: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> delta_out: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq_out: array<vec4<f32>>;
// backward dk/dv (after dq): p, q, k, v, dout, lse, delta, dk, dv
@group(0) @binding(6) var<storage, read> delta_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk_out: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dv_out: array<vec4<f32>>;
// decode partial: dcp, q, k cache, v cache, part, live_pos.  combine: dcp, part, out, live_pos_c
// (live_pos: u32 [B] of the newest cache row; without `live` any buffer is bound and its entry 0 ignored)
@group(0) @binding(0) var<uniform> dcp: DecodeParams;
@group(0) @binding(4) var<storage, read_write> part_out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> live_pos: array<u32>;
@group(0) @binding(1) var<storage, read> part_in: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dec_out: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> live_pos_c: array<u32>;
// append rows to a kv cache: ap, k_new, v_new, k_cache, v_cache, live_pos
@group(0) @binding(0) var<uniform> ap: AppendParams;
@group(0) @binding(1) var<storage, read> k_new: array<f32>;
@group(0) @binding(2) var<storage, read> v_new: array<f32>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<f32>;

// Index (in vec4s) of a head row.
fn q_row(b: u32, t: u32, h: u32) -> u32 {
  return ((b * p.seq + t) * p.n_q_heads + h) * (p.head_dim / 4u);
}
fn kv_row(b: u32, j: u32, hk: u32) -> u32 {
  return ((b * p.kv_cap + j) * p.n_kv_heads + hk) * (p.head_dim / 4u);
}
fn hmax(x: vec4<f32>) -> f32 {
  return max(max(x.x, x.y), max(x.z, x.w));
}
fn hsum(x: vec4<f32>) -> f32 {
  return (x.x + x.y) + (x.z + x.w);
}

// A thread's query row in the forward and dq grids (query block, q head, batch).
struct QueryRow {
  t: u32,          // query row; threads past the last one return
  b: u32,
  h: u32,
  hk: u32,         // kv head
  nd4: u32,        // vec4s per head row
  last: u32,       // the last key this row sees
  block_last: u32, // the last key any row of the workgroup sees
  qbase: u32,      // vec4 index of the row in q, out, dout and dq
}

fn query_row(wid: vec3<u32>, lid: u32) -> QueryRow {
  let t = wid.x * ROWS + lid;
  let h = wid.y;
  // The workgroup walks keys up to its last row's last key, all threads in lockstep: the row
  // index is then workgroup-uniform, loads are broadcasts, and no thread diverges.
  let block_last = p.past_len + min(wid.x * ROWS + ROWS, p.seq) - 1u;
  let hk = h / (p.n_q_heads / p.n_kv_heads);
  return QueryRow(t, wid.z, h, hk, p.head_dim / 4u, p.past_len + t, block_last, q_row(wid.z, t, h));
}

// Grid (query block, q head, batch); one thread per query row, four keys per step.
@compute @workgroup_size(ROWS)
fn attn_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = query_row(wid, lid);
  if (row.t >= p.seq) { return; }
  let c2 = p.scale * LOG2E;
  var qr: array<vec4<f32>, MAX_D4>;
  var acc: array<vec4<f32>, MAX_D4>;
  for (var c = 0u; c < row.nd4; c++) { qr[c] = q_in[row.qbase + c] * c2; }
  var m = NEG;
  var l = 0.0;
  for (var k0 = 0u; k0 <= row.block_last; k0 += 4u) {
    // Keys past `last` are masked out of the softmax (past block_last they re-read a valid row).
    let r0 = kv_row(row.b, k0, row.hk);
    let r1 = kv_row(row.b, min(k0 + 1u, row.block_last), row.hk);
    let r2 = kv_row(row.b, min(k0 + 2u, row.block_last), row.hk);
    let r3 = kv_row(row.b, min(k0 + 3u, row.block_last), row.hk);
    var s = vec4<f32>(0.0);
    for (var c = 0u; c < row.nd4; c++) {
      let qc = qr[c];
      s += vec4<f32>(dot(qc, k_in[r0 + c]), dot(qc, k_in[r1 + c]), dot(qc, k_in[r2 + c]), dot(qc, k_in[r3 + c]));
    }
    s = select(vec4<f32>(NEG), s, vec4<u32>(k0) + LANE <= vec4<u32>(row.last));
    // Key 0 is in the first step and every row sees it, so m is a real score from then on.
    let m_new = max(m, hmax(s));
    let alpha = exp2(m - m_new);
    let pr = exp2(s - vec4<f32>(m_new));
    m = m_new;
    l = l * alpha + hsum(pr);
    for (var c = 0u; c < row.nd4; c++) {
      acc[c] = acc[c] * alpha + pr.x * v_in[r0 + c] + pr.y * v_in[r1 + c] + pr.z * v_in[r2 + c] +
        pr.w * v_in[r3 + c];
    }
  }
  let inv = 1.0 / l; // l >= 1: the row maximum contributes exp2(0)
  for (var c = 0u; c < row.nd4; c++) { o_out[row.qbase + c] = acc[c] * inv; }
  lse_out[(row.b * p.n_q_heads + row.h) * p.seq + row.t] = (m + log2(l)) * LN2;
}

// dq: grid (query block, q head, batch), one thread per query row. P is recomputed from lse,
// dS = P * (dP - delta), dq = scale * sum_j dS_j k_j, where delta = dout . out (= sum_j P dP) is
// computed here and also stored for the dk/dv kernel that runs next.
@compute @workgroup_size(ROWS)
fn attn_bwd_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = query_row(wid, lid);
  if (row.t >= p.seq) { return; }
  let stat = (row.b * p.n_q_heads + row.h) * p.seq + row.t;
  let l2 = lse_in[stat] * LOG2E;
  let c2 = p.scale * LOG2E;
  var qr: array<vec4<f32>, MAX_D4>;
  var dor: array<vec4<f32>, MAX_D4>;
  var acc: array<vec4<f32>, MAX_D4>;
  var delta = 0.0;
  for (var c = 0u; c < row.nd4; c++) {
    qr[c] = q_in[row.qbase + c] * c2;
    dor[c] = do_in[row.qbase + c];
    delta += dot(dor[c], o_in[row.qbase + c]);
  }
  delta_out[stat] = delta;
  for (var kj = 0u; kj <= row.block_last; kj++) {
    let r = kv_row(row.b, kj, row.hk);
    var sj = 0.0;
    var dpj = 0.0;
    for (var c = 0u; c < row.nd4; c++) {
      sj += dot(qr[c], k_in[r + c]);
      dpj += dot(dor[c], v_in[r + c]);
    }
    let pj = select(0.0, exp2(sj - l2), kj <= row.last);
    let ds = pj * (dpj - delta);
    for (var c = 0u; c < row.nd4; c++) { acc[c] += ds * k_in[r + c]; }
  }
  for (var c = 0u; c < row.nd4; c++) { dq_out[row.qbase + c] = acc[c] * p.scale; }
}

// dk, dv: grid (key block, kv head, batch), one thread per key row. Each thread loops over every
// query head sharing its kv head and every query that sees its key, so the GQA sum happens in
// registers in a fixed order: deterministic, and no float atomics needed.
@compute @workgroup_size(ROWS)
fn attn_bwd_dkdv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = wid.x * ROWS + lid;
  let kv_len = p.past_len + p.seq;
  if (j >= kv_len) { return; }
  let b = wid.z;
  let hk = wid.y;
  let group = p.n_q_heads / p.n_kv_heads;
  let nd4 = p.head_dim / 4u;
  let kbase = kv_row(b, j, hk);
  let c2 = p.scale * LOG2E;
  let last = p.seq - 1u;

  var kr: array<vec4<f32>, MAX_D4>;
  var vr: array<vec4<f32>, MAX_D4>;
  var dk: array<vec4<f32>, MAX_D4>;
  var dv: array<vec4<f32>, MAX_D4>;
  for (var c = 0u; c < nd4; c++) {
    kr[c] = k_in[kbase + c] * c2;
    vr[c] = v_in[kbase + c];
    dk[c] = vec4<f32>(0.0);
    dv[c] = vec4<f32>(0.0);
  }
  // Query t sees key j when past_len + t >= j. The loop starts at the first query that sees the
  // block's first key, the same for all threads (uniform rows, as in attn_fwd); earlier
  // queries are masked per thread.
  let j0 = wid.x * ROWS;
  let first = select(0u, j0 - p.past_len, j0 > p.past_len);
  for (var g = 0u; g < group; g++) {
    let h = hk * group + g;
    let stat = (b * p.n_q_heads + h) * p.seq;
    for (var i = first; i <= last; i++) {
      let r = q_row(b, i, h);
      var si = 0.0;
      var dpi = 0.0;
      for (var c = 0u; c < nd4; c++) {
        si += dot(kr[c], q_in[r + c]);
        dpi += dot(vr[c], do_in[r + c]);
      }
      let pij = select(0.0, exp2(si - lse_in[stat + i] * LOG2E), j <= p.past_len + i);
      let ds = pij * (dpi - delta_in[stat + i]);
      for (var c = 0u; c < nd4; c++) {
        dv[c] += pij * do_in[r + c];
        dk[c] += ds * q_in[r + c];
      }
    }
  }
  for (var c = 0u; c < nd4; c++) {
    dk_out[kbase + c] = dk[c] * p.scale;
    dv_out[kbase + c] = dv[c];
  }
}


// Decode, step 1 (split-K, flash-decoding): grid (split block, q head, batch); one thread per
// split runs an online softmax over its `chunk` cached keys and writes the unnormalised result:
// part[b, h, split] = (acc[0..D), running max (base 2), running sum).
@compute @workgroup_size(ROWS)
fn attn_decode_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let ds = decode_shape(dcp, live_pos[0]);
  let split = wid.x * ROWS + lid;
  if (split >= ds.n_splits) { return; }
  let h = wid.y;
  let b = wid.z;
  let hk = h / (dcp.n_q_heads / dcp.n_kv_heads);
  let nd4 = dcp.head_dim / 4u;
  let qbase = (b * dcp.n_q_heads + h) * nd4;
  let c2 = dcp.scale * LOG2E;
  let first = split * ds.chunk;
  let last = min(first + ds.chunk, ds.kv_len) - 1u;
  let row_stride = dcp.n_kv_heads * nd4;
  let seq_base = (b * dcp.kv_cap * dcp.n_kv_heads + hk) * nd4;

  var qr: array<vec4<f32>, MAX_D4>;
  var acc: array<vec4<f32>, MAX_D4>;
  for (var c = 0u; c < nd4; c++) {
    qr[c] = q_in[qbase + c] * c2;
    acc[c] = vec4<f32>(0.0);
  }
  var m = NEG;
  var l = 0.0;
  // One key per step: decode reads little and runs once per token, so the smaller shader (fast
  // to compile on software Vulkan) wins over the forward's four-key steps.
  for (var kj = first; kj <= last; kj++) {
    let r = seq_base + kj * row_stride;
    var sj = 0.0;
    for (var c = 0u; c < nd4; c++) { sj += dot(qr[c], k_in[r + c]); }
    let m_new = max(m, sj);
    let alpha = exp2(m - m_new);
    let pj = exp2(sj - m_new);
    m = m_new;
    l = l * alpha + pj;
    for (var c = 0u; c < nd4; c++) { acc[c] = acc[c] * alpha + pj * v_in[r + c]; }
  }
  let base = ((b * dcp.n_q_heads + h) * ds.n_splits + split) * (nd4 + 1u);
  for (var c = 0u; c < nd4; c++) { part_out[base + c] = acc[c]; }
  part_out[base + nd4] = vec4<f32>(m, l, 0.0, 0.0);
}

// Decode, step 2: grid (q head, batch), one thread per vec4 of the head row, merging the
// splits' partial softmaxes.
@compute @workgroup_size(ROWS)
fn attn_decode_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n_splits = decode_shape(dcp, live_pos_c[0]).n_splits;
  let h = wid.x;
  let b = wid.y;
  let nd4 = dcp.head_dim / 4u;
  let stride = nd4 + 1u;
  let base0 = (b * dcp.n_q_heads + h) * n_splits * stride;
  var m = NEG;
  for (var s = 0u; s < n_splits; s++) { m = max(m, part_in[base0 + s * stride + nd4].x); }
  for (var c = lid; c < nd4; c += ROWS) {
    var den = 0.0;
    var num = vec4<f32>(0.0);
    for (var s = 0u; s < n_splits; s++) {
      let o = base0 + s * stride;
      let ml = part_in[o + nd4];
      let w = exp2(ml.x - m);
      den += ml.y * w;
      num += w * part_in[o + c];
    }
    dec_out[(b * dcp.n_q_heads + h) * nd4 + c] = num / den;
  }
}

// Copies new k/v rows [B, new_rows, Hkv, D] into caches [B, kv_cap, Hkv, D] at row `pos` (live:
// live_pos[0]).
@compute @workgroup_size(256)
fn attn_kv_append(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * ap.row_stride + gid.x;
  if (i >= ap.n) { return; }
  let per_seq = ap.new_rows * ap.row_elems;
  let b = i / per_seq;
  let pos = select(ap.pos, live_pos[0], ap.live != 0u);
  let dst = (b * ap.kv_cap + pos) * ap.row_elems + i % per_seq;
  k_cache[dst] = k_new[i];
  v_cache[dst] = v_new[i];
}
