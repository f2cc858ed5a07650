// LoRA linear layer: y = x W^T + bias + s * (x_d A^T) B^T, and its backward for A, B and x.
//   x [T, K], W [N, K] (HF layout, f32 or f16), A [r, K], B [N, r], u = x_d A^T [T, r].
// All LoRA tensors are f32 and every sum accumulates in f32. W is bound as u32 words so that one
// entry point reads f32 (bitcast) or packed f16 (unpack2x16float): that needs no shader-f16, so the
// same module runs on devices without it, and the bandwidth saving of f16 weights is kept.
//
// Dropout on the LoRA branch is either precomputed (pass x_d as x) or regenerated inline from a
// counter-based hash of (element index, seed), so x_d never has to be stored for the backward.
// The kernels that regenerate it take the seed as drop_add + drop_mul * the pass's seed, read
// from `pass_values` (see dropout_key), so their parameters stay the same from pass to pass.
//
// Entry points share this module; each declares its own bindings, and two variables share a
// binding number only when no entry point uses both. The module is compiled after
// loraCommon.wgsl (dropout_factor, the tile sizes, the reduction and tile steps).

// ---------------------------------------------------------------------------------------------
// Dropout mask of x, written out (for callers that keep x_d).

struct DropoutParams {
  n: u32,
  row_stride: u32,
  key: u32,
  threshold: u32,
  inv_keep: f32,
}

@group(0) @binding(0) var<uniform> dp: DropoutParams;
@group(0) @binding(1) var<storage, read> dropout_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dropout_out: array<f32>;

@compute @workgroup_size(256)
fn dropout_mask(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * dp.row_stride + gid.x;
  if (i >= dp.n) { return; }
  dropout_out[i] = dropout_x[i] * dropout_factor(i, 1u, dp.key, dp.threshold, dp.inv_keep);
}

// ---------------------------------------------------------------------------------------------
// Skinny product: out[t, j] = scale * sum_k drop(x)[t, k] * A(j, k), for t < rows, j < r.
// A(j, k) = a[j * K + k] (A [r, K], for u = x A^T) or a[k * r + j] (B [N, r], for du = dy B).
// One workgroup: DOWN_ROWS rows x RC outputs (grid y covers r); its 64 threads stride over K
// (coalesced reads of x). r <= 16 costs one pass over x.

struct DownParams {
  rows: u32,
  k: u32,
  r: u32,
  scale: f32,
  a_kmajor: u32,  // 1: A(j, k) = a[k * r + j]
  drop_on: u32,
  drop_mul: u32,
  drop_add: u32,
  drop_threshold: u32,
  drop_inv_keep: f32,
}

@group(0) @binding(0) var<uniform> pd: DownParams;
@group(0) @binding(1) var<storage, read> down_x: array<f32>;
@group(0) @binding(2) var<storage, read> down_a: array<f32>;
@group(0) @binding(3) var<storage, read_write> down_out: array<f32>;
// The pass's values (word 1: its dropout seed), shared by lora_down, lora_grad_w and lora_dx.
@group(0) @binding(4) var<uniform> pass_values: vec4<u32>;

var<workgroup> down_partial: DownPartial;

@compute @workgroup_size(DOWN_WG)
fn lora_down(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row0 = wid.x * DOWN_ROWS;
  let j0 = wid.y * RC;
  let drop_key = dropout_key(pass_values.y, pd.drop_mul, pd.drop_add);
  var acc: DownAcc;
  for (var o = 0u; o < DOWN_ROWS * RC; o++) { acc[o] = 0.0; }
  for (var k = lid; k < pd.k; k += DOWN_WG) {
    var xv: array<f32, DOWN_ROWS>;
    for (var i = 0u; i < DOWN_ROWS; i++) {
      let t = row0 + i;
      xv[i] = 0.0;
      if (t < pd.rows) {
        let idx = t * pd.k + k;
        xv[i] = down_x[idx] * dropout_factor(idx, pd.drop_on, drop_key, pd.drop_threshold, pd.drop_inv_keep);
      }
    }
    for (var j = 0u; j < RC; j++) {
      let jj = j0 + j;
      var av = 0.0;
      if (jj < pd.r) {
        av = down_a[select(jj * pd.k + k, k * pd.r + jj, pd.a_kmajor != 0u)];
      }
      for (var i = 0u; i < DOWN_ROWS; i++) { acc[i * RC + j] += xv[i] * av; }
    }
  }
  down_share(&down_partial, &acc, lid);
  for (var o = lid; o < DOWN_ROWS * RC; o += DOWN_WG) {
    let t = row0 + o / RC;
    let jj = j0 + o % RC;
    if (t < pd.rows && jj < pd.r) { down_out[t * pd.r + jj] = pd.scale * down_sum(&down_partial, o); }
  }
}

