// Causal grouped-query attention for real GPUs (the 'gpu' kernel plan), FlashAttention-2 style:
// K/V (or Q/dO) tiles staged in workgroup memory, several lanes per row, online softmax.
// Same layouts, parameters and results as attention.wgsl (read its header): q/out/dout/dq
// [B, T, Hq, D], k/v/dk/dv [B, kv_cap, Hkv, D], lse/delta [B, Hq, T], scores in base 2.
// The binding module prepends attentionCommon.wgsl (params, constants) and the shape constants,
// fixed per head dim so that every per-row array has a constant size and lives in registers:
//   D4     vec4s per head row (head dim / 4)
//   LANES  threads per row; lane x owns the vec4 columns x, x + LANES, ... of the row
//   ROWS   rows per workgroup (64 / LANES)
//   TILE   keys (forward, dq) or queries (dk/dv) staged per step
// Every workgroup has 64 threads; thread i works on row i / LANES as lane i % LANES. The head
// dim is split over the lanes: a lane holds only its columns of the row's q (or k, v) and of the
// accumulators (D / LANES floats each, 32 at head dim 128), and a score is the sum of the lanes'
// partial dot products, exchanged through workgroup memory and added in lane order by every lane
// alike. Rows past the end still run (clamped to a valid row) so that every thread reaches every
// barrier; they write nothing. All sums run in a fixed order: results are deterministic, no
// atomics.

const THREADS: u32 = 64u;
const DL: u32 = D4 / LANES; // vec4 columns per lane
const DEC_GROUPS: u32 = THREADS / D4; // decode: key groups, each D4 threads wide


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
// The lanes' partial dot products, at ((row * TILE) + staged row) * LANES + lane: q.k and dO.v
// (forward: q.k only), or k.q and v.dO (dk/dv).
var<workgroup> part_x: array<f32, THREADS * TILE>;
var<workgroup> part_y: array<f32, THREADS * TILE>;
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

// A thread's query row in the forward and dq grids (query block of ROWS, q head, batch).
struct QueryRow {
  r: u32,      // row within the workgroup
  lane: u32,
  t: u32,      // query row, clamped to the last one
  valid: bool, // t is this thread's own row (not a clamped copy): it writes results
  qcol: u32,   // vec4 index of the lane's first column in q (and out, dout, dq)
  last: u32,   // the last key t sees
}

fn query_row(wid: vec3<u32>, lid: u32) -> QueryRow {
  let r = lid / LANES;
  let t = min(wid.x * ROWS + r, p.seq - 1u);
  let lane = lid % LANES;
  return QueryRow(r, lane, t, wid.x * ROWS + r < p.seq, q_row(wid.z, t, wid.y) + lane, p.past_len + t);
}

// The last key any row of query block `block` sees: the key loops' bound, the same for the
// whole workgroup (a separate function so that uniformity analysis sees it as uniform).
fn block_last_key(block: u32) -> u32 {
  return p.past_len + min(block * ROWS + ROWS, p.seq) - 1u;
}

// Stages keys k0 .. k0+TILE-1 of (b, q head h's kv head) (clamped to `last_key`; the extra rows
// are masked).
fn stage_kv(b: u32, h: u32, k0: u32, last_key: u32, lid: u32) {
  let hk = h / (p.n_q_heads / p.n_kv_heads);
  for (var i = lid; i < TILE * D4; i += THREADS) {
    let src = kv_row(b, min(k0 + i / D4, last_key), hk) + i % D4;
    tile_a[i] = k_in[src];
    tile_b[i] = v_in[src];
  }
}

// The lane's share (its columns) of the dot product of `v` with staged row i of tile_a / tile_b.
fn lane_dot_a(v: array<vec4<f32>, DL>, i: u32, lane: u32) -> f32 {
  var s = 0.0;
  for (var x = 0u; x < DL; x++) { s += dot(v[x], tile_a[i * D4 + lane + x * LANES]); }
  return s;
}
fn lane_dot_b(v: array<vec4<f32>, DL>, i: u32, lane: u32) -> f32 {
  var s = 0.0;
  for (var x = 0u; x < DL; x++) { s += dot(v[x], tile_b[i * D4 + lane + x * LANES]); }
  return s;
}

