// What the LoRA kernels (lora.wgsl, one module; loraGroup.wgsl, a group of modules) share: the
// dropout mask, the tile sizes, and the steps of their reductions and tiled products over
// workgroup memory. No bindings and no entry points: a binding module compiles this text
// followed by its own, so both families draw the same mask and round the same way.

// ---------------------------------------------------------------------------------------------
// Dropout mask: keep element i of a [rows, cols] tensor iff hash(i, key) >= threshold.

fn fmix32(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u;
  h *= 0x85ebca6bu;
  h ^= h >> 13u;
  h *= 0xc2b2ae35u;
  h ^= h >> 16u;
  return h;
}

// Must match dropoutHash in the TypeScript reference.
fn dropout_hash(i: u32, key: u32) -> u32 {
  // Two rounds: one fmix32 of (i ^ key) alone leaves nearby keys correlated.
  return fmix32(fmix32(i ^ key) + key);
}

// The key of a mask whose seed is `add` + `mul` * the pass's seed (`add` also holds the key's
// offset 0x9e3779b9): fmix32(seed + 0x9e3779b9), as dropoutKey in the TypeScript reference. The
// pass's seed is u32 word 1 of a 'values' binding that the caller writes before each pass, so a
// recorded pass replays with new masks; a fixed seed has mul = 0.
fn dropout_key(pass_seed: u32, mul: u32, add: u32) -> u32 {
  return fmix32(pass_seed * mul + add);
}

// Factor that multiplies x[i]: 0 if dropped, 1/(1-p) if kept, 1 when dropout is off.
fn dropout_factor(i: u32, on: u32, key: u32, threshold: u32, inv_keep: f32) -> f32 {
  if (on == 0u) { return 1.0; }
  return select(0.0, inv_keep, dropout_hash(i, key) >= threshold);
}

// ---------------------------------------------------------------------------------------------
// Skinny products (u = x A^T, du = dy B): one workgroup computes DOWN_ROWS rows x RC outputs;
// its DOWN_WG threads stride over the reduction and their partial sums meet in workgroup memory.
// RC is fixed rather than an override per r: every variant is a pipeline to compile, and a
// software adapter (lavapipe, SwiftShader) takes seconds per pipeline; r < 16 wastes only FMAs
// in kernels bound by reading x.

const RC: u32 = 16u;  // columns of the output (u, du or a weight gradient) per workgroup
const DOWN_WG: u32 = 64u;
const DOWN_ROWS: u32 = 4u;

alias DownAcc = array<f32, DOWN_ROWS * RC>;  // [row][column] of one thread's partial sums
// [output][lane ^ output]: the XOR swizzle keeps both the write (by lane) and the sum (by output)
// free of bank conflicts without padding, which would pass the 16 KiB default workgroup limit.
alias DownPartial = array<f32, DOWN_ROWS * RC * DOWN_WG>;

// Every lane's partial sums into workgroup memory; the caller then sums output o with down_sum.
fn down_share(partial: ptr<workgroup, DownPartial>, acc: ptr<function, DownAcc>, lid: u32) {
  for (var o = 0u; o < DOWN_ROWS * RC; o++) { (*partial)[o * DOWN_WG + (lid ^ (o & (DOWN_WG - 1u)))] = (*acc)[o]; }
  workgroupBarrier();
}

