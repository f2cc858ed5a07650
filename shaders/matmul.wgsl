// Matrix multiply family for the CPU plan, row-major, batched (prefixed with matmulCommon.wgsl):
//   C = alpha * op(A) op(B) + beta * C + bias        op(A): [M, K], op(B): [K, N], C: [M, N]
// A is stored [M, K] (or [K, M] when TRANS_A), B is stored [K, N] (or [N, K] when TRANS_B, the
// Hugging Face [out, in] weight layout). Every view has its own leading dimension and element
// offset, so callers can address a column block of C or a row range of B bound as a range.
//
// Three kernels, each thread computing 4-column strips of C in registers:
// - matmul_rows: a workgroup of WG_X threads owns 8 rows, a thread 4 columns of them,
//   reading A and B straight from storage (no workgroup memory, no barriers). Every A element is
//   the same for the whole workgroup: the CPU plan's kernel where matmul_rows_shared
//   (matmulSubgroup.wgsl: the same, with A loaded once per subgroup) cannot run.
// - matmul_reg: a 4x4 block per thread, A and B both read per thread: the CPU plan's kernel
//   before matmul_rows, kept as a tuning choice.
// - matmul_tiled stages a (4*WG_Y) x BK slice of A and a BK x (4*WG_X) slice of B in workgroup
//   memory, 4x4 per thread: the usual shape for GPUs before matmulGpu.wgsl.
//
// Options (transposes, alignment, bias, f16 B) are bits of `flags` (matmulCommon.wgsl). Under
// run-time flags one pipeline serves every variant; for the same reason the code keeps the
// number of storage-access sites small: on lavapipe each one costs compile time.
//
// B is bound as array<vec4<u32>> whatever its dtype: f32 elements are bitcast, f16 elements
// are widened with unpack2x16float, which needs no shader-f16, so f16 weights also work on
// devices without it (SwiftShader) and one binding type serves both.

override WG_X: u32 = 8;   // threads along N; each covers 4 columns
override WG_Y: u32 = 8;   // threads along M; each covers 4 rows
override BK: u32 = 16;    // matmul_tiled: K depth of a workgroup tile, a multiple of 4

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// Elements i..i+3 of A; i % 4 == 0.
fn a_vec(i: u32) -> vec4<f32> {
  return a[i >> 2u];
}

// Elements i..i+3 of B; i % 4 == 0.
fn b_vec(i: u32) -> vec4<f32> {
  let half = has(B_F16);
  let w = select(i, i >> 1u, half);
  let q = b[w >> 2u];
  if (half) {
    let h = select(q.xy, q.zw, (w & 2u) != 0u);
    return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
  }
  return bitcast<vec4<f32>>(q);
}

// A(row, k) and B(k, col) in the logical orientation.
fn a_at(base: u32, row: u32, k: u32) -> f32 {
  return a_one(base + select(row * p.lda + k, k * p.lda + row, has(TRANS_A)));
}

fn b_at(base: u32, k: u32, col: u32) -> f32 {
  return b_one(base + select(k * p.ldb + col, col * p.ldb + k, has(TRANS_B)));
}

