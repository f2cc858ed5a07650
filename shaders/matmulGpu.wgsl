// Matrix multiply family for real GPUs (the 'gpu' kernel plan), same problem as matmul.wgsl:
//   C = alpha * op(A) op(B) + beta * C + bias        op(A): [M, K], op(B): [K, N], C: [M, N]
// with optional extra K columns for a folded LoRA term, (x | s·u)·(W | B_lora)ᵀ.
//
// - matmul_blocked: a workgroup computes a (8*WG_Y) x (8*WG_X) tile of C, each thread an 8x8
//   block (two 4-row by two 4-column quads, half a tile apart, so neighbouring threads read
//   neighbouring vec4s of the workgroup tiles). Both tiles are held k-major, [BK][tile] in
//   vec4 quads, so the inner loop reads 2 + 2 vec4s per k for 64 multiply-adds. An operand
//   stored with K contiguous (A as [M, K], B as [N, K]) is transposed while it is copied in;
//   its quads are XOR-swizzled by k so that those scattered stores, and the reads, hit 32
//   different banks (no padding needed). f16 B is read 8 elements per 16-byte load, every
//   half used. Split-K: when `splits` > 1, workgroup z takes K range z and writes raw partial
//   sums [splits][M][N] into C (a scratch buffer), and matmul_splitk_reduce adds them in split
//   order (deterministic: no float atomics) and applies alpha, beta and bias.
// - matmul_gemv: M <= 16 (decode). A workgroup owns a 4x4 block of C and its GEMV_WG threads
//   share K, 8 at a time, then add their partial blocks in a fixed tree order.
//
// Prefixed with matmulCommon.wgsl (parameters, option flags, element reads); flags, views and
// bindings are those of matmul.wgsl, except that VEC_B for f16 B means runs of 8 start at
// multiples of 8 elements.

override WG_X: u32 = 16;     // matmul_blocked: threads along N, 8 columns each (4, 8 or 16)
override WG_Y: u32 = 16;     // matmul_blocked: threads along M, 8 rows each (4, 8 or 16)
override BK: u32 = 16;       // matmul_blocked: K depth of a tile, a multiple of 8
override GEMV_WG: u32 = 64;  // matmul_gemv: threads sharing K, a power of 2

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read> lora_u: array<f32>;
@group(0) @binding(6) var<storage, read> lora_b: array<f32>;

// Elements i..i+3 of A as stored, `count` of them real (the rest zero).
fn a_run(i: u32, count: u32, vec: bool) -> vec4<f32> {
  if (vec && count == 4u) {
    return a[i >> 2u];
  }
  var v = vec4<f32>();
  for (var e = 0u; e < count; e++) {
    v[e] = a_one(i + e);
  }
  return v;
}

// A run of B as stored: 8 elements for f16 (one 16-byte load, every half used), 4 for f32;
// `count` of them real.
fn b_len() -> u32 {
  return select(4u, 8u, has(B_F16));
}

// Elements 0-3 in lo, 4-7 in hi.
struct Run {
  lo: vec4<f32>,
  hi: vec4<f32>,
}

fn b_run(i: u32, count: u32, vec: bool) -> Run {
  if (vec && count == b_len()) {
    if (has(B_F16)) {
      let q = b[i >> 3u];
      return Run(vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y)), vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w)));
    }
    return Run(bitcast<vec4<f32>>(b[i >> 2u]), vec4<f32>());
  }
  var lo = vec4<f32>();
  var hi = vec4<f32>();
  for (var e = 0u; e < count; e++) {
    let v = b_one(i + e);
    if (e < 4u) {
      lo[e] = v;
    } else {
      hi[e - 4u] = v;
    }
  }
  return Run(lo, hi);
}

// How many of `len` elements from `start` exist before `end`; 0 when the cross index is out.
fn run_count(start: u32, want: u32, end: u32, cross_ok: bool) -> u32 {
  if (!cross_ok || start >= end) {
    return 0u;
  }
  return min(want, end - start);
}

// Writes a 4x4 block at (r0, c0) of output item `batch`: alpha, beta and bias, or, when
// `partial`, the raw sums into split `split`'s [M][N] slice.
fn store_quad(acc: mat4x4<f32>, r0: u32, c0: u32, batch: u32, partial: bool, split: u32) {
  if (r0 >= p.m || c0 >= p.n) {
    return;
  }
  if (partial) {
    let rows = min(4u, p.m - r0);
    let cols = min(4u, p.n - c0);
    let base = split * p.m * p.n;
    for (var i = 0u; i < rows; i++) {
      for (var j = 0u; j < cols; j++) {
        c[base + (r0 + i) * p.n + c0 + j] = acc[i][j];
      }
    }
    return;
  }
  store_block(acc, r0, c0, batch);
}

