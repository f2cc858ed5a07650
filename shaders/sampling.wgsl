// Next-token choice over logits [rows, V] (V up to ~152k), one workgroup per row, so only the
// chosen ids (u32 per row) go back to the CPU.
//   argmax_rows:        greedy; ties go to the lowest index.
//   repetition_penalty: HF semantics, in place: seen ids get x<0 ? x*p : x/p, once per distinct id.
//   sample_topk:        temperature, top-k (k <= 256), top-p over the k candidates, then a draw
//                       with the uniform number given per row. With top-k off (k = 0 on the CPU
//                       side) the 256 largest logits are the candidates and top-p uses the
//                       full-vocabulary softmax: exact unless the nucleus holds > 256 tokens.
//   sample_full:        temperature only (no top-k / top-p): an exact inverse-CDF draw over the
//                       whole vocabulary, in index order.
// Every draw is a deterministic function of (logits, settings, uniform number).
// Cross-thread steps over the 256 per-thread partials are short serial loops in one thread
// rather than barrier trees: they cost microseconds once per token, and barriers are what makes
// shader compilation slow on CPU Vulkan (lavapipe).
//
// Entry points alias binding slots (each uses only its own declarations).

const WG: u32 = 256u;
const CAP: u32 = 256u; // candidate slots of sample_topk (== WG: one slot per thread in the sort)
const NONE: u32 = 0xffffffffu;
// A finite floor for running maxima: with it, -inf logits add exp(-inf) = 0 instead of NaN.
const NEG_BIG: f32 = -3.0e38;

struct SampleParams {
  rows: u32,          // rows in this dispatch
  row_offset: u32,    // first row of this dispatch
  v: u32,
  k: u32,             // sample_topk: candidates, 1 <= k <= min(CAP, v)
  temperature: f32,   // > 0
  top_p: f32,         // >= 1: off
  full_z: u32,        // 1: top-p probabilities over the whole vocabulary (top-k off)
  rand_in_buffer: u32, // 1: row r's number is rand_buf[r] (written per token), not rand
  rand: array<vec4<f32>, 16>, // uniform [0, 1) numbers, one per row of this dispatch
}

struct PenaltyParams {
  rows: u32,
  v: u32,
  l: u32,             // ids per row; ids >= v (e.g. 0xffffffff) are padding
  penalty: f32,
}

@group(0) @binding(0) var<uniform> p: SampleParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out_ids: array<u32>;
// sample_topk, sample_full: f32 [rows] uniform numbers, read only with rand_in_buffer (else any
// buffer is bound).
@group(0) @binding(3) var<storage, read> rand_buf: array<f32>;

@group(0) @binding(0) var<uniform> pp: PenaltyParams;
@group(0) @binding(1) var<storage, read> seen_ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> logits_rw: array<f32>;

var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> scan_gt: array<u32, WG>;
var<workgroup> scan_eq: array<u32, WG>;
var<workgroup> cand_key: array<u32, CAP>;
var<workgroup> cand_idx: array<u32, CAP>;
var<workgroup> sorted_idx: array<u32, CAP>;
var<workgroup> cand_w: array<f32, CAP>;
var<workgroup> sel: vec2<u32>;

// Larger value wins, equal values go to the lower index; an empty slot (NONE) always loses.
fn takes_b(ma: f32, ia: u32, mb: f32, ib: u32) -> bool {
  if (ib == NONE) { return false; }
  if (ia == NONE) { return true; }
  return mb > ma || (mb == ma && ib < ia);
}

// u32 whose unsigned order is the float order (-inf < ... < -0 < +0 < ... < +inf).
fn order_key(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn row_uniform(local_row: u32) -> f32 {
  if (p.rand_in_buffer != 0u) { return rand_buf[p.row_offset + local_row]; }
  return p.rand[local_row / 4u][local_row % 4u];
}

// The contiguous block of a row's indices that thread t owns when WG threads split the row:
// [x, y). Counting over blocks in thread order keeps the work in index order.
fn thread_block(t: u32) -> vec2<u32> {
  let per = (p.v + WG - 1u) / WG;
  let start = min(t * per, p.v);
  return vec2<u32>(start, min(start + per, p.v));
}

// An inverse-CDF draw: weights w_i are added in order (zeros skipped) until the running sum c
// passes goal = u * total; i is the draw. Rounding can leave the goal at the very end of the
// sum: then the draw is the last item with any weight.
struct Draw {
  goal: f32,
  c: f32,
  chosen: u32,
  last_positive: u32,
}

// Adds item i of weight w; true once the draw has landed (the caller stops).
fn draw_step(d: ptr<function, Draw>, i: u32, w: f32) -> bool {
  if (w > 0.0) {
    (*d).last_positive = i;
    (*d).c = (*d).c + w;
    if ((*d).c > (*d).goal) {
      (*d).chosen = i;
      return true;
    }
  }
  return false;
}

fn draw_result(d: Draw) -> u32 {
  return select(d.chosen, d.last_positive, d.chosen == NONE);
}

@compute @workgroup_size(WG)
fn argmax_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let local_row = wid.x;
  if (local_row >= p.rows) { return; }
  let row = p.row_offset + local_row;
  let base = row * p.v;
  var m = 0.0;
  var idx = NONE;
  for (var i = lid; i < p.v; i = i + WG) {
    let x = logits[base + i];
    if (idx == NONE || x > m) {
      m = x;
      idx = i;
    }
  }
  red_m[lid] = m;
  red_i[lid] = idx;
  workgroupBarrier();
  if (lid == 0u) {
    for (var j = 1u; j < WG; j = j + 1u) {
      if (takes_b(m, idx, red_m[j], red_i[j])) {
        m = red_m[j];
        idx = red_i[j];
      }
    }
    out_ids[row] = idx;
  }
}