// Row r's full dot product with staged row i: its lanes' partials added in lane order (every
// lane of the row gets the same bits).
fn row_dot_x(r: u32, i: u32) -> f32 {
  var s = 0.0;
  for (var ln = 0u; ln < LANES; ln++) { s += part_x[(r * TILE + i) * LANES + ln]; }
  return s;
}
fn row_dot_y(r: u32, i: u32) -> f32 {
  var s = 0.0;
  for (var ln = 0u; ln < LANES; ln++) { s += part_y[(r * TILE + i) * LANES + ln]; }
  return s;
}

// Grid (query block of ROWS, q head, batch). Per step each lane writes its partial scores for
// the TILE staged keys; then every lane of a row adds them up, so all lanes share one running
// max and sum, and each updates its own columns of the output.
@compute @workgroup_size(THREADS)
fn flash_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = query_row(wid, lid);
  let block_last = block_last_key(wid.x);
  let c2 = p.scale * LOG2E;
  var qr: array<vec4<f32>, DL>;
  for (var x = 0u; x < DL; x++) { qr[x] = q_in[row.qcol + x * LANES] * c2; }
  var acc: array<vec4<f32>, DL>;
  var m = NEG;
  var l = 0.0;
  for (var k0 = 0u; k0 <= block_last; k0 += TILE) {
    stage_kv(wid.z, wid.y, k0, block_last, lid);
    workgroupBarrier();
    for (var jj = 0u; jj < TILE; jj++) {
      part_x[(row.r * TILE + jj) * LANES + row.lane] = lane_dot_a(qr, jj, row.lane);
    }
    workgroupBarrier();
    // Key 0 is in the first tile and every row sees it, so m is a real score from then on and
    // masked keys get exp2(NEG - m) = 0.
    var s: array<f32, TILE>;
    var mt = NEG;
    for (var jj = 0u; jj < TILE; jj++) {
      s[jj] = select(NEG, row_dot_x(row.r, jj), k0 + jj <= row.last);
      mt = max(mt, s[jj]);
    }
    let m_new = max(m, mt);
    let alpha = exp2(m - m_new);
    m = m_new;
    l *= alpha;
    for (var x = 0u; x < DL; x++) { acc[x] *= alpha; }
    for (var jj = 0u; jj < TILE; jj++) {
      let pj = exp2(s[jj] - m_new);
      l += pj;
      for (var x = 0u; x < DL; x++) { acc[x] += pj * tile_b[jj * D4 + row.lane + x * LANES]; }
    }
    workgroupBarrier();
  }
  if (row.valid) {
    let inv = 1.0 / l;
    for (var x = 0u; x < DL; x++) { o_out[row.qcol + x * LANES] = acc[x] * inv; }
    if (row.lane == 0u) { lse_out[(wid.z * p.n_q_heads + wid.y) * p.seq + row.t] = (m + log2(l)) * LN2; }
  }
}

