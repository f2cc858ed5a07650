// LoRA of a group of linear layers that share one input (q/k/v; gate/up), each kernel doing the
// work of every member in one dispatch instead of one dispatch per member.
//   x [T, K] shared; member g: W_g [N_g, K], A_g [r, K], B_g [N_g, r], u_g = x_dg A_g^T [T, r].
// A_g, B_g (and their gradients) are read at element offsets of the adapter's flat buffer, so
// the per-module parameter layout stays as it is. Per-member activations (u_g, du_g, y_g, dy_g)
// live in regions of one buffer. Each member keeps its own dropout mask (own seed, same p), the
// same mask the single-module kernels in lora.wgsl draw for it; as there, a member's seed is
// add_g + mul * the pass's seed, which the masking kernels read from a 'values' binding. The module is compiled after
// loraCommon.wgsl (dropout_factor, the tile sizes, the reduction and tile steps), so each kernel
// rounds as its single-module counterpart does. Grid y covers members x r in chunks of RC.

struct GroupParams {
  rows: u32,           // T
  k: u32,              // K, the shared input width
  r: u32,
  n: u32,              // members (1..4)
  scale: f32,
  flag: u32,           // group_down: 1 = backward du (x is dy, A is B k-major); group_grad/dx: accumulate
  drop_on: u32,
  drop_threshold: u32,
  drop_inv_keep: f32,
  region: u32,         // elements between the members' regions of u / du
  total: u32,          // group_linear: sum of N_g
  r_chunks: u32,       // ceil(r / RC)
  // Member g: (first column in the concatenated output, N_g, offset of its region of y / dy, offset of A_g).
  mem: array<vec4<u32>, 4>,
  // Member g: (offset of B_g, dropout seed's add_g, its mul, 0).
  mem2: array<vec4<u32>, 4>,
}

@group(0) @binding(0) var<uniform> pg: GroupParams;

// Every member's mask key in this pass, from load_member_keys at the start of a masking kernel.
var<private> member_keys: array<u32, 3>;

fn load_member_keys(pass_seed: u32) {
  for (var g = 0u; g < 3u; g++) { member_keys[g] = dropout_key(pass_seed, pg.mem2[g].z, pg.mem2[g].y); }
}

fn drop_factor(i: u32, g: u32) -> f32 {
  return dropout_factor(i, pg.drop_on, member_keys[g], pg.drop_threshold, pg.drop_inv_keep);
}

// ---------------------------------------------------------------------------------------------
// group_down: forward u_g[t, j] = sum_k drop_g(x)[t, k] A_g[j, k] for every member; or, with
// flag = 1, du_g[t, j] = scale * sum_n dy_g[t, n] B_g[n, j] (x = the dy regions, no dropout).
// Output: out[g * region + t * r + j]. The reduction is lora.wgsl's lora_down (4 rows x 16
// columns per workgroup of 64 threads striding over K); a workgroup's columns lie in one member.

@group(0) @binding(1) var<storage, read> gd_x: array<f32>;
@group(0) @binding(2) var<storage, read> gd_p: array<f32>;
@group(0) @binding(3) var<storage, read_write> gd_out: array<f32>;
// The pass's values (word 1: its dropout seed), for group_down and group_dx.
@group(0) @binding(4) var<uniform> pass_values4: vec4<u32>;

var<workgroup> down_partial: DownPartial;

