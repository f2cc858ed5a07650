// Workgroup reductions through workgroup memory alone, the prelude of the families that reduce
// across a workgroup (norm, crossentropy, reduce) on devices without subgroups and in the CPU
// plan. subgroupReduce.wgsl offers the same functions built on subgroup operations; a binding
// module prepends one or the other. The including family defines WG (its workgroup size).

// The invocation ids the reductions need (subgroupReduce.wgsl's Lane adds the subgroup ids).
struct Lane {
  @builtin(local_invocation_index) lid: u32,
}

var<workgroup> wgr_sum: array<vec2<f32>, WG>;
var<workgroup> wgr_max: array<f32, WG>;
var<workgroup> wgr_arg: array<u32, WG>;

// Sums v over the workgroup with a tree (a fixed order: the same bits every run); every
// invocation gets the total. Two lanes, so that one sweep reduces two sums.
fn wg_sum2(v: vec2<f32>, lane: Lane) -> vec2<f32> {
  let lid = lane.lid;
  wgr_sum[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      wgr_sum[lid] = wgr_sum[lid] + wgr_sum[lid + s];
    }
    workgroupBarrier();
  }
  let total = wgr_sum[0];
  workgroupBarrier(); // wgr_sum is reused by the next reduction
  return total;
}

fn wg_sum(v: f32, lane: Lane) -> f32 {
  return wg_sum2(vec2<f32>(v, 0.0), lane).x;
}

// The sum of v over the workgroup, valid in invocation 0 only: one invocation adds the WG
// values in order. Cheap to compile on CPU Vulkan (lavapipe), where barrier trees take seconds;
// the serial tail is short next to the strided loops before it. No barrier after it: callers
// use it once per dispatch.
fn wg_total(v: f32, lane: Lane) -> f32 {
  wgr_sum[lane.lid] = vec2<f32>(v, 0.0);
  workgroupBarrier();
  var total = 0.0;
  if (lane.lid == 0u) {
    for (var j = 0u; j < WG; j = j + 1u) {
      total = total + wgr_sum[j].x;
    }
  }
  return total;
}

struct MaxArg {
  m: f32,
  arg: u32,
}

// The largest m over the workgroup and its arg (the lowest arg among equal maxima); every
// invocation gets it. Invocation 0 folds the WG pairs in order. Once per dispatch (no barrier
// frees its slots).
fn wg_max_arg(m: f32, arg: u32, lane: Lane) -> MaxArg {
  wgr_max[lane.lid] = m;
  wgr_arg[lane.lid] = arg;
  workgroupBarrier();
  if (lane.lid == 0u) {
    var bm = wgr_max[0];
    var bi = wgr_arg[0];
    for (var j = 1u; j < WG; j = j + 1u) {
      let mb = wgr_max[j];
      let ib = wgr_arg[j];
      let take = mb > bm || (mb == bm && ib < bi);
      bm = select(bm, mb, take);
      bi = select(bi, ib, take);
    }
    wgr_max[0] = bm;
    wgr_arg[0] = bi;
  }
  workgroupBarrier();
  return MaxArg(wgr_max[0], wgr_arg[0]);
}