// ---- matmul_reg ------------------------------------------------------------------------------

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_reg(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r0 = gid.y * 4u;
  let c0 = gid.x * 4u;
  if (r0 >= p.m || c0 >= p.n) {
    return;
  }
  let base_a = p.off_a + gid.z * p.stride_a;
  let base_b = p.off_b + gid.z * p.stride_b;
  let lane = vec4<u32>(0u, 1u, 2u, 3u);
  // Past the edge, rows and columns repeat the last one: loads stay in range, results are dropped.
  let rows = min(vec4<u32>(r0) + lane, vec4<u32>(p.m - 1u));
  let cols = min(vec4<u32>(c0) + lane, vec4<u32>(p.n - 1u));
  var acc = mat4x4<f32>();
  var k_done = 0u;
  if (has(VEC_A) && has(VEC_B)) {
    let ta = has(TRANS_A);
    let tb = has(TRANS_B);
    // Each step loads 4 runs of 4 from A and from B, wherever they are contiguous:
    // la[o] is A(rows[o], k0..k0+3), or A(rows, k0+o) when A is stored transposed;
    // lb[o] is B(k0+o, cols), or B(k0..k0+3, cols[o]) when B is stored transposed.
    // A vector run may pass M or N: those lanes only feed results that are dropped.
    var sa = select(vec4<u32>(base_a) + rows * p.lda, vec4<u32>(base_a + r0) + lane * p.lda, ta);
    let step_a = vec4<u32>(select(4u, 4u * p.lda, ta));
    var sb = select(vec4<u32>(base_b + c0) + lane * p.ldb, vec4<u32>(base_b) + cols * p.ldb, tb);
    let step_b = vec4<u32>(select(4u * p.ldb, 4u, tb));
    k_done = p.k & ~3u;
    for (var k0 = 0u; k0 < k_done; k0 += 4u) {
      let la = mat4x4<f32>(a_vec(sa.x), a_vec(sa.y), a_vec(sa.z), a_vec(sa.w));
      let lb = mat4x4<f32>(b_vec(sb.x), b_vec(sb.y), b_vec(sb.z), b_vec(sb.w));
      // at[i] = A(rows[i], k0..k0+3), bt[kk] = B(k0+kk, cols); column i of bt * at is
      // sum_kk B(k0+kk, cols) * A(rows[i], k0+kk).
      let lat = transpose(la);
      let lbt = transpose(lb);
      let at = mat4x4<f32>(select(la[0], lat[0], ta), select(la[1], lat[1], ta), select(la[2], lat[2], ta), select(la[3], lat[3], ta));
      let bt = mat4x4<f32>(select(lb[0], lbt[0], tb), select(lb[1], lbt[1], tb), select(lb[2], lbt[2], tb), select(lb[3], lbt[3], tb));
      acc += bt * at;
      sa += step_a;
      sb += step_b;
    }
  }
  // The K tail, or all of K for unaligned operands: one k at a time, scalar loads.
  for (var k = k_done; k < p.k; k++) {
    var av: vec4<f32>;
    var bv: vec4<f32>;
    for (var o = 0u; o < rolled(4u); o++) {
      av[o] = a_at(base_a, rows[o], k);
      bv[o] = b_at(base_b, k, cols[o]);
    }
    acc[0] += av.x * bv;
    acc[1] += av.y * bv;
    acc[2] += av.z * bv;
    acc[3] += av.w * bv;
  }
  store_block(acc, r0, c0, gid.z);
}

// ---- matmul_tiled ----------------------------------------------------------------------------

// Each tile keeps its operand's storage layout, in runs of 4 along the contiguous dimension:
// tile_a is [4*WG_Y rows][BK/4 + 1] runs, or [BK][WG_Y] runs when A is stored transposed;
// tile_b is [BK][WG_X] runs, or [4*WG_X columns][BK/4 + 1] runs when B is stored transposed.
// Filling is then a straight copy, and the inner loop reads 4 runs of each per 4 k. The spare
// run on rows that lie along k puts neighbouring rows in different memory banks.
var<workgroup> tile_a: array<vec4<f32>, (BK + 4u) * WG_Y>;
var<workgroup> tile_b: array<vec4<f32>, (BK + 4u) * WG_X>;

// The run of 4 starting at stored element i: `count` of them exist (the rest are past M, N or
// K and read as zero so partial tiles add nothing); `vec` when it is one aligned load.
fn a_run(i: u32, count: u32, vec: bool) -> vec4<f32> {
  if (vec && count == 4u) {
    return a_vec(i);
  }
  var v = vec4<f32>();
  for (var e = 0u; e < count; e++) {
    v[e] = a_one(i + e);
  }
  return v;
}

fn b_run(i: u32, count: u32, vec: bool) -> vec4<f32> {
  if (vec && count == 4u) {
    return b_vec(i);
  }
  var v = vec4<f32>();
  for (var e = 0u; e < count; e++) {
    v[e] = b_one(i + e);
  }
  return v;
}

