// Rotary position embeddings, Hugging Face "rotate_half" layout (Llama, Qwen, Mistral): within
// each head, element j pairs with element j + rot/2, both turned by angle pos * inv_freq[j]:
//   y[j]         = x[j] cos - x[j + rot/2] sin
//   y[j + rot/2] = x[j + rot/2] cos + x[j] sin
// cos and sin are multiplied by `scale` (the attention factor, 1 for default/llama3 rope).
// Backward is the same rotation with sin negated (R(-a) = R(a)^T).
// Elements at and beyond rot (partial rotary) pass through unchanged.
// x is [tokens, heads, head_dim] inside a buffer with an element offset and a per-token stride,
// so q and k can be rotated inside a fused qkv buffer. One thread per (token, head, j < head_dim/2).
// rope_qk_inplace rotates q and k, two buffers, in one dispatch: heads [0, q_heads) are q's
// (in_offset, in_stride), the rest k's (out_offset, out_stride).

struct RopeParams {
  tokens: u32,
  heads: u32,
  head_dim: u32,
  half_rot: u32,      // rotary dims / 2 = length of inv_freq
  seq_len: u32,       // without a positions buffer: pos = pos_start + token % seq_len
  pos_start: u32,
  use_positions: u32, // 1: pos = positions[token]
  row_stride: u32,    // grid threads per grid row
  in_offset: u32,
  in_stride: u32,     // elements between tokens
  out_offset: u32,
  out_stride: u32,
  sin_sign: f32,      // +1 forward, -1 backward
  scale: f32,
  q_heads: u32,       // rope_qk_inplace: heads of q; the other heads are k's
}

@group(0) @binding(0) var<uniform> p: RopeParams;
// Without per-token positions the caller binds any u32/f32 buffer here; it is never read then.
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(3) var<storage, read_write> x_inout: array<f32>;
@group(0) @binding(3) var<storage, read> x_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> y_out: array<f32>;

// 2*pi = HI + MID + LO (Cody-Waite). HI and MID have 8 significant bits, so k * HI and k * MID
// are exact for |k| < 2^16 (positions up to ~400k at inv_freq 1); only the small k * LO rounds.
const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_MID: f32 = 0.00193023681640625; // 253 / 2^17
const TWO_PI_LO: f32 = 5.0703631802269253e-6;
const INV_TWO_PI: f32 = 0.15915494309189535;

struct Item {
  valid: bool,
  token: u32,
  head: u32,
  j: u32,
}

fn item(gid: vec3<u32>) -> Item {
  let i = gid.y * p.row_stride + gid.x;
  let half_d = p.head_dim / 2u;
  if (i >= p.tokens * p.heads * half_d) { return Item(false, 0u, 0u, 0u); }
  let th = i / half_d;
  return Item(true, th / p.heads, th % p.heads, i % half_d);
}

// (cos, sin) * scale of pos * inv_freq[j]. The angle is rounded to f32 first, as transformers
// computes it, then reduced to [-pi, pi] with a two-constant reduction: GPU sin/cos are only
// accurate on a small range, and positions reach thousands of radians.
fn cos_sin(token: u32, j: u32) -> vec2<f32> {
  var pos = p.pos_start + token % p.seq_len;
  if (p.use_positions != 0u) { pos = positions[token]; }
  let a = f32(pos) * inv_freq[j];
  let k = round(a * INV_TWO_PI);
  let r = ((a - k * TWO_PI_HI) - k * TWO_PI_MID) - k * TWO_PI_LO;
  return vec2<f32>(cos(r), p.sin_sign * sin(r)) * p.scale;
}

@compute @workgroup_size(256)
fn rope_inplace(@builtin(global_invocation_id) gid: vec3<u32>) {
  let it = item(gid);
  if (!it.valid || it.j >= p.half_rot) { return; }
  let cs = cos_sin(it.token, it.j);
  let b = p.in_offset + it.token * p.in_stride + it.head * p.head_dim + it.j;
  let x1 = x_inout[b];
  let x2 = x_inout[b + p.half_rot];
  x_inout[b] = x1 * cs.x - x2 * cs.y;
  x_inout[b + p.half_rot] = x2 * cs.x + x1 * cs.y;
}

@compute @workgroup_size(256)
fn rope_copy(@builtin(global_invocation_id) gid: vec3<u32>) {
  let it = item(gid);
  if (!it.valid) { return; }
  let bi = p.in_offset + it.token * p.in_stride + it.head * p.head_dim;
  let bo = p.out_offset + it.token * p.out_stride + it.head * p.head_dim;
  if (it.j < p.half_rot) {
    let cs = cos_sin(it.token, it.j);
    let x1 = x_in[bi + it.j];
    let x2 = x_in[bi + it.j + p.half_rot];
    y_out[bo + it.j] = x1 * cs.x - x2 * cs.y;
    y_out[bo + it.j + p.half_rot] = x2 * cs.x + x1 * cs.y;
  } else {
    // Pass-through pair of the unrotated tail: elements rot + 2 (j - rot/2) and the next one.
    let e = 2u * p.half_rot + 2u * (it.j - p.half_rot);
    y_out[bo + e] = x_in[bi + e];
    y_out[bo + e + 1u] = x_in[bi + e + 1u];
  }
}

@compute @workgroup_size(256)
fn rope_qk_inplace(@builtin(global_invocation_id) gid: vec3<u32>) {
  let it = item(gid);
  if (!it.valid || it.j >= p.half_rot) { return; }
  let cs = cos_sin(it.token, it.j);
  if (it.head < p.q_heads) {
    let b = p.in_offset + it.token * p.in_stride + it.head * p.head_dim + it.j;
    let x1 = x_inout[b];
    let x2 = x_inout[b + p.half_rot];
    x_inout[b] = x1 * cs.x - x2 * cs.y;
    x_inout[b + p.half_rot] = x2 * cs.x + x1 * cs.y;
  } else {
    let b = p.out_offset + it.token * p.out_stride + (it.head - p.q_heads) * p.head_dim + it.j;
    let x1 = y_out[b];
    let x2 = y_out[b + p.half_rot];
    y_out[b] = x1 * cs.x - x2 * cs.y;
    y_out[b + p.half_rot] = x2 * cs.x + x1 * cs.y;
  }
}
