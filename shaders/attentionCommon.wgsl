// What attention.wgsl and flashAttention.wgsl share (their binding modules prepend it): the
// forward/backward parameters and the constants of the base-2 softmax. No bindings here.

// A finite "minus infinity": exp2(NEG - m) is exactly 0 and NEG - NEG is not NaN.
const NEG: f32 = -1.0e30;
const LOG2E: f32 = 1.4426950408889634;
const LN2: f32 = 0.6931471805599453;

struct AttnParams {
  batch: u32,
  seq: u32,       // T: query rows per sequence
  n_q_heads: u32,
  n_kv_heads: u32,
  kv_cap: u32,    // row capacity of the k/v buffers (>= past_len + seq)
  past_len: u32,  // keys before the first query (prefill over a cache); 0 in training
  head_dim: u32,
  scale: f32,
}
