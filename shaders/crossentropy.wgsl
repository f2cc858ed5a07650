// Masked softmax cross-entropy over a large vocabulary, one column chunk of logits at a time,
// so the full [rows, V] f32 logits never exist at once.
//
// Per-row state [rows, 4] f32: running max m, running sum s of exp(x - m), the target's logit,
// and the running argmax (a column index stored as an exact f32 integer: V < 2^24).
//   chunk_stats: folds one chunk [rows, vc] (columns v_start .. v_start+vc) into the state.
//   finalize:    row_loss = (m + log s - target_logit) * mask, row_correct = (argmax == target) * mask.
//   chunk_grad:  overwrites a recomputed chunk with (softmax - onehot(target)) * mask * grad_scale.
// Rows with mask 0 are skipped by chunk_stats (their state is never read) and get zero loss,
// zero correctness and zero gradient.
//
// Entry points alias binding slots (each uses only its own declarations), see the comments.

override WG: u32 = 256u;
// A finite stand-in for -inf: WGSL does not promise IEEE infinities, and exp(NEG_BIG - x) is 0.
const NEG_BIG: f32 = -3.0e38;

struct Params {
  rows: u32,
  vc: u32,          // columns in this chunk
  v_start: u32,     // vocabulary index of the chunk's first column
  ld: u32,          // row stride of the chunk buffer (elements)
  first: u32,       // chunk_stats: 1 = first chunk, overwrite the state instead of merging
  groups: u32,      // chunk_stats: workgroups per grid row; chunk_grad: rows per grid z-slice;
                    // finalize: threads per grid row
  grad_scale: f32,  // chunk_grad: 1 / trained tokens in the batch (the loss is their mean)
  scale_from_buffer: u32, // chunk_grad: 1 = read grad_scale from scale_in[0] instead (a value
                          // written per step, so a recorded step replays with a new scale)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
// chunk_stats
@group(0) @binding(3) var<storage, read> logits_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
// chunk_grad, finalize
@group(0) @binding(3) var<storage, read> state_in: array<f32>;
// chunk_grad
@group(0) @binding(4) var<storage, read_write> logits_out: array<f32>;
// chunk_grad
@group(0) @binding(5) var<storage, read> scale_in: array<f32>;
// finalize
@group(0) @binding(4) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> row_correct: array<f32>;

// Argmax merge: larger value wins, equal values keep the lower column.
fn takes_b(ma: f32, ia: u32, mb: f32, ib: u32) -> bool {
  return mb > ma || (mb == ma && ib < ia);
}

// One workgroup per row: an online (max, sum-exp, argmax) over the row's chunk, one pass.
@compute @workgroup_size(WG)
fn chunk_stats(@builtin(workgroup_id) wid: vec3<u32>, lane: Lane) {
  let lid = lane.lid;
  let row = wid.y * p.groups + wid.x;
  if (row >= p.rows) { return; }
  if (mask[row] == 0.0) { return; }
  let base = row * p.ld;
  var m = NEG_BIG;
  var s = 0.0;
  var idx = 0xffffffffu;
  for (var j = lid; j < p.vc; j = j + WG) {
    let x = logits_in[base + j];
    if (x > m) {
      s = s * exp(m - x) + 1.0;
      m = x;
      idx = j;
    } else {
      s = s + exp(x - m);
    }
  }
  // Across threads (with the prelude the binding module puts first, workgroupReduce.wgsl or
  // subgroupReduce.wgsl): the max and argmax first, then every thread rescales its own sum to
  // that max (one exp each), then the sums, valid in thread 0, which merges them into the state.
  let best = wg_max_arg(m, idx, lane);
  let cm = best.m;
  let cs = wg_total(s * exp(m - cm), lane);
  if (lid == 0u) {
    let ci = best.arg + p.v_start;
    let o = row * 4u;
    // The first chunk merges into an empty state.
    var om = NEG_BIG;
    var os = 0.0;
    var oi = 0xffffffffu;
    var tl = 0.0;
    if (p.first == 0u) {
      om = state[o];
      os = state[o + 1u];
      tl = state[o + 2u];
      oi = u32(state[o + 3u]);
    }
    let mx = max(om, cm);
    state[o] = mx;
    state[o + 1u] = os * exp(om - mx) + cs * exp(cm - mx);
    state[o + 3u] = f32(select(oi, ci, takes_b(om, oi, cm, ci)));
    let t = targets[row];
    if (t >= p.v_start && t - p.v_start < p.vc) {
      tl = logits_in[base + t - p.v_start];
    }
    state[o + 2u] = tl;
  }
}

// One thread per element of the chunk: x: column, y + z*groups: row.
@compute @workgroup_size(WG)
fn chunk_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.z * p.groups + gid.y;
  let j = gid.x;
  if (row >= p.rows || j >= p.vc) { return; }
  let o = row * p.ld + j;
  let w = mask[row];
  if (w == 0.0) {
    logits_out[o] = 0.0;
    return;
  }
  let m = state_in[row * 4u];
  let s = state_in[row * 4u + 1u];
  let prob = exp(logits_out[o] - m) / s;
  let onehot = select(0.0, 1.0, targets[row] == p.v_start + j);
  let scale = select(p.grad_scale, scale_in[0], p.scale_from_buffer != 0u);
  logits_out[o] = (prob - onehot) * (w * scale);
}

// One thread per row.
@compute @workgroup_size(WG)
fn finalize(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.y * p.groups + gid.x;
  if (row >= p.rows) { return; }
  let w = mask[row];
  if (w == 0.0) {
    row_loss[row] = 0.0;
    row_correct[row] = 0.0;
    return;
  }
  let o = row * 4u;
  let lse = state_in[o] + log(state_in[o + 1u]);
  row_loss[row] = (lse - state_in[o + 2u]) * w;
  row_correct[row] = select(0.0, w, u32(state_in[o + 3u]) == targets[row]);
}
