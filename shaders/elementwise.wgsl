// Elementwise vector ops: y = a*x + b*y (residual adds, gradient accumulation, scaling).
// One thread per element; large vectors use a 2-D grid because a dimension caps at 65535 groups.

struct Params {
  n: u32,
  row_stride: u32,   // threads per grid row = groups_x * 256
  a: f32,
  b: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn axpby(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * p.row_stride + gid.x;
  if (i >= p.n) { return; }
  y[i] = p.a * x[i] + p.b * y[i];
}

// Column-block copy between row-major matrices: dst[r, dst_off + c] = src[r, src_off + c] for
// c < width (or += with accumulate). Splits GPT-2's fused qkv into q, k, v and merges their
// gradients back.
struct CopyParams {
  rows: u32,
  width: u32,
  src_stride: u32,
  src_off: u32,
  dst_stride: u32,
  dst_off: u32,
  row_stride: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> cp: CopyParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn copy_columns(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * cp.row_stride + gid.x;
  if (i >= cp.rows * cp.width) { return; }
  let r = i / cp.width;
  let c = i % cp.width;
  let v = src[r * cp.src_stride + cp.src_off + c];
  let d = r * cp.dst_stride + cp.dst_off + c;
  if (cp.accumulate != 0u) {
    dst[d] = dst[d] + v;
  } else {
    dst[d] = v;
  }
}
