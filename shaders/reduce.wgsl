// Deterministic reductions: vector sums, sums of squares for the global gradient norm, and
// gradient-norm clipping that reads its coefficient from a buffer (no CPU readback in a step).
// Every sum has a fixed shape (a per-thread strided loop, then wg_total from the prelude the
// binding module puts first: workgroupReduce.wgsl or subgroupReduce.wgsl), so results are
// bit-identical from run to run.

override WG: u32 = 256u;

struct SumParams {
  n: u32,
  block: u32,        // elements per workgroup; workgroup g sums [g*block, min((g+1)*block, n))
  out_offset: u32,   // workgroup g writes out[out_offset + g]
  squared: u32,      // 1: sum of x^2
  accumulate: u32,   // 1: add to what out already holds
  groups_x: u32,     // workgroups per grid row (g = wid.y * groups_x + wid.x)
  groups: u32,       // real number of blocks (the grid may be larger)
  _pad: u32,
}

struct NormParams {
  slots: u32,        // number of partial sums of squares to add up
  max_norm: f32,
  _pad0: u32,
  _pad1: u32,
}

struct ScaleParams {
  n: u32,
  row_stride: u32,
  coef_index: u32,   // element of `coef` holding the factor
  _pad: u32,
}

@group(0) @binding(0) var<uniform> sp: SumParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn sum_blocks(@builtin(workgroup_id) wid: vec3<u32>, lane: Lane) {
  let lid = lane.lid;
  let g = wid.y * sp.groups_x + wid.x;
  if (g >= sp.groups) { return; } // whole workgroup leaves: uniform
  let start = g * sp.block;
  let end = min(start + sp.block, sp.n);
  var acc = 0.0;
  for (var i = start + lid; i < end; i = i + WG) {
    let v = x[i];
    acc = acc + select(v, v * v, sp.squared != 0u);
  }
  let total = wg_total(acc, lane);
  if (lid == 0u) {
    let o = sp.out_offset + g;
    let prev = select(0.0, out[o], sp.accumulate != 0u);
    out[o] = prev + total;
  }
}

// norm_out[0] = sqrt(sum of partials), norm_out[1] = min(1, max_norm / (norm + 1e-6)):
// torch.nn.utils.clip_grad_norm_ with the default 2-norm.
@group(0) @binding(0) var<uniform> np: NormParams;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm_out: array<f32>;

// sqrt(sum of partials[0..np.slots)), valid in thread 0.
fn norm_of_partials(lane: Lane) -> f32 {
  var acc = 0.0;
  for (var i = lane.lid; i < np.slots; i = i + WG) {
    acc = acc + partials[i];
  }
  return sqrt(wg_total(acc, lane));
}

@compute @workgroup_size(WG)
fn norm_and_clip_coef(lane: Lane) {
  let norm = norm_of_partials(lane);
  if (lane.lid == 0u) {
    norm_out[0] = norm;
    norm_out[1] = min(1.0, np.max_norm / (norm + 1e-6));
  }
}

// The optimizer's per-step state, one workgroup, after the flat sum of squares:
//   state[0] = norm, state[1] = clip coefficient (as norm_and_clip_coef),
//   state[2] = 1 when the norm is NaN or infinite (the update is skipped, as PyTorch's GradScaler
//              skips optimizer.step()), else 0,
//   state[3] = AdamW's step count, incremented only when the update is not skipped.
// Non-finite is tested on the bits: WGSL lets compilers assume floats are finite.
// Bindings 0 and 1 are norm_and_clip_coef's.
@group(0) @binding(2) var<storage, read_write> state: array<f32>;

@compute @workgroup_size(WG)
fn norm_clip_step(lane: Lane) {
  let norm = norm_of_partials(lane);
  if (lane.lid == 0u) {
    let skip = (bitcast<u32>(norm) & 0x7f800000u) == 0x7f800000u;
    state[0] = norm;
    state[1] = min(1.0, np.max_norm / (norm + 1e-6));
    state[2] = select(0.0, 1.0, skip);
    state[3] = select(state[3] + 1.0, state[3], skip);
  }
}

// y *= coef[coef_index]: the clipping step, its factor left on the GPU by norm_and_clip_coef.
@group(0) @binding(0) var<uniform> cp: ScaleParams;
@group(0) @binding(1) var<storage, read> coef: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn scale_by_buffer(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * cp.row_stride + gid.x;
  if (i >= cp.n) { return; }
  y[i] = y[i] * coef[cp.coef_index];
}
