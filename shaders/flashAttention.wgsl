// Causal grouped-query attention for real GPUs (the 'gpu' kernel plan), FlashAttention-2 style:
// K/V (or Q/dO) tiles staged in workgroup memory, several lanes per row, online softmax.
// Same layouts, parameters and results as attention.wgsl (read its header): q/out/dout/dq
// [B, T, Hq, D], k/v/dk/dv [B, kv_cap, Hkv, D], lse/delta [B, Hq, T], scores in base 2.
//
// The binding module prepends the shape constants, fixed per head dim so that every per-row
// array has a constant size and lives in registers:
//   D4     vec4s per head row (head dim / 4)
//   LANES  threads per row; lane x owns the vec4 columns x, x + LANES, ... of its accumulators
//   ROWS   rows per workgroup (64 / LANES)
//   TILE   keys (forward, dq) or queries (dk/dv) staged per step
// Every workgroup has 64 threads; thread i works on row i / LANES as lane i % LANES. Rows past
// the end still run (clamped to a valid row) so that every thread reaches every barrier; they
// write nothing. All sums run in a fixed order: results are deterministic, no atomics.

const THREADS: u32 = 64u;
const DL: u32 = D4 / LANES; // accumulator vec4s per lane
const NEG: f32 = -1.0e30; // a finite "minus infinity", as in attention.wgsl
const LOG2E: f32 = 1.4426950408889634;
const LN2: f32 = 0.6931471805599453;
const DEC_GROUPS: u32 = THREADS / D4; // decode: key groups, each D4 threads wide

struct AttnParams {
  batch: u32,
  seq: u32,
  n_q_heads: u32,
  n_kv_heads: u32,
  kv_cap: u32,
  past_len: u32,
  head_dim: u32,
  scale: f32,
}

struct DecodeParams {
  batch: u32,
  n_q_heads: u32,
  n_kv_heads: u32,
  kv_cap: u32,
  kv_len: u32,
  chunk: u32,
  n_splits: u32,
  head_dim: u32,
  scale: f32,
  live: u32,       // as in attention.wgsl: 1: kv_len, chunk, n_splits come from live_pos[0]
  max_splits: u32,
  min_chunk: u32,
}

// Bindings as in attention.wgsl. forward: p, q, k, v, out, lse
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
// backward dk/dv: p, q, k, v, dout, lse, delta, dk, dv
@group(0) @binding(6) var<storage, read> delta_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk_out: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dv_out: array<vec4<f32>>;
// decode partial: dcp, q, k cache, v cache, part, live_pos
@group(0) @binding(0) var<uniform> dcp: DecodeParams;
@group(0) @binding(4) var<storage, read_write> part_out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> live_pos: array<u32>;

// Staged tiles: K and V (forward, dq) or Q and dO (dk/dv), TILE rows of D4 vec4s each.
var<workgroup> tile_a: array<vec4<f32>, TILE * D4>;
var<workgroup> tile_b: array<vec4<f32>, TILE * D4>;
// Per (row, staged row): scores (forward), dS (dq), P and dS (dk/dv).
var<workgroup> row_x: array<f32, ROWS * TILE>;
var<workgroup> row_y: array<f32, ROWS * TILE>;
// dk/dv: the staged queries' lse (base 2) and delta.
var<workgroup> stat_a: array<f32, TILE>;
var<workgroup> stat_b: array<f32, TILE>;
// decode: q, the step's scores, and the key groups' partial results.
var<workgroup> dec_q: array<vec4<f32>, D4>;
var<workgroup> dec_s: array<f32, THREADS>;
var<workgroup> dec_acc: array<vec4<f32>, THREADS>;
var<workgroup> dec_ml: array<vec2<f32>, THREADS>;

fn q_row(b: u32, t: u32, h: u32) -> u32 {
  return ((b * p.seq + t) * p.n_q_heads + h) * D4;
}
fn kv_row(b: u32, j: u32, hk: u32) -> u32 {
  return ((b * p.kv_cap + j) * p.n_kv_heads + hk) * D4;
}

// Stages keys k0 .. k0+TILE-1 of (b, hk) (clamped to `last_key`; the extra rows are masked).
fn stage_kv(b: u32, hk: u32, k0: u32, last_key: u32, lid: u32) {
  for (var i = lid; i < TILE * D4; i += THREADS) {
    let src = kv_row(b, min(k0 + i / D4, last_key), hk) + i % D4;
    tile_a[i] = k_in[src];
    tile_b[i] = v_in[src];
  }
}

