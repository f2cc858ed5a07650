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