// ---- matmul_blocked --------------------------------------------------------------------------

// tile_a[k][m] and tile_b[k][n], in quads: row k holds 2*WG_Y (2*WG_X) quads. Quad q of row k
// sits at q ^ swz(k): a transposing fill (consecutive threads along k, one tile column each)
// then stores to 8 different quads, i.e. 32 different banks, instead of one bank 8 times.
var<workgroup> tile_a: array<vec4<f32>, 2u * WG_Y * BK>;
var<workgroup> tile_b: array<vec4<f32>, 2u * WG_X * BK>;

fn swz(k: u32) -> u32 {
  return (k >> 2u) & 7u;
}

fn put_a(k: u32, m: u32, v: f32) {
  tile_a[k * 2u * WG_Y + ((m >> 2u) ^ swz(k))][m & 3u] = v;
}

fn put_b(k: u32, n: u32, v: f32) {
  tile_b[k * 2u * WG_X + ((n >> 2u) ^ swz(k))][n & 3u] = v;
}

// Copies op(A)[row0 .. row0 + 8*WG_Y, k0 .. k0 + BK) into tile_a; zero past M and k_end.
fn fill_a(tid: u32, threads: u32, base: u32, row0: u32, k0: u32, k_end: u32) {
  let tm = 8u * WG_Y;
  let va = has(VEC_A);
  if (has(TRANS_A)) {
    // Stored [K, M]: runs along m, copied as whole quads.
    for (var u = tid; u < rolled(BK * 2u * WG_Y); u += threads) {
      let kk = u / (2u * WG_Y);
      let q = u % (2u * WG_Y);
      let n = run_count(row0 + 4u * q, 4u, p.m, k0 + kk < k_end);
      tile_a[kk * 2u * WG_Y + (q ^ swz(kk))] = a_run(base + (k0 + kk) * p.lda + row0 + 4u * q, n, va);
    }
  } else {
    // Stored [M, K]: runs along k, transposed into the tile.
    for (var u = tid; u < rolled(tm * (BK / 4u)); u += threads) {
      let m = u / (BK / 4u);
      let kk = 4u * (u % (BK / 4u));
      let n = run_count(k0 + kk, 4u, k_end, row0 + m < p.m);
      let v = a_run(base + (row0 + m) * p.lda + k0 + kk, n, va);
      for (var e = 0u; e < rolled(4u); e++) {
        put_a(kk + e, m, v[e]);
      }
    }
  }
}

// Copies op(B)[k0 .. k0 + BK, col0 .. col0 + 8*WG_X) into tile_b; zero past N and k_end.
fn fill_b(tid: u32, threads: u32, base: u32, col0: u32, k0: u32, k_end: u32) {
  let tn = 8u * WG_X;
  let vb = has(VEC_B);
  let len = b_len();
  if (has(TRANS_B)) {
    // Stored [N, K]: runs along k, transposed into the tile.
    let per = BK / len;
    for (var u = tid; u < rolled(tn * per); u += threads) {
      let n = u / per;
      let kk = len * (u % per);
      let cnt = run_count(k0 + kk, len, k_end, col0 + n < p.n);
      let v = b_run(base + (col0 + n) * p.ldb + k0 + kk, cnt, vb);
      for (var e = 0u; e < rolled(len); e++) {
        put_b(kk + e, n, select(v.lo, v.hi, e >= 4u)[e & 3u]);
      }
    }
  } else {
    // Stored [K, N]: runs along n, copied as whole quads.
    let per = tn / len;
    for (var u = tid; u < rolled(BK * per); u += threads) {
      let kk = u / per;
      let j = len * (u % per);
      let cnt = run_count(col0 + j, len, p.n, k0 + kk < k_end);
      let v = b_run(base + (k0 + kk) * p.ldb + col0 + j, cnt, vb);
      let row = kk * 2u * WG_X;
      tile_b[row + ((j >> 2u) ^ swz(kk))] = v.lo;
      if (len == 8u) {
        tile_b[row + (((j >> 2u) + 1u) ^ swz(kk))] = v.hi;
      }
    }
  }
}