// Grid (query block of ROWS, q head, batch). Each lane scores TILE / LANES keys per step, then
// every lane of a row reads the row's TILE scores back, so all lanes share one running max and
// sum (no cross-lane reduction), and each updates its own columns of the output.
@compute @workgroup_size(THREADS)
fn flash_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = lid / LANES;
  let lane = lid % LANES;
  let b = wid.z;
  let h = wid.y;
  let hk = h / (p.n_q_heads / p.n_kv_heads);
  let row0 = wid.x * ROWS;
  let t = min(row0 + r, p.seq - 1u);
  let last = p.past_len + t;
  let block_last = p.past_len + min(row0 + ROWS, p.seq) - 1u; // workgroup-uniform loop bound
  let qbase = q_row(b, t, h);
  let c2 = p.scale * LOG2E;
  var qr: array<vec4<f32>, D4>;
  for (var c = 0u; c < D4; c++) { qr[c] = q_in[qbase + c] * c2; }
  var acc: array<vec4<f32>, DL>;
  var m = NEG;
  var l = 0.0;
  for (var k0 = 0u; k0 <= block_last; k0 += TILE) {
    stage_kv(b, hk, k0, block_last, lid);
    workgroupBarrier();
    for (var jj = lane; jj < TILE; jj += LANES) {
      var s = 0.0;
      for (var c = 0u; c < D4; c++) { s += dot(qr[c], tile_a[jj * D4 + c]); }
      row_x[r * TILE + jj] = select(NEG, s, k0 + jj <= last);
    }
    workgroupBarrier();
    // Key 0 is in the first tile and every row sees it, so m is a real score from then on and
    // masked keys get exp2(NEG - m) = 0.
    var mt = NEG;
    for (var jj = 0u; jj < TILE; jj++) { mt = max(mt, row_x[r * TILE + jj]); }
    let m_new = max(m, mt);
    let alpha = exp2(m - m_new);
    m = m_new;
    l *= alpha;
    for (var x = 0u; x < DL; x++) { acc[x] *= alpha; }
    for (var jj = 0u; jj < TILE; jj++) {
      let pj = exp2(row_x[r * TILE + jj] - m_new);
      l += pj;
      for (var x = 0u; x < DL; x++) { acc[x] += pj * tile_b[jj * D4 + lane + x * LANES]; }
    }
    workgroupBarrier();
  }
  if (row0 + r < p.seq) {
    let inv = 1.0 / l;
    for (var x = 0u; x < DL; x++) { o_out[qbase + lane + x * LANES] = acc[x] * inv; }
    if (lane == 0u) { lse_out[(b * p.n_q_heads + h) * p.seq + t] = (m + log2(l)) * LN2; }
  }
}

// dq: grid (query block, q head, batch). P is recomputed from lse; each lane computes dS for
// TILE / LANES keys per step into workgroup memory, then accumulates its columns of dS K.
// delta = dout . out is computed here and stored for the dk/dv kernel.
@compute @workgroup_size(THREADS)
fn flash_bwd_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = lid / LANES;
  let lane = lid % LANES;
  let b = wid.z;
  let h = wid.y;
  let hk = h / (p.n_q_heads / p.n_kv_heads);
  let row0 = wid.x * ROWS;
  let t = min(row0 + r, p.seq - 1u);
  let last = p.past_len + t;
  let block_last = p.past_len + min(row0 + ROWS, p.seq) - 1u;
  let qbase = q_row(b, t, h);
  let row = (b * p.n_q_heads + h) * p.seq + t;
  let l2 = lse_in[row] * LOG2E;
  let c2 = p.scale * LOG2E;
  var qr: array<vec4<f32>, D4>;
  var dor: array<vec4<f32>, D4>;
  var delta = 0.0;
  for (var c = 0u; c < D4; c++) {
    qr[c] = q_in[qbase + c] * c2;
    dor[c] = do_in[qbase + c];
    delta += dot(dor[c], o_in[qbase + c]);
  }
  var acc: array<vec4<f32>, DL>;
  for (var k0 = 0u; k0 <= block_last; k0 += TILE) {
    stage_kv(b, hk, k0, block_last, lid);
    workgroupBarrier();
    for (var jj = lane; jj < TILE; jj += LANES) {
      var s = 0.0;
      var dp = 0.0;
      for (var c = 0u; c < D4; c++) {
        s += dot(qr[c], tile_a[jj * D4 + c]);
        dp += dot(dor[c], tile_b[jj * D4 + c]);
      }
      let pj = select(0.0, exp2(s - l2), k0 + jj <= last);
      row_x[r * TILE + jj] = pj * (dp - delta);
    }
    workgroupBarrier();
    for (var jj = 0u; jj < TILE; jj++) {
      let ds = row_x[r * TILE + jj];
      for (var x = 0u; x < DL; x++) { acc[x] += ds * tile_a[jj * D4 + lane + x * LANES]; }
    }
    workgroupBarrier();
  }
  if (row0 + r < p.seq) {
    for (var x = 0u; x < DL; x++) { dq_out[qbase + lane + x * LANES] = acc[x] * p.scale; }
    if (lane == 0u) { delta_out[row] = delta; }
  }
}