// x: position in the row's id list, y: row. A repeated id is applied by its first occurrence only,
// as HF's gather-then-scatter does.
@compute @workgroup_size(WG)
fn repetition_penalty(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let row = gid.y;
  if (j >= pp.l || row >= pp.rows) { return; }
  let list = row * pp.l;
  let id = seen_ids[list + j];
  if (id >= pp.v) { return; }
  for (var k = 0u; k < j; k = k + 1u) {
    if (seen_ids[list + k] == id) { return; }
  }
  let o = row * pp.v + id;
  let x = logits_rw[o];
  logits_rw[o] = select(x / pp.penalty, x * pp.penalty, x < 0.0);
}

@compute @workgroup_size(WG)
fn sample_topk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let local_row = wid.x;
  if (local_row >= p.rows) { return; }
  let row = p.row_offset + local_row;
  let base = row * p.v;
  let k = p.k;

  // 1. Radix select, 8 bits a level from the top: tau = the k-th largest key. Afterwards exactly
  //    k - remaining keys are > tau, and the `remaining` lowest-index keys == tau complete the k.
  var prefix = 0u;
  var hi_mask = 0u;
  var remaining = k;
  for (var level = 0u; level < 4u; level = level + 1u) {
    let shift = 24u - 8u * level;
    atomicStore(&hist[lid], 0u);
    workgroupBarrier();
    for (var i = lid; i < p.v; i = i + WG) {
      let key = order_key(logits[base + i]);
      if ((key & hi_mask) == prefix) {
        atomicAdd(&hist[(key >> shift) & 255u], 1u);
      }
    }
    workgroupBarrier();
    if (lid == 0u) {
      var acc = 0u;
      var d = 255u;
      loop {
        let c = atomicLoad(&hist[d]);
        if (acc + c >= remaining || d == 0u) { break; }
        acc = acc + c;
        d = d - 1u;
      }
      sel = vec2<u32>(d, remaining - acc);
    }
    let chosen = workgroupUniformLoad(&sel);
    remaining = chosen.y;
    prefix = prefix | (chosen.x << shift);
    hi_mask = hi_mask | (255u << shift);
  }
  let tau = prefix;
  let n_above = k - remaining;

  // 2. Gather the k candidates deterministically: each thread owns a contiguous block of
  //    indices, and exclusive prefix sums of the block counts give its write positions.
  let block = thread_block(lid);
  let start = block.x;
  let end = block.y;
  var n_gt = 0u;
  var n_eq = 0u;
  for (var i = start; i < end; i = i + 1u) {
    let key = order_key(logits[base + i]);
    n_gt = n_gt + select(0u, 1u, key > tau);
    n_eq = n_eq + select(0u, 1u, key == tau);
  }
  scan_gt[lid] = n_gt;
  scan_eq[lid] = n_eq;
  workgroupBarrier();
  if (lid == 0u) {
    var a = 0u;
    var b = 0u;
    for (var j = 0u; j < WG; j = j + 1u) {
      let ga = scan_gt[j];
      let eb = scan_eq[j];
      scan_gt[j] = a;
      scan_eq[j] = b;
      a = a + ga;
      b = b + eb;
    }
  }
  workgroupBarrier();
  var pos = scan_gt[lid];
  var rank = scan_eq[lid];
  for (var i = start; i < end; i = i + 1u) {
    let key = order_key(logits[base + i]);
    if (key > tau) {
      cand_key[pos] = key;
      cand_idx[pos] = i;
      pos = pos + 1u;
    } else if (key == tau) {
      if (rank < remaining) {
        cand_key[n_above + rank] = key;
        cand_idx[n_above + rank] = i;
      }
      rank = rank + 1u;
    }
  }
  workgroupBarrier();

  // 3. Sort by rank: value descending, index ascending. Slot `lid` counts the candidates that
  //    go before it; (key, index) pairs are distinct, so the ranks are 0..k-1 exactly once.
  if (lid < k) {
    let ka = cand_key[lid];
    let ia = cand_idx[lid];
    var before = 0u;
    for (var j = 0u; j < k; j = j + 1u) {
      let kb = cand_key[j];
      if (kb > ka || (kb == ka && cand_idx[j] < ia)) { before = before + 1u; }
    }
    sorted_idx[before] = ia;
  }
  workgroupBarrier();

  // 4. Weights exp(x/T - max/T), in parallel: the k candidates' and, when top-k is off and
  //    top-p is on, per-thread shares of the full-vocabulary softmax normaliser.
  let t = p.temperature;
  let x0 = logits[base + sorted_idx[0]] / t; // the row's maximum
  if (lid < k) {
    cand_w[lid] = exp(logits[base + sorted_idx[lid]] / t - x0);
  }
  var share = 0.0;
  if (p.full_z != 0u) {
    for (var i = lid; i < p.v; i = i + WG) {
      share = share + exp(logits[base + i] / t - x0);
    }
  }
  red_s[lid] = share;
  workgroupBarrier();

  // 5. Top-p and the draw: a few hundred additions, done by one thread.
  if (lid == 0u) {
    var z = 0.0;
    if (p.full_z != 0u) {
      for (var j = 0u; j < WG; j = j + 1u) { z = z + red_s[j]; }
    } else {
      for (var i = 0u; i < k; i = i + 1u) { z = z + cand_w[i]; }
    }
    // HF top-p: keep a token while the probability of the tokens ranked above it is < top_p.
    var keep = k;
    if (p.top_p < 1.0) {
      keep = 1u;
      var above = cand_w[0];
      while (keep < k && above < p.top_p * z) {
        above = above + cand_w[keep];
        keep = keep + 1u;
      }
    }
    var total = 0.0;
    for (var i = 0u; i < keep; i = i + 1u) {
      total = total + cand_w[i];
    }
    var draw = Draw(row_uniform(local_row) * total, 0.0, NONE, 0u);
    for (var i = 0u; i < keep; i = i + 1u) {
      if (draw_step(&draw, i, cand_w[i])) { break; }
    }
    out_ids[row] = sorted_idx[draw_result(draw)];
  }
}

