// Row normalisation over [rows, cols] f32: RMSNorm (Llama family) and LayerNorm (GPT-2).
// Forward: one workgroup per row, reduced with wg_sum from the prelude the binding module puts
// first (workgroupReduce.wgsl or subgroupReduce.wgsl), per-row statistics saved for the backward
// pass.
// The *_res variants first form sum = x + residual (the new residual stream), write it out,
// and normalise that.
// Backward: one workgroup per row for dx (optionally added to dx already there, which is how the
// residual-stream gradient is merged); a second kernel sums dweight/dbias per column over the
// rows in a fixed order (no atomics).
// Entry points share binding numbers where their layouts differ; each uses only its own.

// Threads per row: a power of two chosen from cols by the host (64 for short rows such as
// per-head norms, 256 for hidden sizes), so short rows do not leave most of the group idle.
override WG: u32 = 256u;

struct RowParams {
  rows: u32,
  cols: u32,
  eps: f32,
  groups_x: u32,   // workgroups per grid row: the row index is wid.y * groups_x + wid.x
  accumulate: u32, // backward: 1 = add into dx (or dweight/dbias) instead of overwriting
}

@group(0) @binding(0) var<uniform> p: RowParams;

fn row_index(wid: vec3<u32>) -> u32 {
  return wid.y * p.groups_x + wid.x;
}

// ---------------------------------------------------------------- RMSNorm forward
// Bindings: x, weight, y, rstd
@group(0) @binding(1) var<storage, read> rf_x: array<f32>;
@group(0) @binding(2) var<storage, read> rf_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> rf_y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rf_rstd: array<f32>;

@compute @workgroup_size(WG)
fn rmsnorm_fwd(@builtin(workgroup_id) wid: vec3<u32>, lane: Lane) {
  let lid = lane.lid;
  let row = row_index(wid);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var ss = 0.0;
  for (var c = lid; c < p.cols; c += WG) {
    let v = rf_x[base + c];
    ss += v * v;
  }
  let r = inverseSqrt(wg_sum(ss, lane) / f32(p.cols) + p.eps);
  for (var c = lid; c < p.cols; c += WG) {
    rf_y[base + c] = (rf_x[base + c] * r) * rf_w[c];
  }
  if (lid == 0u) { rf_rstd[row] = r; }
}

// ---------------------------------------------------------------- RMSNorm forward, residual fused
// Bindings: x, residual, weight, y, sum, rstd
@group(0) @binding(1) var<storage, read> rr_x: array<f32>;
@group(0) @binding(2) var<storage, read> rr_res: array<f32>;
@group(0) @binding(3) var<storage, read> rr_w: array<f32>;
@group(0) @binding(4) var<storage, read_write> rr_y: array<f32>;
@group(0) @binding(5) var<storage, read_write> rr_sum: array<f32>;
@group(0) @binding(6) var<storage, read_write> rr_rstd: array<f32>;

@compute @workgroup_size(WG)
fn rmsnorm_res_fwd(@builtin(workgroup_id) wid: vec3<u32>, lane: Lane) {
  let lid = lane.lid;
  let row = row_index(wid);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var ss = 0.0;
  for (var c = lid; c < p.cols; c += WG) {
    let v = rr_x[base + c] + rr_res[base + c];
    rr_sum[base + c] = v;
    ss += v * v;
  }
  let r = inverseSqrt(wg_sum(ss, lane) / f32(p.cols) + p.eps);
  // Each invocation rereads only the elements it wrote itself, so no barrier is needed.
  for (var c = lid; c < p.cols; c += WG) {
    rr_y[base + c] = (rr_sum[base + c] * r) * rr_w[c];
  }
  if (lid == 0u) { rr_rstd[row] = r; }
}

// ---------------------------------------------------------------- LayerNorm forward
// Bindings: x, weight, bias, y, stats ([rows, 2]: mean, rstd)
@group(0) @binding(1) var<storage, read> lf_x: array<f32>;
@group(0) @binding(2) var<storage, read> lf_w: array<f32>;
@group(0) @binding(3) var<storage, read> lf_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> lf_y: array<f32>;
@group(0) @binding(5) var<storage, read_write> lf_stats: array<f32>;