@compute @workgroup_size(DOWN_WG)
fn group_down(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.y / pg.r_chunks;
  let j0 = (wid.y % pg.r_chunks) * RC;
  let row0 = wid.x * DOWN_ROWS;
  let back = pg.flag != 0u;
  let m = pg.mem[g];
  // Reduction width and where row t of the input starts.
  let width = select(pg.k, m.y, back);
  let x_off = select(0u, m.z, back);
  load_member_keys(pass_values4.y);
  var acc: DownAcc;
  for (var o = 0u; o < DOWN_ROWS * RC; o++) { acc[o] = 0.0; }
  for (var k = lid; k < width; k += DOWN_WG) {
    var xv: array<f32, DOWN_ROWS>;
    for (var i = 0u; i < DOWN_ROWS; i++) {
      let t = row0 + i;
      xv[i] = 0.0;
      if (t < pg.rows) {
        let idx = t * width + k;
        xv[i] = gd_x[x_off + idx];
        if (!back) { xv[i] *= drop_factor(idx, g); }
      }
    }
    for (var j = 0u; j < RC; j++) {
      let jj = j0 + j;
      var av = 0.0;
      if (jj < pg.r) {
        av = gd_p[select(m.w + jj * pg.k + k, pg.mem2[g].x + k * pg.r + jj, back)];
      }
      for (var i = 0u; i < DOWN_ROWS; i++) { acc[i * RC + j] += xv[i] * av; }
    }
  }
  down_share(&down_partial, &acc, lid);
  let sc = select(1.0, pg.scale, back);
  for (var o = lid; o < DOWN_ROWS * RC; o += DOWN_WG) {
    let t = row0 + o / RC;
    let jj = j0 + o % RC;
    if (t < pg.rows && jj < pg.r) { gd_out[g * pg.region + t * pg.r + jj] = sc * down_sum(&down_partial, o); }
  }
}

// ---------------------------------------------------------------------------------------------
// group_linear: y_g = x W_g^T + scale * u_g B_g^T for every member, as one product over the
// concatenated columns (sum of N_g). lora.wgsl's lora_linear tiling (16x16 threads, LIN_TM x 4
// outputs each, BK = 16, BN = 64): one loop walks the K chunks of x/W, then the n*r chunks of
// u/B, where a column's B entries outside its own member are zero. W_g come from up to three
// bindings (members past the third are not supported; two-member groups bind W_1 twice).
// No bias: biased groups run member by member.

@group(0) @binding(1) var<storage, read> gl_x: array<f32>;
@group(0) @binding(2) var<storage, read> gl_w0: array<u32>;
@group(0) @binding(3) var<storage, read> gl_w1: array<u32>;
@group(0) @binding(4) var<storage, read> gl_w2: array<u32>;
@group(0) @binding(5) var<storage, read> gl_u: array<f32>;
@group(0) @binding(6) var<storage, read> gl_p: array<f32>;
@group(0) @binding(7) var<storage, read_write> gl_y: array<f32>;

var<workgroup> tile_a: TileA;
var<workgroup> tile_b: TileB;

fn word(g: u32, i: u32) -> u32 {
  if (g == 0u) { return gl_w0[i]; }
  if (g == 1u) { return gl_w1[i]; }
  return gl_w2[i];
}

fn load_w(g: u32, idx: u32) -> f32 {
  return w_value(word(g, w_word(idx)), idx);
}

// The member whose columns hold concatenated column n.
fn member_of(n: u32) -> u32 {
  var g = 0u;
  for (var i = 1u; i < pg.n; i++) {
    if (n >= pg.mem[i].x) { g = i; }
  }
  return g;
}