// ---------------------------------------------------------------------------------------------
// Fused forward: y = x W^T + bias + scale * u B^T, one register-blocked tile per workgroup.
// One loop walks the K chunks of x/W and then the r chunks of scale*u/B into the same
// accumulators, so y is written once and the multiply code exists once (llvmpipe's compile time
// grows with every copy of it).

struct LinearParams {
  t: u32,
  k: u32,
  n: u32,
  r: u32,
  scale: f32,
  has_bias: u32,
}

@group(0) @binding(0) var<uniform> pl: LinearParams;
@group(0) @binding(1) var<storage, read> lin_x: array<f32>;
@group(0) @binding(2) var<storage, read> lin_w: array<u32>;
@group(0) @binding(3) var<storage, read> lin_bias: array<f32>;
@group(0) @binding(4) var<storage, read> lin_u: array<f32>;
@group(0) @binding(5) var<storage, read> lin_b: array<f32>;
@group(0) @binding(6) var<storage, read_write> lin_y: array<f32>;

var<workgroup> tile_a: TileA;
var<workgroup> tile_b: TileB;

@compute @workgroup_size(16, 16)
fn lora_linear(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let th = tile_thread(wid, lid3);
  var acc: TileAcc;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
  let k_chunks = (pl.k + LIN_BK - 1u) / LIN_BK;
  let chunks = k_chunks + (pl.r + LIN_BK - 1u) / LIN_BK;
  for (var c = 0u; c < chunks; c++) {
    let base = c < k_chunks;  // uniform: base path first, then the low-rank path
    let c0 = select((c - k_chunks) * LIN_BK, c * LIN_BK, base);
    let width = select(pl.r, pl.k, base);
    for (var e = 0u; e < LIN_TM; e++) {
      let slot = tile_slot(th, e);  // (row, kk)
      let m = th.m0 + slot.x;
      let k = c0 + slot.y;
      var v = 0.0;
      if (m < pl.t && k < width) {
        if (base) { v = lin_x[m * pl.k + k]; } else { v = pl.scale * lin_u[m * pl.r + k]; }
      }
      tile_a[slot.y * th.bm + slot.x] = v;
    }
    for (var e = 0u; e < 4u; e++) {
      let slot = tile_slot(th, e);  // (column, kk)
      let n = th.n0 + slot.x;
      let k = c0 + slot.y;
      var v = 0.0;
      if (n < pl.n && k < width) {
        if (base) {
          let idx = n * pl.k + k;
          v = w_value(lin_w[w_word(idx)], idx);
        } else {
          v = lin_b[n * pl.r + k];
        }
      }
      tile_b[slot.y * LIN_BN + slot.x] = v;
    }
    tile_multiply(&acc, &tile_a, &tile_b, th);
  }

  // Constant-bound loops without early exits: they unroll, so acc stays in registers.
  for (var i = 0u; i < LIN_TM; i++) {
    let m = th.m0 + th.ty + 16u * i;
    let row = acc[i];
    for (var j = 0u; j < 4u; j++) {
      let n = th.n0 + th.tx + 16u * j;
      if (m < pl.t && n < pl.n) {
        var v = row[j];
        if (pl.has_bias != 0u) { v += lin_bias[n]; }
        lin_y[m * pl.n + n] = v;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Weight gradient, a reduction over tokens:
//   out(c, j) (+)= scale * sum_t drop(g)[t, c] * v[t, j],   g [T, C], v [T, r].
// gradB = s dy^T u: g = dy, v = u, out [N, r] (out[c * r + j]).
// gradA = du^T x_d: g = x (dropout inline), v = du, out [r, K] (out[j * C + c], out_rmajor).
// Workgroup GW_COLS columns x GW_LANES token lanes.

struct GradParams {
  t: u32,
  c: u32,
  r: u32,
  scale: f32,
  accumulate: u32,
  out_rmajor: u32,  // 1: out[j * C + c]
  drop_on: u32,
  drop_mul: u32,
  drop_add: u32,
  drop_threshold: u32,
  drop_inv_keep: f32,
}

@group(0) @binding(0) var<uniform> pg: GradParams;
@group(0) @binding(1) var<storage, read> gw_g: array<f32>;
@group(0) @binding(2) var<storage, read> gw_v: array<f32>;
@group(0) @binding(3) var<storage, read_write> gw_out: array<f32>;

var<workgroup> gw_partial: GradPartial;

@compute @workgroup_size(GW_COLS, GW_LANES)
fn lora_grad_w(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let c = wid.x * GW_COLS + lid3.x;
  let j0 = wid.y * RC;
  let drop_key = dropout_key(pass_values.y, pg.drop_mul, pg.drop_add);
  var acc: array<f32, RC>;
  for (var j = 0u; j < RC; j++) { acc[j] = 0.0; }
  if (c < pg.c) {
    for (var t = lid3.y; t < pg.t; t += GW_LANES) {
      let idx = t * pg.c + c;
      let gv = gw_g[idx] * dropout_factor(idx, pg.drop_on, drop_key, pg.drop_threshold, pg.drop_inv_keep);
      for (var j = 0u; j < RC; j++) {
        let jj = min(j0 + j, pg.r - 1u);  // columns past r are computed and never stored
        acc[j] += gv * gw_v[t * pg.r + jj];
      }
    }
  }
  let lid = lid3.y * GW_COLS + lid3.x;
  gw_share(&gw_partial, &acc, lid);
  for (var o = lid; o < GW_COLS * RC; o += GW_COLS * GW_LANES) {
    let cc = wid.x * GW_COLS + o % GW_COLS;
    let jj = j0 + o / GW_COLS;
    if (cc < pg.c && jj < pg.r) {
      let at = select(cc * pg.r + jj, jj * pg.c + cc, pg.out_rmajor != 0u);
      var v = pg.scale * gw_sum(&gw_partial, o);
      if (pg.accumulate != 0u) { v += gw_out[at]; }
      gw_out[at] = v;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Input gradient of the low-rank path: dx[t, k] (+)= drop_factor(t, k) * sum_j du[t, j] A[j, k].
// One k per thread for DX_ROWS rows.

struct DxParams {
  t: u32,
  k: u32,
  r: u32,
  accumulate: u32,
  drop_on: u32,
  drop_mul: u32,
  drop_add: u32,
  drop_threshold: u32,
  drop_inv_keep: f32,
}

@group(0) @binding(0) var<uniform> px: DxParams;
@group(0) @binding(1) var<storage, read> dx_du: array<f32>;
@group(0) @binding(2) var<storage, read> dx_a: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx_out: array<f32>;

@compute @workgroup_size(DX_COLS, DX_LANES)
fn lora_dx(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let k = wid.x * DX_COLS + lid3.x;
  if (k >= px.k) { return; }
  let row0 = (wid.y * DX_LANES + lid3.y) * DX_ROWS;
  let drop_key = dropout_key(pass_values.y, px.drop_mul, px.drop_add);
  var acc: array<f32, DX_ROWS>;
  for (var i = 0u; i < DX_ROWS; i++) { acc[i] = 0.0; }
  for (var j = 0u; j < px.r; j++) {
    let av = dx_a[j * px.k + k];
    for (var i = 0u; i < DX_ROWS; i++) {
      let t = min(row0 + i, px.t - 1u);  // rows past T are computed and never stored
      acc[i] += dx_du[t * px.r + j] * av;
    }
  }
  for (var i = 0u; i < DX_ROWS; i++) {
    let t = row0 + i;
    if (t >= px.t) { return; }
    let idx = t * px.k + k;
    var v = acc[i] * dropout_factor(idx, px.drop_on, drop_key, px.drop_threshold, px.drop_inv_keep);
    if (px.accumulate != 0u) { v += dx_out[idx]; }
    dx_out[idx] = v;
  }
}