// How many of the 4 elements from `start` along a dimension of length `len` exist, or 0 when
// the cross index is out of its range.
fn run_len(start: u32, len: u32, cross_ok: bool) -> u32 {
  if (!cross_ok || start >= len) {
    return 0u;
  }
  return min(4u, len - start);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_tiled(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let threads = WG_X * WG_Y;
  let kq = BK / 4u;
  let row0 = wid.y * WG_Y * 4u;
  let col0 = wid.x * WG_X * 4u;
  let base_a = p.off_a + wid.z * p.stride_a;
  let base_b = p.off_b + wid.z * p.stride_b;
  let ta = has(TRANS_A);
  let tb = has(TRANS_B);
  let va = has(VEC_A);
  let vb = has(VEC_B);
  // Where this thread's 4 runs sit in the tiles, and how far they move per 4 k.
  let lane = vec4<u32>(0u, 1u, 2u, 3u);
  let ia0 = select((vec4<u32>(4u * lid.y) + lane) * (kq + 1u), lane * WG_Y + vec4<u32>(lid.y), ta);
  let ia_step = vec4<u32>(select(1u, 4u * WG_Y, ta));
  let ib0 = select(lane * WG_X + vec4<u32>(lid.x), (vec4<u32>(4u * lid.x) + lane) * (kq + 1u), tb);
  let ib_step = vec4<u32>(select(4u * WG_X, 1u, tb));
  // Tile fills walk A and B as stored: rows of A are M (or K when transposed), rows of B are
  // K (or N when transposed); k0 moves along whichever of the two is K.
  let a_per = select(kq, WG_Y, ta);   // runs per stored row of the tile
  let a_pitch = select(kq + 1u, WG_Y, ta);
  let a_outer_len = select(p.m, p.k, ta);
  let a_inner_len = select(p.k, p.m, ta);
  let b_per = select(WG_X, kq, tb);
  let b_pitch = select(WG_X, kq + 1u, tb);
  let b_outer_len = select(p.k, p.n, tb);
  let b_inner_len = select(p.n, p.k, tb);
  var acc = mat4x4<f32>();
  for (var k0 = 0u; k0 < p.k; k0 += BK) {
    let a_outer0 = select(row0, k0, ta);
    let a_inner0 = select(k0, row0, ta);
    let b_outer0 = select(k0, col0, tb);
    let b_inner0 = select(col0, k0, tb);
    // Run u is (stored row o, 4 elements from q) of the operand as stored.
    for (var u = tid; u < WG_Y * BK; u += threads) {
      let o = u / a_per;
      let q = 4u * (u % a_per);
      let outer = a_outer0 + o;
      let inner = a_inner0 + q;
      tile_a[o * a_pitch + q / 4u] = a_run(base_a + outer * p.lda + inner, run_len(inner, a_inner_len, outer < a_outer_len), va);
    }
    for (var u = tid; u < WG_X * BK; u += threads) {
      let o = u / b_per;
      let q = 4u * (u % b_per);
      let outer = b_outer0 + o;
      let inner = b_inner0 + q;
      tile_b[o * b_pitch + q / 4u] = b_run(base_b + outer * p.ldb + inner, run_len(inner, b_inner_len, outer < b_outer_len), vb);
    }
    workgroupBarrier();
    var ia = ia0;
    var ib = ib0;
    for (var kk = 0u; kk < rolled(BK); kk += 4u) {
      let la = mat4x4<f32>(tile_a[ia.x], tile_a[ia.y], tile_a[ia.z], tile_a[ia.w]);
      let lb = mat4x4<f32>(tile_b[ib.x], tile_b[ib.y], tile_b[ib.z], tile_b[ib.w]);
      let lat = transpose(la);
      let lbt = transpose(lb);
      let at = mat4x4<f32>(select(la[0], lat[0], ta), select(la[1], lat[1], ta), select(la[2], lat[2], ta), select(la[3], lat[3], ta));
      let bt = mat4x4<f32>(select(lb[0], lbt[0], tb), select(lb[1], lbt[1], tb), select(lb[2], lbt[2], tb), select(lb[3], lbt[3], tb));
      acc += bt * at;
      ia += ia_step;
      ib += ib_step;
    }
    workgroupBarrier();
  }
  let r0 = row0 + 4u * lid.y;
  let c0 = col0 + 4u * lid.x;
  if (r0 < p.m && c0 < p.n) {
    store_block(acc, r0, c0, wid.z);
  }
}

// ---- matmul_rows -----------------------------------------------------------------------------

// A workgroup of WG_X threads owns 8 rows of C (two blocks of 4, acc0 and acc1), a thread a
// 4-column strip of them. Every A element a thread reads is then the same for the whole
// workgroup (its address comes from the workgroup id and k only), and each B element feeds 8
// multiply-adds (4 in matmul_reg). lavapipe still loads each A element once per lane: it
// broadcasts only loads at constant offsets, which is what matmul_rows_shared works around. The
// two blocks are named variables, not an array: lavapipe keeps those in registers.

// bt[o] = op(B)(k0 + o, c0..c0+3), from the 4 runs at sb + off: B(k0+o, c0..c0+3) as stored,
// or B(k0..k0+3, col o) when B is stored transposed.
fn strip_b(sb: vec4<u32>, off: u32, tb: bool) -> mat4x4<f32> {
  let lb = mat4x4<f32>(b_vec(sb.x + off), b_vec(sb.y + off), b_vec(sb.z + off), b_vec(sb.w + off));
  let lbt = transpose(lb);
  return mat4x4<f32>(select(lb[0], lbt[0], tb), select(lb[1], lbt[1], tb), select(lb[2], lbt[2], tb), select(lb[3], lbt[3], tb));
}

// at[i] = op(A)(r + i, k0..k0+3), from A(r+i, k0..k0+3) as stored or, when A is stored
// transposed, A(k0+o, r..r+3). Rows past M repeat the last one (or the last whole run of 4).
fn block_a(base_a: u32, r: u32, k0: u32, ta: bool) -> mat4x4<f32> {
  let lane = vec4<u32>(0u, 1u, 2u, 3u);
  let last = p.m - 1u;
  let rows = min(vec4<u32>(r) + lane, vec4<u32>(last));
  let sa = select(vec4<u32>(base_a + k0) + rows * p.lda, vec4<u32>(base_a + min(r, last & ~3u)) + (vec4<u32>(k0) + lane) * p.lda, ta);
  let la = mat4x4<f32>(a_vec(sa.x), a_vec(sa.y), a_vec(sa.z), a_vec(sa.w));
  let lat = transpose(la);
  return mat4x4<f32>(select(la[0], lat[0], ta), select(la[1], lat[1], ta), select(la[2], lat[2], ta), select(la[3], lat[3], ta));
}

// acc[i] += op(A)(r + i, k) * bv: one k of the scalar path.
fn tail_block(acc: mat4x4<f32>, base_a: u32, r: u32, k: u32, bv: vec4<f32>) -> mat4x4<f32> {
  let last = p.m - 1u;
  return acc + mat4x4<f32>(a_at(base_a, min(r, last), k) * bv, a_at(base_a, min(r + 1u, last), k) * bv,
                           a_at(base_a, min(r + 2u, last), k) * bv, a_at(base_a, min(r + 3u, last), k) * bv);
}

// The 4 runs strip_b reads at k = 0 for the strip from column c0. Threads past N repeat the
// last column (or the last whole run of 4 along N); their results are dropped.
fn strip_start(base_b: u32, c0: u32, tb: bool) -> vec4<u32> {
  let lane = vec4<u32>(0u, 1u, 2u, 3u);
  let cols = min(vec4<u32>(c0) + lane, vec4<u32>(p.n - 1u));
  let c0_run = min(c0, (p.n - 1u) & ~3u);
  return select(vec4<u32>(base_b + c0_run) + lane * p.ldb, vec4<u32>(base_b) + cols * p.ldb, tb);
}

// What follows the vector loop in matmul_rows and matmul_rows_shared: the K tail from k_done (or
// all of K for unaligned operands), one k at a time with scalar loads, then the store of both
// blocks of 4 rows.
fn finish_rows(acc0_in: mat4x4<f32>, acc1_in: mat4x4<f32>, k_done: u32, base_a: u32, base_b: u32, r0: u32, c0: u32, batch: u32) {
  let cols = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.n - 1u));
  var acc0 = acc0_in;
  var acc1 = acc1_in;
  for (var k = k_done; k < p.k; k++) {
    var bv: vec4<f32>;
    for (var o = 0u; o < rolled(4u); o++) {
      bv[o] = b_at(base_b, k, cols[o]);
    }
    acc0 = tail_block(acc0, base_a, r0, k, bv);
    acc1 = tail_block(acc1, base_a, r0 + 4u, k, bv);
  }
  if (c0 < p.n) {
    store_block(acc0, r0, c0, batch);
    if (r0 + 4u < p.m) {
      store_block(acc1, r0 + 4u, c0, batch);
    }
  }
}

@compute @workgroup_size(WG_X, 1, 1)
fn matmul_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r0 = wid.y * 8u;
  let c0 = (wid.x * WG_X + lid.x) * 4u;
  let base_a = p.off_a + wid.z * p.stride_a;
  let base_b = p.off_b + wid.z * p.stride_b;
  var acc0 = mat4x4<f32>();
  var acc1 = mat4x4<f32>();
  var k_done = 0u;
  if (has(VEC_A) && has(VEC_B)) {
    let ta = has(TRANS_A);
    let tb = has(TRANS_B);
    let sb = strip_start(base_b, c0, tb);
    let step_b = select(4u * p.ldb, 4u, tb);
    k_done = p.k & ~3u;
    for (var k0 = 0u; k0 < k_done; k0 += 4u) {
      let bt = strip_b(sb, (k0 / 4u) * step_b, tb);
      acc0 += bt * block_a(base_a, r0, k0, ta);
      acc1 += bt * block_a(base_a, r0 + 4u, k0, ta);
    }
  }
  finish_rows(acc0, acc1, k_done, base_a, base_b, r0, c0, wid.z);
}