@compute @workgroup_size(16, 16)
fn group_linear(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let th = tile_thread(wid, lid3);
  var acc: TileAcc;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
  let low = pg.n * pg.r;
  let k_chunks = (pg.k + LIN_BK - 1u) / LIN_BK;
  let chunks = k_chunks + (low + LIN_BK - 1u) / LIN_BK;
  for (var c = 0u; c < chunks; c++) {
    let base = c < k_chunks;
    let c0 = select((c - k_chunks) * LIN_BK, c * LIN_BK, base);
    let width = select(low, pg.k, base);
    for (var e = 0u; e < LIN_TM; e++) {
      let slot = tile_slot(th, e);  // (row, kk)
      let m = th.m0 + slot.x;
      let k = c0 + slot.y;
      var v = 0.0;
      if (m < pg.rows && k < width) {
        if (base) { v = gl_x[m * pg.k + k]; } else { v = pg.scale * gl_u[(k / pg.r) * pg.region + m * pg.r + k % pg.r]; }
      }
      tile_a[slot.y * th.bm + slot.x] = v;
    }
    for (var e = 0u; e < 4u; e++) {
      let slot = tile_slot(th, e);  // (column, kk)
      let n = th.n0 + slot.x;
      let k = c0 + slot.y;
      var v = 0.0;
      if (n < pg.total && k < width) {
        let g = member_of(n);
        let nl = n - pg.mem[g].x;
        if (base) {
          v = load_w(g, nl * pg.k + k);
        } else if (k / pg.r == g) {
          v = gl_p[pg.mem2[g].x + nl * pg.r + k % pg.r];
        }
      }
      tile_b[slot.y * LIN_BN + slot.x] = v;
    }
    tile_multiply(&acc, &tile_a, &tile_b, th);
  }
  for (var i = 0u; i < LIN_TM; i++) {
    let m = th.m0 + th.ty + 16u * i;
    let row = acc[i];
    for (var j = 0u; j < 4u; j++) {
      let n = th.n0 + th.tx + 16u * j;
      if (m < pg.rows && n < pg.total) {
        let g = member_of(n);
        let mg = pg.mem[g];
        gl_y[mg.z + m * mg.y + (n - mg.x)] = row[j];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// group_grad: both LoRA weight gradients of every member, 2n jobs in one dispatch:
//   job g < n:   dB_g[c, j] (+)= scale * sum_t dy_g[t, c] u_g[t, j]            (c < N_g)
//   job n + g:   dA_g[j, c] (+)= sum_t drop_g(x)[t, c] du_g[t, j]              (c < K)
// lora.wgsl's lora_grad_w reduction: GW_COLS columns x GW_LANES token lanes per workgroup.

@group(0) @binding(1) var<storage, read> gg_dy: array<f32>;
@group(0) @binding(2) var<storage, read> gg_u: array<f32>;
@group(0) @binding(3) var<storage, read> gg_x: array<f32>;
@group(0) @binding(4) var<storage, read> gg_du: array<f32>;
@group(0) @binding(5) var<storage, read_write> gg_out: array<f32>;
@group(0) @binding(6) var<uniform> pass_values6: vec4<u32>;

var<workgroup> gw_partial: GradPartial;

@compute @workgroup_size(GW_COLS, GW_LANES)
fn group_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let job = wid.y / pg.r_chunks;
  let j0 = (wid.y % pg.r_chunks) * RC;
  let grad_a = job >= pg.n;
  let g = select(job, job - pg.n, grad_a);
  let m = pg.mem[g];
  let width = select(m.y, pg.k, grad_a);
  if (wid.x * GW_COLS >= width) { return; }  // uniform: this member has fewer columns
  let c = wid.x * GW_COLS + lid3.x;
  load_member_keys(pass_values6.y);
  var acc: array<f32, RC>;
  for (var j = 0u; j < RC; j++) { acc[j] = 0.0; }
  if (c < width) {
    for (var t = lid3.y; t < pg.rows; t += GW_LANES) {
      let idx = t * width + c;
      var gv = 0.0;
      if (grad_a) { gv = gg_x[idx] * drop_factor(idx, g); } else { gv = gg_dy[m.z + idx]; }
      let vrow = g * pg.region + t * pg.r;
      for (var j = 0u; j < RC; j++) {
        let jj = min(j0 + j, pg.r - 1u);  // columns past r are computed and never stored
        var vv = 0.0;
        if (grad_a) { vv = gg_du[vrow + jj]; } else { vv = gg_u[vrow + jj]; }
        acc[j] += gv * vv;
      }
    }
  }
  let lid = lid3.y * GW_COLS + lid3.x;
  gw_share(&gw_partial, &acc, lid);
  let sc = select(pg.scale, 1.0, grad_a);
  for (var o = lid; o < GW_COLS * RC; o += GW_COLS * GW_LANES) {
    let cc = wid.x * GW_COLS + o % GW_COLS;
    let jj = j0 + o / GW_COLS;
    if (cc < width && jj < pg.r) {
      let at = select(pg.mem2[g].x + cc * pg.r + jj, m.w + jj * pg.k + cc, grad_a);
      var v = sc * gw_sum(&gw_partial, o);
      if (pg.flag != 0u) { v += gg_out[at]; }
      gg_out[at] = v;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// group_dx: dx[t, k] (+)= sum_g drop_g(t, k) * sum_j du_g[t, j] A_g[j, k], the low-rank part of
// the shared input's gradient (the base part, dy_g W_g, comes from matmul). lora.wgsl's lora_dx:
// one k per thread for DX_ROWS rows.

@group(0) @binding(1) var<storage, read> dx_du: array<f32>;
@group(0) @binding(2) var<storage, read> dx_p: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx_out: array<f32>;

@compute @workgroup_size(DX_COLS, DX_LANES)
fn group_dx(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let k = wid.x * DX_COLS + lid3.x;
  if (k >= pg.k) { return; }
  let row0 = (wid.y * DX_LANES + lid3.y) * DX_ROWS;
  load_member_keys(pass_values4.y);
  // Starting from dx's old contents and adding member by member keeps lora_dx's rounding order.
  var total: array<f32, DX_ROWS>;
  for (var i = 0u; i < DX_ROWS; i++) {
    total[i] = 0.0;
    if (pg.flag != 0u) { total[i] = dx_out[min(row0 + i, pg.rows - 1u) * pg.k + k]; }
  }
  for (var g = 0u; g < pg.n; g++) {
    var acc: array<f32, DX_ROWS>;
    for (var i = 0u; i < DX_ROWS; i++) { acc[i] = 0.0; }
    let a_off = pg.mem[g].w;
    for (var j = 0u; j < pg.r; j++) {
      let av = dx_p[a_off + j * pg.k + k];
      for (var i = 0u; i < DX_ROWS; i++) {
        let t = min(row0 + i, pg.rows - 1u);  // rows past T are computed and never stored
        acc[i] += dx_du[g * pg.region + t * pg.r + j] * av;
      }
    }
    for (var i = 0u; i < DX_ROWS; i++) {
      let t = min(row0 + i, pg.rows - 1u);
      total[i] += acc[i] * drop_factor(t * pg.k + k, g);
    }
  }
  for (var i = 0u; i < DX_ROWS; i++) {
    let t = row0 + i;
    if (t >= pg.rows) { return; }
    dx_out[t * pg.k + k] = total[i];
  }
}

// ---------------------------------------------------------------------------------------------
// group_input_grad: dx (+)= Σ_g dy_g W_g + Σ_g drop_g ∘ (du_g A_g), the whole input gradient of
// the group in one tiled product (group_linear's tiles, over rows t x columns k of dx). The
// reduction walks each member's r columns of du_g / A_g, moving the sum into `low` scaled by the
// member's dropout mask at the member's last chunk, then the concatenated output features (dy_g
// from their regions, rows of W_g). One accumulator serves every chunk, so the multiply code
// exists once (llvmpipe's compile time grows with every copy). Bindings are group_linear's:
// gl_x holds dy, gl_u du, gl_y dx; and one more binding, the pass's values.

@group(0) @binding(8) var<uniform> pass_values8: vec4<u32>;

@compute @workgroup_size(16, 16)
fn group_input_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let th = tile_thread(wid, lid3);  // th.n0: first column k of dx in this tile
  load_member_keys(pass_values8.y);
  var acc: TileAcc;
  var low: TileAcc;
  for (var i = 0u; i < 4u; i++) {
    acc[i] = vec4<f32>(0.0);
    low[i] = vec4<f32>(0.0);
  }
  let low_chunks = pg.n * pg.r_chunks;
  let chunks = low_chunks + (pg.total + LIN_BK - 1u) / LIN_BK;
  for (var c = 0u; c < chunks; c++) {
    let base = c >= low_chunks;  // uniform
    var g = 0u;
    var c0 = (c - low_chunks) * LIN_BK;
    if (!base) {
      g = c / pg.r_chunks;
      c0 = (c % pg.r_chunks) * LIN_BK;
    }
    for (var e = 0u; e < LIN_TM; e++) {
      let slot = tile_slot(th, e);  // (row, kk)
      let m = th.m0 + slot.x;
      let j = c0 + slot.y;
      var v = 0.0;
      if (m < pg.rows) {
        if (base) {
          if (j < pg.total) {
            let mg = pg.mem[member_of(j)];
            v = gl_x[mg.z + m * mg.y + (j - mg.x)];
          }
        } else if (j < pg.r) {
          v = gl_u[g * pg.region + m * pg.r + j];
        }
      }
      tile_a[slot.y * th.bm + slot.x] = v;
    }
    for (var e = 0u; e < 4u; e++) {
      let idx = th.lid + 256u * e;
      let col = idx % LIN_BN;  // consecutive threads read consecutive k of one row
      let kk = idx / LIN_BN;
      let k = th.n0 + col;
      let j = c0 + kk;
      var v = 0.0;
      if (k < pg.k) {
        if (base) {
          if (j < pg.total) {
            let gm = member_of(j);
            v = load_w(gm, (j - pg.mem[gm].x) * pg.k + k);
          }
        } else if (j < pg.r) {
          v = gl_p[pg.mem[g].w + j * pg.k + k];
        }
      }
      tile_b[kk * LIN_BN + col] = v;
    }
    tile_multiply(&acc, &tile_a, &tile_b, th);
    if (!base && c % pg.r_chunks == pg.r_chunks - 1u) {
      // The member's last chunk: its low-rank part, masked, moves to `low`.
      for (var i = 0u; i < LIN_TM; i++) {
        let m = min(th.m0 + th.ty + 16u * i, pg.rows - 1u);
        for (var jj = 0u; jj < 4u; jj++) {
          let k = min(th.n0 + th.tx + 16u * jj, pg.k - 1u);
          low[i][jj] += acc[i][jj] * drop_factor(m * pg.k + k, g);
        }
        acc[i] = vec4<f32>(0.0);
      }
    }
  }
  for (var i = 0u; i < LIN_TM; i++) {
    let m = th.m0 + th.ty + 16u * i;
    let row = acc[i] + low[i];
    for (var jj = 0u; jj < 4u; jj++) {
      let k = th.n0 + th.tx + 16u * jj;
      if (m < pg.rows && k < pg.k) {
        let at = m * pg.k + k;
        var v = row[jj];
        if (SWIGLU) {
          swiglu_epilogue(at, v);
        } else {
          if (pg.flag != 0u) { v += gl_y[at]; }
          gl_y[at] = v;
        }
      }
    }
  }
}

// With SWIGLU (a one-member group: the MLP's down projection), the input gradient dL/d(act) of
// act = silu(gate) * up is not stored: the epilogue writes dL/dgate and dL/dup instead, as
// activation.wgsl's swiglu_bwd does from a stored dL/d(act) (the same f32 value, the same
// arithmetic, so the same bits). gate|up is read through gl_w1 (unused by one member), the two
// gradients go to gl_y; their element offsets are in mem2[3] (gate, up, dgate, dup), a member
// slot no group uses.
override SWIGLU: bool = false;

fn swiglu_sigmoid(x: f32) -> f32 {
  if (x >= 0.0) {
    return 1.0 / (1.0 + exp(-x));
  }
  let e = exp(x);
  return e / (1.0 + e);
}

fn swiglu_epilogue(at: u32, dh: f32) {
  let o = pg.mem2[3];
  let g = bitcast<f32>(gl_w1[o.x + at]);
  let u = bitcast<f32>(gl_w1[o.y + at]);
  let s = swiglu_sigmoid(g);
  gl_y[o.z + at] = dh * u * s * (1.0 + g * (1.0 - s));
  gl_y[o.w + at] = dh * g * s;
}

// ---------------------------------------------------------------------------------------------
// layer_grad: group_grad for the members of several groups of one layer (q/k/v, o, gate/up:
// up to 6 members) in one dispatch, once every input is ready at the end of the layer's backward.
// Members differ in their input (K_g and its buffer: one of two x bindings) and output gradient
// (one of three dy bindings), and each has its own u_g / du_g region; the reduction per job is
// group_grad's, in the same order, so the gradients equal it bit for bit. The parameters fit one
// 256-byte uniform slot.

struct LayerGradParams {
  rows: u32,
  r: u32,
  n: u32,              // members (1..6)
  r_chunks: u32,
  scale: f32,
  flag: u32,           // accumulate into the gradients
  drop_on: u32,
  drop_threshold: u32,
  drop_inv_keep: f32,
  region: u32,         // elements between u (and du) regions
  drop_mul: u32,       // member g's mask seed: off[g].z + drop_mul * the pass's seed
  pad1: u32,
  // Member g: (offset of dy_g, N_g, offset of x, K_g) in elements of their bindings.
  io: array<vec4<u32>, 6>,
  // Member g: (offset of A_g, offset of B_g, dropout seed's add_g, packed): packed holds the u_g region
  // (bits 0-7, in regions), the du_g region (8-15), the dy binding (16-23) and the x binding (24-31).
  off: array<vec4<u32>, 6>,
}

@group(0) @binding(0) var<uniform> pl: LayerGradParams;
@group(0) @binding(1) var<storage, read> lg_dy0: array<f32>;
@group(0) @binding(2) var<storage, read> lg_dy1: array<f32>;
@group(0) @binding(3) var<storage, read> lg_dy2: array<f32>;
@group(0) @binding(4) var<storage, read> lg_x0: array<f32>;
@group(0) @binding(5) var<storage, read> lg_x1: array<f32>;
@group(0) @binding(6) var<storage, read> lg_u: array<f32>;
@group(0) @binding(7) var<storage, read> lg_du: array<f32>;
@group(0) @binding(8) var<storage, read_write> lg_out: array<f32>;
@group(0) @binding(9) var<uniform> pass_values9: vec4<u32>;

fn lg_dy(sel: u32, i: u32) -> f32 {
  if (sel == 0u) { return lg_dy0[i]; }
  if (sel == 1u) { return lg_dy1[i]; }
  return lg_dy2[i];
}

fn lg_x(sel: u32, i: u32) -> f32 {
  if (sel == 0u) { return lg_x0[i]; }
  return lg_x1[i];
}

@compute @workgroup_size(GW_COLS, GW_LANES)
fn layer_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let job = wid.y / pl.r_chunks;
  let j0 = (wid.y % pl.r_chunks) * RC;
  let grad_a = job >= pl.n;
  let g = select(job, job - pl.n, grad_a);
  let io = pl.io[g];
  let off = pl.off[g];
  let u_off = (off.w & 0xffu) * pl.region;
  let du_off = ((off.w >> 8u) & 0xffu) * pl.region;
  let dy_sel = (off.w >> 16u) & 0xffu;
  let x_sel = off.w >> 24u;
  let drop_key = dropout_key(pass_values9.y, pl.drop_mul, off.z);
  let width = select(io.y, io.w, grad_a);
  if (wid.x * GW_COLS >= width) { return; }  // uniform: this member has fewer columns
  let c = wid.x * GW_COLS + lid3.x;
  var acc: array<f32, RC>;
  for (var j = 0u; j < RC; j++) { acc[j] = 0.0; }
  if (c < width) {
    for (var t = lid3.y; t < pl.rows; t += GW_LANES) {
      let idx = t * width + c;
      var gv = 0.0;
      if (grad_a) {
        gv = lg_x(x_sel, io.z + idx);
        if (pl.drop_on != 0u) { gv *= select(0.0, pl.drop_inv_keep, dropout_hash(idx, drop_key) >= pl.drop_threshold); }
      } else {
        gv = lg_dy(dy_sel, io.x + idx);
      }
      let vrow = t * pl.r;
      for (var j = 0u; j < RC; j++) {
        let jj = min(j0 + j, pl.r - 1u);  // columns past r are computed and never stored
        var vv = 0.0;
        if (grad_a) { vv = lg_du[du_off + vrow + jj]; } else { vv = lg_u[u_off + vrow + jj]; }
        acc[j] += gv * vv;
      }
    }
  }
  let lid = lid3.y * GW_COLS + lid3.x;
  for (var j = 0u; j < RC; j++) { gw_partial[j * GW_LANES * GW_COLS + lid] = acc[j]; }
  workgroupBarrier();
  let sc = select(pl.scale, 1.0, grad_a);
  for (var o = lid; o < GW_COLS * RC; o += GW_COLS * GW_LANES) {
    let cl = o % GW_COLS;
    let jl = o / GW_COLS;
    var s = 0.0;
    for (var l = 0u; l < GW_LANES; l++) { s += gw_partial[jl * GW_LANES * GW_COLS + l * GW_COLS + cl]; }
    let cc = wid.x * GW_COLS + cl;
    let jj = j0 + jl;
    if (cc < width && jj < pl.r) {
      let at = select(off.y + cc * pl.r + jj, off.x + jj * io.w + cc, grad_a);
      var v = sc * s;
      if (pl.flag != 0u) { v += lg_out[at]; }
      lg_out[at] = v;
    }
  }
}
