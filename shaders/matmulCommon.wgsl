// What matmul.wgsl (the CPU plan's kernels) and matmulGpu.wgsl (the GPU plan's) share; their
// binding modules prepend it. Both declare the bindings these helpers use: `p` (uniform Params),
// `a` (array<vec4<f32>>), `b` (array<vec4<u32>>: f32 bits or pairs of f16), `bias` and `c`
// (array<f32>).
//   C = alpha * op(A) op(B) + beta * C + bias        op(A): [M, K], op(B): [K, N], C: [M, N]

struct Params {
  m: u32,
  n: u32,
  k: u32,
  lda: u32,        // elements between rows of A as stored
  ldb: u32,        // elements between rows of B as stored
  ldc: u32,        // elements between rows of C
  off_a: u32,      // element offsets into the bound ranges
  off_b: u32,
  off_c: u32,
  off_bias: u32,
  stride_a: u32,   // elements between batch items; 0 broadcasts one matrix to every item
  stride_b: u32,
  stride_c: u32,
  alpha: f32,
  beta: f32,
  flags: u32,
  // Read by matmulGpu.wgsl only (matmul.wgsl's callers pass K, 1, 0, 0):
  k_chunk: u32,    // K range of one split (a multiple of BK), or K
  splits: u32,     // 1: write C; more: write partials [splits][M][N] into C
  lora_r: u32,     // extra K columns: s·u [M, r] times lora_b [N, r]ᵀ (0: none)
  lora_scale: f32,
}

const TRANS_A = 1u;
const TRANS_B = 2u;
// VEC_A / VEC_B: every run along the operand's contiguous dimension that the kernels read as
// one load starts at a multiple of the run (4 elements; 8 for f16 B in matmulGpu.wgsl): leading
// dimension, offset and batch stride are.
const VEC_A = 4u;
const VEC_B = 8u;
const HAS_BIAS = 16u;
const B_F16 = 32u;
const RUNTIME_FLAGS = 0xffffffffu;

// Either fixes the option bits, so a GPU compiler specialises each variant, or (all ones) leaves
// them to the uniform: lavapipe compiles every pipeline with LLVM at first dispatch, seconds each.
override FLAGS: u32 = RUNTIME_FLAGS;

fn has(f: u32) -> bool {
  if (FLAGS == RUNTIME_FLAGS) {
    return (p.flags & f) != 0u;
  }
  return (FLAGS & f) != 0u;
}

// n, as a bound the compiler cannot fold when the flags come at run time: lavapipe unrolls
// constant-count loops before LLVM sees them, which multiplies compile time, while a
// specialised pipeline keeps the constant and unrolls as GPU compilers like.
fn rolled(n: u32) -> u32 {
  if (FLAGS == RUNTIME_FLAGS) {
    return min(n, p.k + n);
  }
  return n;
}

fn a_one(i: u32) -> f32 {
  return a[i >> 2u][i & 3u];
}

fn b_one(i: u32) -> f32 {
  let half = has(B_F16);
  let w = select(i, i >> 1u, half);   // u32 word holding element i
  let u = b[w >> 2u][w & 3u];
  if (half) {
    return unpack2x16float(u)[i & 1u];
  }
  return bitcast<f32>(u);
}

// acc[i][j] is op(A)op(B) at (r0+i, c0+j). beta == 0 never reads C, so NaN there is
// overwritten, as in BLAS. The loops have run-time bounds so that they stay loops, with one
// load and one store site each: on lavapipe every site, branch and indexed matrix element
// costs compile time, and this epilogue was once most of it.
fn store_block(acc: mat4x4<f32>, r0: u32, c0: u32, batch: u32) {
  let base = p.off_c + batch * p.stride_c;
  let rows = min(4u, p.m - r0);
  let cols = min(4u, p.n - c0);
  let use_c = p.beta != 0.0;
  var bv = vec4<f32>();
  if (has(HAS_BIAS)) {
    for (var j = 0u; j < cols; j++) {
      bv[j] = bias[p.off_bias + c0 + j];
    }
  }
  for (var i = 0u; i < rows; i++) {
    let v = p.alpha * acc[i] + bv;
    for (var j = 0u; j < cols; j++) {
      let idx = base + (r0 + i) * p.ldc + c0 + j;
      var old = 0.0;
      if (use_c) {
        old = p.beta * c[idx];
      }
      c[idx] = v[j] + old;
    }
  }
}