// dq: grid (query block, q head, batch). P is recomputed from lse; per step the lanes' partial
// q.k and dO.v give each row's dS for the TILE staged keys, and each lane accumulates its
// columns of dS K. delta = dout . out is computed here and stored for the dk/dv kernel.
@compute @workgroup_size(THREADS)
fn flash_bwd_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = query_row(wid, lid);
  let block_last = block_last_key(wid.x);
  let stat = (wid.z * p.n_q_heads + wid.y) * p.seq + row.t;
  let l2 = lse_in[stat] * LOG2E;
  let c2 = p.scale * LOG2E;
  var qr: array<vec4<f32>, DL>;
  var dor: array<vec4<f32>, DL>;
  var delta_part = 0.0;
  for (var x = 0u; x < DL; x++) {
    let col = row.qcol + x * LANES;
    qr[x] = q_in[col] * c2;
    dor[x] = do_in[col];
    delta_part += dot(dor[x], o_in[col]);
  }
  // delta over the whole row: the lanes' partials (slot lid = r * LANES + lane), in lane order.
  // The loop's first writes to part_y come after its first barrier, when every lane has read.
  part_y[lid] = delta_part;
  workgroupBarrier();
  var delta = 0.0;
  for (var ln = 0u; ln < LANES; ln++) { delta += part_y[row.r * LANES + ln]; }
  var acc: array<vec4<f32>, DL>;
  for (var k0 = 0u; k0 <= block_last; k0 += TILE) {
    stage_kv(wid.z, wid.y, k0, block_last, lid);
    workgroupBarrier();
    for (var jj = 0u; jj < TILE; jj++) {
      let slot = (row.r * TILE + jj) * LANES + row.lane;
      part_x[slot] = lane_dot_a(qr, jj, row.lane);
      part_y[slot] = lane_dot_b(dor, jj, row.lane);
    }
    workgroupBarrier();
    for (var jj = 0u; jj < TILE; jj++) {
      let pj = select(0.0, exp2(row_dot_x(row.r, jj) - l2), k0 + jj <= row.last);
      let ds = pj * (row_dot_y(row.r, jj) - delta);
      for (var x = 0u; x < DL; x++) { acc[x] += ds * tile_a[jj * D4 + row.lane + x * LANES]; }
    }
    workgroupBarrier();
  }
  if (row.valid) {
    for (var x = 0u; x < DL; x++) { dq_out[row.qcol + x * LANES] = acc[x] * p.scale; }
    if (row.lane == 0u) { delta_out[stat] = delta; }
  }
}

// dk, dv: grid (key block, kv head, batch). The workgroup walks every query head sharing its kv
// head and, in TILE steps, every query that sees its first key, with Q, dO, lse and delta staged.
// The lanes' partial k.q and v.dO give each key row P and dS for the TILE staged queries, then
// each lane accumulates its columns of dv += P^T dO and dk += dS^T Q: the GQA sum happens in
// registers, in a fixed order.
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
  let kcol = kv_row(b, j, hk) + lane;
  let c2 = p.scale * LOG2E;
  var kr: array<vec4<f32>, DL>;
  var vr: array<vec4<f32>, DL>;
  for (var x = 0u; x < DL; x++) {
    kr[x] = k_in[kcol + x * LANES] * c2;
    vr[x] = v_in[kcol + x * LANES];
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
      for (var ii = 0u; ii < TILE; ii++) {
        let slot = (r * TILE + ii) * LANES + lane;
        part_x[slot] = lane_dot_a(kr, ii, lane);
        part_y[slot] = lane_dot_b(vr, ii, lane);
      }
      workgroupBarrier();
      for (var ii = 0u; ii < TILE; ii++) {
        let i = i0 + ii;
        let pij = select(0.0, exp2(row_dot_x(r, ii) - stat_a[ii]), i < p.seq && j <= p.past_len + i);
        let ds = pij * (row_dot_y(r, ii) - stat_b[ii]);
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
      dk_out[kcol + x * LANES] = dk[x] * p.scale;
      dv_out[kcol + x * LANES] = dv[x];
    }
  }
}

// Decode, step 1 (flash-decoding): grid (split, q head, batch), a workgroup per split. Per step
// each thread scores one of THREADS keys; then DEC_GROUPS groups of D4 threads (thread = group
// g, column c) each run an online softmax over every DEC_GROUPS-th key of the step, one vec4
// column per thread, and the groups' partial results merge through workgroup memory at the end.
// Writes part[b, h, split] = (acc[0..D), max (base 2), sum), as attn_decode_partial does, so
// attention.wgsl's attn_decode_combine finishes the job.

@compute @workgroup_size(THREADS)
fn flash_decode_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // Live: the dispatch covers the most splits of any length; workgroups past this length's stop.
  let ds = decode_shape(dcp, live_pos[0]);
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