@compute @workgroup_size(WG)
fn layernorm_fwd(@builtin(workgroup_id) wid: vec3<u32>, lane: Lane) {
  let lid = lane.lid;
  let row = row_index(wid);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var s = 0.0;
  for (var c = lid; c < p.cols; c += WG) { s += lf_x[base + c]; }
  let mean = wg_sum(s, lane) / f32(p.cols);
  // Variance from centred values (two passes) rather than E[x²]-mean², which cancels badly.
  var sq = 0.0;
  for (var c = lid; c < p.cols; c += WG) {
    let d = lf_x[base + c] - mean;
    sq += d * d;
  }
  let r = inverseSqrt(wg_sum(sq, lane) / f32(p.cols) + p.eps);
  for (var c = lid; c < p.cols; c += WG) {
    lf_y[base + c] = (lf_x[base + c] - mean) * r * lf_w[c] + lf_b[c];
  }
  if (lid == 0u) {
    lf_stats[2u * row] = mean;
    lf_stats[2u * row + 1u] = r;
  }
}

// ---------------------------------------------------------------- LayerNorm forward, residual fused
// Bindings: x, residual, weight, bias, y, sum, stats
@group(0) @binding(1) var<storage, read> lr_x: array<f32>;
@group(0) @binding(2) var<storage, read> lr_res: array<f32>;
@group(0) @binding(3) var<storage, read> lr_w: array<f32>;
@group(0) @binding(4) var<storage, read> lr_b: array<f32>;
@group(0) @binding(5) var<storage, read_write> lr_y: array<f32>;
@group(0) @binding(6) var<storage, read_write> lr_sum: array<f32>;
@group(0) @binding(7) var<storage, read_write> lr_stats: array<f32>;

@compute @workgroup_size(WG)
fn layernorm_res_fwd(@builtin(workgroup_id) wid: vec3<u32>, lane: Lane) {
  let lid = lane.lid;
  let row = row_index(wid);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var s = 0.0;
  for (var c = lid; c < p.cols; c += WG) {
    let v = lr_x[base + c] + lr_res[base + c];
    lr_sum[base + c] = v;
    s += v;
  }
  let mean = wg_sum(s, lane) / f32(p.cols);
  var sq = 0.0;
  for (var c = lid; c < p.cols; c += WG) {
    let d = lr_sum[base + c] - mean;
    sq += d * d;
  }
  let r = inverseSqrt(wg_sum(sq, lane) / f32(p.cols) + p.eps);
  for (var c = lid; c < p.cols; c += WG) {
    lr_y[base + c] = (lr_sum[base + c] - mean) * r * lr_w[c] + lr_b[c];
  }
  if (lid == 0u) {
    lr_stats[2u * row] = mean;
    lr_stats[2u * row + 1u] = r;
  }
}

// ---------------------------------------------------------------- RMSNorm backward (dx)
// y = x r w, r = (mean(x²) + eps)^-1/2
// dx = r (g w) - x r³ / C * sum(g w x)
// Bindings: x, weight, dy, rstd, dx
@group(0) @binding(1) var<storage, read> rb_x: array<f32>;
@group(0) @binding(2) var<storage, read> rb_w: array<f32>;
@group(0) @binding(3) var<storage, read> rb_dy: array<f32>;
@group(0) @binding(4) var<storage, read> rb_rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> rb_dx: array<f32>;

@compute @workgroup_size(WG)
fn rmsnorm_bwd(@builtin(workgroup_id) wid: vec3<u32>, lane: Lane) {
  let lid = lane.lid;
  let row = row_index(wid);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  let r = rb_rstd[row];
  var s = 0.0;
  for (var c = lid; c < p.cols; c += WG) {
    s += rb_dy[base + c] * rb_w[c] * rb_x[base + c];
  }
  let k = wg_sum(s, lane) * r * r * r / f32(p.cols);
  for (var c = lid; c < p.cols; c += WG) {
    var v = r * rb_dy[base + c] * rb_w[c] - k * rb_x[base + c];
    if (p.accumulate != 0u) { v += rb_dx[base + c]; }
    rb_dx[base + c] = v;
  }
}

