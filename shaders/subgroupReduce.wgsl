enable subgroups;
requires subgroup_id;

// Workgroup reductions built on subgroup operations: the same functions as
// workgroupReduce.wgsl, for the GPU plan on devices with the 'subgroups' feature and the
// subgroup_id language extension. Each subgroup reduces its lanes in registers, one lane per
// subgroup writes the partial to slot subgroup_id, and after one barrier every invocation adds
// the num_subgroups partials in slot order. Correct for any subgroup size, subgroups that are
// not full, and any mapping of invocations to subgroups (nothing assumes local index =
// subgroup_id * size + lane); deterministic wherever the subgroup operations are. The order of
// additions differs from workgroupReduce.wgsl's, so results may differ from it in the last bits.
// The including family defines WG (its workgroup size, an upper bound on num_subgroups).

struct Lane {
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_id) sg: u32,
  @builtin(num_subgroups) nsg: u32,
}

var<workgroup> sgr_sum: array<vec2<f32>, WG>;
var<workgroup> sgr_max: array<f32, WG>;
var<workgroup> sgr_arg: array<u32, WG>;

// Sums v over the workgroup; every invocation gets the total (the same bits in every one).
// No barrier after it: wg_sum2 adds the one that lets the slots be reused.
fn wg_total2(v: vec2<f32>, lane: Lane) -> vec2<f32> {
  let s = subgroupAdd(v);
  if (subgroupElect()) { sgr_sum[lane.sg] = s; }
  workgroupBarrier();
  var total = sgr_sum[0];
  for (var k = 1u; k < lane.nsg; k = k + 1u) {
    total = total + sgr_sum[k];
  }
  return total;
}

fn wg_sum2(v: vec2<f32>, lane: Lane) -> vec2<f32> {
  let total = wg_total2(v, lane);
  workgroupBarrier(); // sgr_sum is reused by the next reduction
  return total;
}

fn wg_sum(v: f32, lane: Lane) -> f32 {
  return wg_sum2(vec2<f32>(v, 0.0), lane).x;
}

// As workgroupReduce.wgsl's: the sum (here valid in every invocation, not only the first), once
// per dispatch (no barrier frees its slots).
fn wg_total(v: f32, lane: Lane) -> f32 {
  return wg_total2(vec2<f32>(v, 0.0), lane).x;
}

struct MaxArg {
  m: f32,
  arg: u32,
}

// The largest m over the workgroup and its arg (the lowest arg among equal maxima); every
// invocation gets it. Exact: a maximum and a minimum do not round. Once per dispatch (no barrier
// frees its slots).
fn wg_max_arg(m: f32, arg: u32, lane: Lane) -> MaxArg {
  let sm = subgroupMax(m);
  let si = subgroupMin(select(0xffffffffu, arg, m == sm));
  if (subgroupElect()) {
    sgr_max[lane.sg] = sm;
    sgr_arg[lane.sg] = si;
  }
  workgroupBarrier();
  var bm = sgr_max[0];
  var bi = sgr_arg[0];
  for (var k = 1u; k < lane.nsg; k = k + 1u) {
    let mb = sgr_max[k];
    let ib = sgr_arg[k];
    let take = mb > bm || (mb == bm && ib < bi);
    bm = select(bm, mb, take);
    bi = select(bi, ib, take);
  }
  return MaxArg(bm, bi);
}