@compute @workgroup_size(WG)
fn sample_full(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let local_row = wid.x;
  if (local_row >= p.rows) { return; }
  let row = p.row_offset + local_row;
  let base = row * p.v;
  let t = p.temperature;

  // The row's maximum, then the mass of each thread's contiguous block of indices.
  let block = thread_block(lid);
  let start = block.x;
  let end = block.y;
  var m = NEG_BIG;
  for (var i = start; i < end; i = i + 1u) {
    m = max(m, logits[base + i]);
  }
  red_m[lid] = m;
  workgroupBarrier();
  if (lid == 0u) {
    for (var j = 1u; j < WG; j = j + 1u) { m = max(m, red_m[j]); }
    red_m[0] = m;
  }
  workgroupBarrier();
  let x0 = red_m[0] / t;
  var s = 0.0;
  for (var i = start; i < end; i = i + 1u) {
    s = s + exp(logits[base + i] / t - x0);
  }
  red_s[lid] = s;
  workgroupBarrier();

  // One thread: the block the draw lands in, then the index inside it, in index order (an
  // inverse-CDF draw).
  if (lid == 0u) {
    var total = 0.0;
    for (var j = 0u; j < WG; j = j + 1u) { total = total + red_s[j]; }
    let goal = row_uniform(local_row) * total;
    var owner = NONE;
    var last = 0u;
    var before = 0.0;
    var acc = 0.0;
    for (var j = 0u; j < WG; j = j + 1u) {
      if (red_s[j] > 0.0) {
        if (owner == NONE) { last = j; before = acc; }
        acc = acc + red_s[j];
        if (acc > goal && owner == NONE) { owner = j; }
      }
    }
    // Rounding can leave u * total at the very end: then the last block with any mass.
    if (owner == NONE) { owner = last; }
    let owned = thread_block(owner);
    var draw = Draw(goal, before, NONE, owned.x);
    for (var i = owned.x; i < owned.y; i = i + 1u) {
      if (draw_step(&draw, i, exp(logits[base + i] / t - x0))) { break; }
    }
    out_ids[row] = draw_result(draw);
  }
}