// ---------------------------------------------------------------- LayerNorm backward (dx)
// xhat = (x - mean) r, gh = g w
// dx = r (gh - mean(gh) - xhat mean(gh xhat))
// Bindings: x, weight, dy, stats, dx
@group(0) @binding(1) var<storage, read> lb_x: array<f32>;
@group(0) @binding(2) var<storage, read> lb_w: array<f32>;
@group(0) @binding(3) var<storage, read> lb_dy: array<f32>;
@group(0) @binding(4) var<storage, read> lb_stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> lb_dx: array<f32>;

@compute @workgroup_size(WG)
fn layernorm_bwd(@builtin(workgroup_id) wid: vec3<u32>, lane: Lane) {
  let lid = lane.lid;
  let row = row_index(wid);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  let mean = lb_stats[2u * row];
  let r = lb_stats[2u * row + 1u];
  var s = vec2<f32>(0.0);
  for (var c = lid; c < p.cols; c += WG) {
    let gh = lb_dy[base + c] * lb_w[c];
    let xhat = (lb_x[base + c] - mean) * r;
    s += vec2<f32>(gh, gh * xhat);
  }
  let m = wg_sum2(s, lane) / f32(p.cols);
  for (var c = lid; c < p.cols; c += WG) {
    let gh = lb_dy[base + c] * lb_w[c];
    let xhat = (lb_x[base + c] - mean) * r;
    var v = r * (gh - m.x - xhat * m.y);
    if (p.accumulate != 0u) { v += lb_dx[base + c]; }
    lb_dx[base + c] = v;
  }
}

// ---------------------------------------------------------------- dweight / dbias over rows
// Workgroup = 64 columns x 4 row lanes. Each lane strides over the rows; the 4 lane sums are
// added in a fixed order, so the result does not depend on scheduling.
const COLS_PER_GROUP: u32 = 64u;
const ROW_LANES: u32 = 4u;

var<workgroup> part: array<vec2<f32>, 256>;

// Bindings: x, dy, rstd, dweight
@group(0) @binding(1) var<storage, read> rw_x: array<f32>;
@group(0) @binding(2) var<storage, read> rw_dy: array<f32>;
@group(0) @binding(3) var<storage, read> rw_rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> rw_dw: array<f32>;

@compute @workgroup_size(64, 4)
fn rmsnorm_bwd_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let col = wid.x * COLS_PER_GROUP + l.x;
  var acc = 0.0;
  if (col < p.cols) {
    for (var row = l.y; row < p.rows; row += ROW_LANES) {
      let i = row * p.cols + col;
      acc += rw_dy[i] * (rw_x[i] * rw_rstd[row]);
    }
  }
  part[l.y * COLS_PER_GROUP + l.x] = vec2<f32>(acc, 0.0);
  workgroupBarrier();
  if (l.y == 0u && col < p.cols) {
    var total = part[l.x].x;
    for (var k = 1u; k < ROW_LANES; k++) { total += part[k * COLS_PER_GROUP + l.x].x; }
    if (p.accumulate != 0u) { total += rw_dw[col]; }
    rw_dw[col] = total;
  }
}

// Bindings: x, dy, stats, dweight, dbias
@group(0) @binding(1) var<storage, read> lw_x: array<f32>;
@group(0) @binding(2) var<storage, read> lw_dy: array<f32>;
@group(0) @binding(3) var<storage, read> lw_stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> lw_dw: array<f32>;
@group(0) @binding(5) var<storage, read_write> lw_db: array<f32>;

@compute @workgroup_size(64, 4)
fn layernorm_bwd_params(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let col = wid.x * COLS_PER_GROUP + l.x;
  var acc = vec2<f32>(0.0);
  if (col < p.cols) {
    for (var row = l.y; row < p.rows; row += ROW_LANES) {
      let i = row * p.cols + col;
      let g = lw_dy[i];
      let xhat = (lw_x[i] - lw_stats[2u * row]) * lw_stats[2u * row + 1u];
      acc += vec2<f32>(g * xhat, g);
    }
  }
  part[l.y * COLS_PER_GROUP + l.x] = acc;
  workgroupBarrier();
  if (l.y == 0u && col < p.cols) {
    var total = part[l.x];
    for (var k = 1u; k < ROW_LANES; k++) { total += part[k * COLS_PER_GROUP + l.x]; }
    if (p.accumulate != 0u) { total += vec2<f32>(lw_dw[col], lw_db[col]); }
    lw_dw[col] = total.x;
    lw_db[col] = total.y;
  }
}
