// Token embedding gather, optional learned position embedding add, and the deterministic
// gradient scatter-add.
// Tables are bound as array<u32> words: f32 entries are bitcast, f16 entries are unpacked with
// unpack2x16float (no shader-f16 needed). A table larger than one binding is split into row
// shards; the gather is dispatched once per shard and each shard writes only the tokens whose id
// falls in [row_start, row_start + row_count), so every output row is written exactly once.
// Entry points share binding numbers where their layouts differ; each uses only its own.

override TABLE_F16: bool = false;
override POS_F16: bool = false;

struct EmbParams {
  tokens: u32,
  cols: u32,
  row_start: u32,     // first vocabulary row held by this shard
  row_count: u32,
  row_stride: u32,    // grid threads per grid row
  pos_start: u32,     // without a positions buffer: pos = pos_start + token % seq_len
  seq_len: u32,
  use_positions: u32,
}

@group(0) @binding(0) var<uniform> p: EmbParams;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// embed_pos layout: the position table and per-token positions come before the output.
@group(0) @binding(3) var<storage, read> wpe: array<u32>;
// Without per-token positions the caller binds any buffer here; it is never read then.
@group(0) @binding(4) var<storage, read> positions: array<u32>;
@group(0) @binding(5) var<storage, read_write> out_pos: array<f32>;

fn load_table(e: u32) -> f32 {
  if (TABLE_F16) {
    let pair = unpack2x16float(table[e >> 1u]);
    return select(pair.x, pair.y, (e & 1u) == 1u);
  }
  return bitcast<f32>(table[e]);
}

fn load_wpe(e: u32) -> f32 {
  if (POS_F16) {
    let pair = unpack2x16float(wpe[e >> 1u]);
    return select(pair.x, pair.y, (e & 1u) == 1u);
  }
  return bitcast<f32>(wpe[e]);
}

struct Cell {
  valid: bool,
  token: u32,
  col: u32,
  local_row: u32, // id - row_start
}

fn cell(gid: vec3<u32>) -> Cell {
  let i = gid.y * p.row_stride + gid.x;
  if (i >= p.tokens * p.cols) { return Cell(false, 0u, 0u, 0u); }
  let token = i / p.cols;
  let id = ids[token];
  // One unsigned compare covers id < row_start (it wraps to a huge value).
  let local_row = id - p.row_start;
  if (local_row >= p.row_count) { return Cell(false, 0u, 0u, 0u); }
  return Cell(true, token, i % p.cols, local_row);
}

@compute @workgroup_size(256)
fn embed(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = cell(gid);
  if (!c.valid) { return; }
  out[c.token * p.cols + c.col] = load_table(c.local_row * p.cols + c.col);
}

@compute @workgroup_size(256)
fn embed_pos(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = cell(gid);
  if (!c.valid) { return; }
  var pos = p.pos_start + c.token % p.seq_len;
  if (p.use_positions != 0u) { pos = positions[c.token]; }
  out_pos[c.token * p.cols + c.col] = load_table(c.local_row * p.cols + c.col) + load_wpe(pos * p.cols + c.col);
}

// ---------------------------------------------------------------- gradient
// index = [order (tokens) | seg (unique + 1) | uniq (unique)], built on the CPU: order lists the
// tokens sorted by id (stable), seg[u]..seg[u+1] is the run of unique id uniq[u]. One workgroup
// per (column block, unique id) sums its run in token order (fixed, so deterministic) and adds
// the sum into its row of this gradient shard.
struct GradParams {
  cols: u32,
  u_begin: u32,   // first unique index whose id lies in this shard
  u_count: u32,
  row_start: u32,
  groups_y: u32,  // unique ids per z slice of the grid
  seg_offset: u32,
  uniq_offset: u32,
}

@group(0) @binding(0) var<uniform> gp: GradParams;
@group(0) @binding(1) var<storage, read> index: array<u32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> dtable: array<f32>;

@compute @workgroup_size(64)
fn embed_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let k = wid.z * gp.groups_y + wid.y;
  let col = wid.x * 64u + lid.x;
  if (k >= gp.u_count || col >= gp.cols) { return; }
  let u = gp.u_begin + k;
  let first = index[gp.seg_offset + u];
  let last = index[gp.seg_offset + u + 1u];
  var s = 0.0;
  for (var j = first; j < last; j++) {
    s += dout[index[j] * gp.cols + col];
  }
  let row = index[gp.uniq_offset + u] - gp.row_start;
  dtable[row * gp.cols + col] += s;
}