// The folded LoRA columns r0 .. r0 + BK: s·u into tile_a, lora_b into tile_b (both stored with
// r contiguous, small; consecutive threads along m or n keep the stores conflict-free).
fn fill_lora(tid: u32, threads: u32, row0: u32, col0: u32, r0: u32) {
  let r = p.lora_r;
  for (var u = tid; u < rolled(BK * 8u * WG_Y); u += threads) {
    let kk = u / (8u * WG_Y);
    let m = u % (8u * WG_Y);
    var v = 0.0;
    if (row0 + m < p.m && r0 + kk < r) {
      v = p.lora_scale * lora_u[(row0 + m) * r + r0 + kk];
    }
    put_a(kk, m, v);
  }
  for (var u = tid; u < rolled(BK * 8u * WG_X); u += threads) {
    let kk = u / (8u * WG_X);
    let n = u % (8u * WG_X);
    var v = 0.0;
    if (col0 + n < p.n && r0 + kk < r) {
      v = lora_b[(col0 + n) * r + r0 + kk];
    }
    put_b(kk, n, v);
  }
}

// The four 4x4 quads of a thread's 8x8 block: rows half r, columns half c; column i of a quad is its row i.
struct Block {
  q00: mat4x4<f32>,
  q01: mat4x4<f32>,
  q10: mat4x4<f32>,
  q11: mat4x4<f32>,
}