// dk, dv: grid (key block, kv head, batch). The workgroup walks every query head sharing its kv
// head and, in TILE steps, every query that sees its first key, with Q, dO, lse and delta staged.
// Each lane computes P and dS for TILE / LANES queries, then accumulates its columns of
// dv += P^T dO and dk += dS^T Q: the GQA sum happens in registers, in a fixed order.
@compute @workgroup_size(THREADS)
fn flash_bwd_dkdv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = lid / LANES;
  let lane = lid % LANES;
  let b = wid.z;
  let hk = wid.y;
  let group = p.n_q_heads / p.n_kv_heads;
  let kv_len = p.past_len + p.seq;
  let j0 = wid.x * ROWS;
  let j = min(j0 + r, kv_len - 1u);
  let kbase = kv_row(b, j, hk);
  let c2 = p.scale * LOG2E;
  var kr: array<vec4<f32>, D4>;
  var vr: array<vec4<f32>, D4>;
  for (var c = 0u; c < D4; c++) {
    kr[c] = k_in[kbase + c] * c2;
    vr[c] = v_in[kbase + c];
  }
  var dk: array<vec4<f32>, DL>;
  var dv: array<vec4<f32>, DL>;
  // Query i sees key j when past_len + i >= j: the first query seeing the block's first key.
  let first = select(0u, j0 - p.past_len, j0 > p.past_len);
  for (var g = 0u; g < group; g++) {
    let h = hk * group + g;
    let stat = (b * p.n_q_heads + h) * p.seq;
    for (var i0 = first; i0 < p.seq; i0 += TILE) {
      for (var i = lid; i < TILE * D4; i += THREADS) {
        let src = q_row(b, min(i0 + i / D4, p.seq - 1u), h) + i % D4;
        tile_a[i] = q_in[src];
        tile_b[i] = do_in[src];
      }
      if (lid < TILE) {
        let qi = min(i0 + lid, p.seq - 1u);
        stat_a[lid] = lse_in[stat + qi] * LOG2E;
        stat_b[lid] = delta_in[stat + qi];
      }
      workgroupBarrier();
      for (var ii = lane; ii < TILE; ii += LANES) {
        var s = 0.0;
        var dp = 0.0;
        for (var c = 0u; c < D4; c++) {
          s += dot(kr[c], tile_a[ii * D4 + c]);
          dp += dot(vr[c], tile_b[ii * D4 + c]);
        }
        let i = i0 + ii;
        let pij = select(0.0, exp2(s - stat_a[ii]), i < p.seq && j <= p.past_len + i);
        row_x[r * TILE + ii] = pij;
        row_y[r * TILE + ii] = pij * (dp - stat_b[ii]);
      }
      workgroupBarrier();
      for (var ii = 0u; ii < TILE; ii++) {
        let pij = row_x[r * TILE + ii];
        let ds = row_y[r * TILE + ii];
        for (var x = 0u; x < DL; x++) {
          let col = ii * D4 + lane + x * LANES;
          dv[x] += pij * tile_b[col];
          dk[x] += ds * tile_a[col];
        }
      }
      workgroupBarrier();
    }
  }
  if (j0 + r < kv_len) {
    for (var x = 0u; x < DL; x++) {
      dk_out[kbase + lane + x * LANES] = dk[x] * p.scale;
      dv_out[kbase + lane + x * LANES] = dv[x];
    }
  }
}