fn down_sum(partial: ptr<workgroup, DownPartial>, o: u32) -> f32 {
  var s = 0.0;
  for (var l = 0u; l < DOWN_WG; l++) { s += (*partial)[o * DOWN_WG + (l ^ (o & (DOWN_WG - 1u)))]; }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Tiled products (y = x W^T + s u B^T and the group's input gradient): 16x16 threads, each owning
// LIN_TM rows x 4 columns strided by 16 (conflict-free tile reads, coalesced stores). Tiles:
// BM = 16 * LIN_TM rows, BN = 64 columns, BK = 16 of the reduction per chunk.

override LIN_TM: u32 = 4u;  // 1 or 4: few tokens use short tiles
override W_F16: bool = false;  // W is bound as u32 words holding f32 or packed f16 pairs
const LIN_BK: u32 = 16u;
const LIN_BN: u32 = 64u;
const LIN_MAX_BM: u32 = 64u;

alias TileA = array<f32, LIN_BK * LIN_MAX_BM>;  // [kk][m]
alias TileB = array<f32, LIN_BK * LIN_BN>;      // [kk][n]
alias TileAcc = array<vec4<f32>, 4>;            // acc[i][j]: row ty + 16 i, column tx + 16 j

// Where a thread sits: (tx, ty) in the 16x16 threads, lid = its index, the tile's height bm and
// its first row m0 and column n0.
struct TileThread {
  tx: u32,
  ty: u32,
  lid: u32,
  bm: u32,
  m0: u32,
  n0: u32,
}

fn tile_thread(wid: vec3<u32>, lid3: vec3<u32>) -> TileThread {
  let bm = 16u * LIN_TM;
  return TileThread(lid3.x, lid3.y, lid3.y * 16u + lid3.x, bm, wid.y * bm, wid.x * LIN_BN);
}

// The element a thread loads on its e-th pass over a k-major tile: (row or column, kk);
// 16 consecutive threads read 16 consecutive k of one row.
fn tile_slot(th: TileThread, e: u32) -> vec2<u32> {
  let idx = th.lid + 256u * e;
  return vec2<u32>(idx / LIN_BK, idx % LIN_BK);
}

// W element idx from the u32 word that holds it (f32 bits, or one half of a packed f16 pair).
fn w_value(word: u32, idx: u32) -> f32 {
  if (W_F16) { return unpack2x16float(word)[idx & 1u]; }
  return bitcast<f32>(word);
}

// The word of W that holds element idx.
fn w_word(idx: u32) -> u32 {
  return select(idx, idx >> 1u, W_F16);
}

// acc += this chunk's tiles, between the barriers that let every thread finish loading them
// and finish reading them before the next chunk overwrites them.
fn tile_multiply(acc: ptr<function, TileAcc>, a: ptr<workgroup, TileA>, b: ptr<workgroup, TileB>, th: TileThread) {
  workgroupBarrier();
  for (var kk = 0u; kk < LIN_BK; kk++) {
    let o = kk * LIN_BN + th.tx;
    let bv = vec4<f32>((*b)[o], (*b)[o + 16u], (*b)[o + 32u], (*b)[o + 48u]);
    for (var i = 0u; i < LIN_TM; i++) { (*acc)[i] += (*a)[kk * th.bm + th.ty + 16u * i] * bv; }
  }
  workgroupBarrier();
}

// ---------------------------------------------------------------------------------------------
// Weight gradients, reductions over tokens: GW_COLS columns x GW_LANES token lanes per workgroup,
// each thread summing RC outputs; the lanes meet in workgroup memory.

const GW_COLS: u32 = 32u;
const GW_LANES: u32 = 8u;

alias GradPartial = array<f32, RC * GW_LANES * GW_COLS>;  // [j][thread]

// Every thread's RC partial sums into workgroup memory; then output o = jl * GW_COLS + cl
// (neighbouring threads own neighbouring columns) is gw_sum(o).
fn gw_share(partial: ptr<workgroup, GradPartial>, acc: ptr<function, array<f32, RC>>, lid: u32) {
  for (var j = 0u; j < RC; j++) { (*partial)[j * GW_LANES * GW_COLS + lid] = (*acc)[j]; }
  workgroupBarrier();
}

fn gw_sum(partial: ptr<workgroup, GradPartial>, o: u32) -> f32 {
  let cl = o % GW_COLS;
  let jl = o / GW_COLS;
  var s = 0.0;
  for (var l = 0u; l < GW_LANES; l++) { s += (*partial)[jl * GW_LANES * GW_COLS + l * GW_COLS + cl]; }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Input gradient of the low-rank path: each thread owns one k for DX_ROWS rows, so each A
// element is read once per DX_ROWS rows.

const DX_COLS: u32 = 64u;
const DX_LANES: u32 = 4u;
const DX_ROWS: u32 = 4u;
