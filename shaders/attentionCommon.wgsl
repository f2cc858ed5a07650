// What attention.wgsl and flashAttention.wgsl share (their binding modules prepend it): the
// forward/backward and decode parameters, the decode's split rule and the constants of the base-2 softmax. No bindings here.

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

struct DecodeParams {
  batch: u32,
  n_q_heads: u32,
  n_kv_heads: u32,
  kv_cap: u32,
  kv_len: u32,   // valid cached positions: keys 0 .. kv_len-1
  chunk: u32,    // keys per split
  n_splits: u32,
  head_dim: u32,
  scale: f32,
  // 1: the cache's newest row is live_pos[0] (written per token, so one recorded step serves every
  // token): kv_len = live_pos[0] + 1, and chunk / n_splits follow attentionDecodeSplits' rule from
  // max_splits and min_chunk, which the fields above then do not hold.
  live: u32,
  max_splits: u32,
  min_chunk: u32,
}

// The keys a decode step attends and how they split: from the parameters, or (live) from the
// newest cache row, with attentionDecodeSplits' rule so the splits match a step recorded for
// that length.
struct DecodeShape {
  kv_len: u32,
  chunk: u32,
  n_splits: u32,
}
fn decode_shape(d: DecodeParams, newest_row: u32) -> DecodeShape {
  if (d.live == 0u) { return DecodeShape(d.kv_len, d.chunk, d.n_splits); }
  let kv_len = newest_row + 1u;
  let splits = max(1u, min(d.max_splits, kv_len / d.min_chunk));
  let chunk = (kv_len + splits - 1u) / splits;
  return DecodeShape(kv_len, chunk, (kv_len + chunk - 1u) / chunk);
}