fn tile_step(acc: ptr<function, Block>, ty: u32, tx: u32) {
  for (var kk = 0u; kk < rolled(BK); kk++) {
    let s = swz(kk);
    let ra = kk * 2u * WG_Y;
    let rb = kk * 2u * WG_X;
    let a0 = tile_a[ra + (ty ^ s)];
    let a1 = tile_a[ra + ((WG_Y + ty) ^ s)];
    let b0 = tile_b[rb + (tx ^ s)];
    let b1 = tile_b[rb + ((WG_X + tx) ^ s)];
    (*acc).q00 += mat4x4<f32>(a0.x * b0, a0.y * b0, a0.z * b0, a0.w * b0);
    (*acc).q01 += mat4x4<f32>(a0.x * b1, a0.y * b1, a0.z * b1, a0.w * b1);
    (*acc).q10 += mat4x4<f32>(a1.x * b0, a1.y * b0, a1.z * b0, a1.w * b0);
    (*acc).q11 += mat4x4<f32>(a1.x * b1, a1.y * b1, a1.z * b1, a1.w * b1);
  }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_blocked(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let threads = WG_X * WG_Y;
  let row0 = wid.y * 8u * WG_Y;
  let col0 = wid.x * 8u * WG_X;
  let split_k = p.splits > 1u;
  // Split-K problems are never batched, so z is the split; otherwise it is the batch item.
  let item = select(wid.z, 0u, split_k);
  let k_begin = select(0u, wid.z * p.k_chunk, split_k);
  let k_end = min(p.k, k_begin + p.k_chunk);
  let base_a = p.off_a + item * p.stride_a;
  let base_b = p.off_b + item * p.stride_b;
  var acc: Block;
  for (var k0 = k_begin; k0 < k_end; k0 += BK) {
    fill_a(tid, threads, base_a, row0, k0, k_end);
    fill_b(tid, threads, base_b, col0, k0, k_end);
    workgroupBarrier();
    tile_step(&acc, lid.y, lid.x);
    workgroupBarrier();
  }
  for (var r0 = 0u; r0 < p.lora_r; r0 += BK) {
    fill_lora(tid, threads, row0, col0, r0);
    workgroupBarrier();
    tile_step(&acc, lid.y, lid.x);
    workgroupBarrier();
  }
  let r = row0 + 4u * lid.y;
  let cc = col0 + 4u * lid.x;
  store_quad(acc.q00, r, cc, item, split_k, wid.z);
  store_quad(acc.q01, r, cc + 4u * WG_X, item, split_k, wid.z);
  store_quad(acc.q10, r + 4u * WG_Y, cc, item, split_k, wid.z);
  store_quad(acc.q11, r + 4u * WG_Y, cc + 4u * WG_X, item, split_k, wid.z);
}

// ---- matmul_splitk_reduce --------------------------------------------------------------------

// C = alpha * (sum over splits, in order, of the partials bound as A) + beta * C + bias.
@compute @workgroup_size(64, 1, 1)
fn matmul_splitk_reduce(@builtin(global_invocation_id) gid: vec3<u32>) {
  let mn = p.m * p.n;
  let idx = gid.x + gid.y * 65535u * 64u;
  if (idx >= mn) {
    return;
  }
  var s = 0.0;
  for (var z = 0u; z < p.splits; z++) {
    s += a_one(z * mn + idx);
  }
  let row = idx / p.n;
  let col = idx % p.n;
  var v = p.alpha * s;
  if (has(HAS_BIAS)) {
    v += bias[p.off_bias + col];
  }
  let ci = p.off_c + row * p.ldc + col;
  if (p.beta != 0.0) {
    v += p.beta * c[ci];
  }
  c[ci] = v;
}

// Elements i..i+7 of B, i % 8 == 0 (f16: one load; f32: two).
fn b_oct(i: u32) -> Run {
  if (has(B_F16)) {
    return b_run(i, 8u, true);
  }
  return Run(bitcast<vec4<f32>>(b[i >> 2u]), bitcast<vec4<f32>>(b[(i >> 2u) + 1u]));
}

fn a_vec(i: u32) -> vec4<f32> {
  return a[i >> 2u];
}

// ---- matmul_gemv -----------------------------------------------------------------------------

var<workgroup> gemv_part: array<mat4x4<f32>, GEMV_WG>;

@compute @workgroup_size(GEMV_WG, 1, 1)
fn matmul_gemv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let r0 = wid.y * 4u;
  let c0 = wid.x * 4u;
  let base_a = p.off_a + wid.z * p.stride_a;
  let base_b = p.off_b + wid.z * p.stride_b;
  let lane = vec4<u32>(0u, 1u, 2u, 3u);
  // Past the edge, rows and columns repeat the last one: loads stay in range, results are dropped.
  let rows = min(vec4<u32>(r0) + lane, vec4<u32>(p.m - 1u));
  let cols = min(vec4<u32>(c0) + lane, vec4<u32>(p.n - 1u));
  let ta = has(TRANS_A);
  let tb = has(TRANS_B);
  var acc = mat4x4<f32>();   // acc[j][i]: row rows[i], column cols[j] (transposed at the end)
  var k_done = 0u;
  if (!ta && tb && has(VEC_A) && has(VEC_B)) {
    // x·Wᵀ, the decode shape: both operands have K contiguous; 8 k per step per thread.
    k_done = p.k & ~7u;
    for (var k0 = 8u * tid; k0 < k_done; k0 += 8u * GEMV_WG) {
      // xl[i], xh[i]: A(rows[i], k0..k0+3) and (k0+4..k0+7).
      let ia = vec4<u32>(base_a + k0) + rows * p.lda;
      let xl = transpose(mat4x4<f32>(a_vec(ia.x), a_vec(ia.y), a_vec(ia.z), a_vec(ia.w)));
      let xh = transpose(mat4x4<f32>(a_vec(ia.x + 4u), a_vec(ia.y + 4u), a_vec(ia.z + 4u), a_vec(ia.w + 4u)));
      let ib = vec4<u32>(base_b + k0) + cols * p.ldb;
      let w0 = b_oct(ib.x);
      let w1 = b_oct(ib.y);
      let w2 = b_oct(ib.z);
      let w3 = b_oct(ib.w);
      // Column j of the step's block is xl·lo_j + xh·hi_j over the 4 rows.
      acc += mat4x4<f32>(xl * w0.lo + xh * w0.hi, xl * w1.lo + xh * w1.hi, xl * w2.lo + xh * w2.hi, xl * w3.lo + xh * w3.hi);
    }
  }
  // The K tail, or all of K for other layouts: one k per thread per step, scalar loads.
  for (var k = k_done + tid; k < p.k; k += GEMV_WG) {
    var av: vec4<f32>;
    var bv: vec4<f32>;
    for (var o = 0u; o < rolled(4u); o++) {
      av[o] = a_one(base_a + select(rows[o] * p.lda + k, k * p.lda + rows[o], ta));
      bv[o] = b_one(base_b + select(k * p.ldb + cols[o], cols[o] * p.ldb + k, tb));
    }
    acc[0] += bv.x * av;
    acc[1] += bv.y * av;
    acc[2] += bv.z * av;
    acc[3] += bv.w * av;
  }
  gemv_part[tid] = transpose(acc);
  for (var span = GEMV_WG / 2u; span > 0u; span >>= 1u) {
    workgroupBarrier();
    if (tid < span) {
      gemv_part[tid] += gemv_part[tid + span];
    }
  }
  workgroupBarrier();
  if (tid == 0u) {
    store_quad(gemv_part[0], r0, c0, wid.z, false, 0u);
  }
}