// Decode, step 1 (flash-decoding): grid (split, q head, batch), a workgroup per split. Per step
// each thread scores one of THREADS keys; then DEC_GROUPS groups of D4 threads (thread = group
// g, column c) each run an online softmax over every DEC_GROUPS-th key of the step, one vec4
// column per thread, and the groups' partial results merge through workgroup memory at the end.
// Writes part[b, h, split] = (acc[0..D), max (base 2), sum), as attn_decode_partial does, so
// attention.wgsl's attn_decode_combine finishes the job.
// attention.wgsl's decode_shape: the same splits as attn_decode_combine reads.
struct DecodeShape {
  kv_len: u32,
  chunk: u32,
  n_splits: u32,
}
fn decode_shape(newest_row: u32) -> DecodeShape {
  if (dcp.live == 0u) { return DecodeShape(dcp.kv_len, dcp.chunk, dcp.n_splits); }
  let kv_len = newest_row + 1u;
  let splits = max(1u, min(dcp.max_splits, kv_len / dcp.min_chunk));
  let chunk = (kv_len + splits - 1u) / splits;
  return DecodeShape(kv_len, chunk, (kv_len + chunk - 1u) / chunk);
}

@compute @workgroup_size(THREADS)
fn flash_decode_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // Live: the dispatch covers the most splits of any length; workgroups past this length's stop.
  let ds = decode_shape(live_pos[0]);
  let split = wid.x;
  if (split >= ds.n_splits) { return; }
  let h = wid.y;
  let b = wid.z;
  let hk = h / (dcp.n_q_heads / dcp.n_kv_heads);
  let g = lid / D4;
  let c = lid % D4;
  let in_group = g < DEC_GROUPS;
  let first = split * ds.chunk;
  let last = min(first + ds.chunk, ds.kv_len) - 1u;
  let row_stride = dcp.n_kv_heads * D4;
  let seq_base = (b * dcp.kv_cap * dcp.n_kv_heads + hk) * D4;
  if (lid < D4) { dec_q[lid] = q_in[(b * dcp.n_q_heads + h) * D4 + lid] * (dcp.scale * LOG2E); }
  workgroupBarrier();
  var m = NEG;
  var l = 0.0;
  var acc = vec4<f32>(0.0);
  for (var k0 = first; k0 <= last; k0 += THREADS) {
    var s = NEG;
    if (k0 + lid <= last) {
      let kr = seq_base + (k0 + lid) * row_stride;
      s = 0.0;
      for (var cc = 0u; cc < D4; cc++) { s += dot(dec_q[cc], k_in[kr + cc]); }
    }
    dec_s[lid] = s;
    workgroupBarrier();
    if (in_group) {
      // A group may have no valid key in a step (or in the whole split): keys are masked by
      // index, so its m stays NEG, its l and acc 0, and the merge gives it weight 0.
      var mt = NEG;
      for (var jj = g; jj < THREADS; jj += DEC_GROUPS) {
        if (k0 + jj <= last) { mt = max(mt, dec_s[jj]); }
      }
      let m_new = max(m, mt);
      let alpha = exp2(m - m_new);
      m = m_new;
      l *= alpha;
      acc *= alpha;
      for (var jj = g; jj < THREADS; jj += DEC_GROUPS) {
        if (k0 + jj <= last) {
          let pj = exp2(dec_s[jj] - m_new);
          l += pj;
          acc += pj * v_in[seq_base + (k0 + jj) * row_stride + c];
        }
      }
    }
    workgroupBarrier();
  }
  dec_acc[lid] = acc;
  dec_ml[lid] = vec2<f32>(m, l);
  workgroupBarrier();
  if (lid < D4) {
    var mm = NEG;
    for (var gg = 0u; gg < DEC_GROUPS; gg++) { mm = max(mm, dec_ml[gg * D4].x); }
    var num = vec4<f32>(0.0);
    var den = 0.0;
    for (var gg = 0u; gg < DEC_GROUPS; gg++) {
      let ml = dec_ml[gg * D4];
      let w = exp2(ml.x - mm);
      den += w * ml.y;
      num += w * dec_acc[gg * D4 + lid];
    }
    let base = ((b * dcp.n_q_heads + h) * ds.n_splits + split) * (D4 + 1u);
    part_out[base + lid] = num;
    if (lid == 0u) { part_out[base + D4] = vec4<f32>(mm, den, 0.0, 0.0); }
  }
}
