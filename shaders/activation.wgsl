// Activations, forward and backward, f32, one thread per element on a 2-D grid of 256-thread
// groups (index = gid.y * row_stride + gid.x).
//   op 0: SiLU              x * sigmoid(x)
//   op 1: GELU, tanh form   0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x³)))   (GPT-2 gelu_new)
//   op 2: GELU, exact       0.5 x (1 + erf(x / sqrt(2)))
// SwiGLU (Llama MLP): h = silu(gate) * up over [rows, width], where gate and up are addressed
// with element offsets and row strides so that they can be two buffers [rows, width] or the two
// halves of one fused buffer [rows, 2 width] (then the same buffer is bound twice, read-only).
// Entry points share binding numbers where their layouts differ; each uses only its own.

const OP_SILU: u32 = 0u;
const OP_GELU_TANH: u32 = 1u;
const OP_GELU_ERF: u32 = 2u;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_A: f32 = 0.044715;
const INV_SQRT_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// Both branches avoid exp overflow: exp of a large positive argument is never taken.
fn sigmoid(x: f32) -> f32 {
  if (x >= 0.0) {
    return 1.0 / (1.0 + exp(-x));
  }
  let e = exp(x);
  return e / (1.0 + e);
}

// Built-in tanh returns NaN for large |x| on some backends (it is lowered through exp).
fn tanh_safe(x: f32) -> f32 {
  let e = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - e) / (1.0 + e);
}

// erfc(z) for z >= 0 with fractional error < 1.2e-7 everywhere (the Chebyshev fit "erfcc" of
// Numerical Recipes). Relative, not absolute, accuracy keeps the far negative GELU tail right.
fn erfc_pos(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(poly - z * z);
}

// 1 + erf(x / sqrt(2)) (= 2 Phi(x)), without forming 1 - (1 - tiny) for negative x.
fn one_plus_erf(x: f32) -> f32 {
  let c = erfc_pos(abs(x) * INV_SQRT_2);
  return select(2.0 - c, c, x < 0.0);
}

fn act(op: u32, x: f32) -> f32 {
  switch op {
    case OP_SILU: {
      return x * sigmoid(x);
    }
    case OP_GELU_TANH: {
      return 0.5 * x * (1.0 + tanh_safe(SQRT_2_OVER_PI * (x + GELU_A * x * x * x)));
    }
    default: {
      return 0.5 * x * one_plus_erf(x);
    }
  }
}

fn act_grad(op: u32, x: f32) -> f32 {
  switch op {
    case OP_SILU: {
      let s = sigmoid(x);
      return s * (1.0 + x * (1.0 - s));
    }
    case OP_GELU_TANH: {
      let t = tanh_safe(SQRT_2_OVER_PI * (x + GELU_A * x * x * x));
      return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_A * x * x);
    }
    default: {
      return 0.5 * one_plus_erf(x) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
    }
  }
}

// ---------------------------------------------------------------- y = act(x), dx = dy act'(x)
struct ActParams {
  n: u32,
  row_stride: u32,
  op: u32,
}

@group(0) @binding(0) var<uniform> ap: ActParams;
@group(0) @binding(1) var<storage, read> a_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> a_y: array<f32>;
@group(0) @binding(2) var<storage, read> a_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> a_dx: array<f32>;

@compute @workgroup_size(256)
fn act_fwd(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * ap.row_stride + gid.x;
  if (i >= ap.n) { return; }
  a_y[i] = act(ap.op, a_x[i]);
}

@compute @workgroup_size(256)
fn act_bwd(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * ap.row_stride + gid.x;
  if (i >= ap.n) { return; }
  a_dx[i] = a_dy[i] * act_grad(ap.op, a_x[i]);
}

// ---------------------------------------------------------------- SwiGLU
struct GluParams {
  rows: u32,
  width: u32,
  row_stride: u32,   // grid threads per grid row
  gate_offset: u32,  // elements
  gate_stride: u32,  // elements between rows
  up_offset: u32,
  up_stride: u32,
  dgate_offset: u32, // backward only
  dgate_stride: u32,
  dup_offset: u32,
  dup_stride: u32,
}

@group(0) @binding(0) var<uniform> gp: GluParams;
@group(0) @binding(1) var<storage, read> g_gate: array<f32>;
@group(0) @binding(2) var<storage, read> g_up: array<f32>;
// forward: h [rows, width] contiguous
@group(0) @binding(3) var<storage, read_write> g_h: array<f32>;
// backward: dh [rows, width] contiguous, then the gradient outputs
@group(0) @binding(3) var<storage, read> g_dh: array<f32>;
@group(0) @binding(4) var<storage, read_write> g_dgate: array<f32>;
@group(0) @binding(5) var<storage, read_write> g_dup: array<f32>;
// backward into one fused buffer: both gradients go to binding 4 at their offsets
@group(0) @binding(4) var<storage, read_write> g_dfused: array<f32>;

struct GluIndex {
  valid: bool,
  row: u32,
  col: u32,
  flat: u32,
}

fn glu_index(gid: vec3<u32>) -> GluIndex {
  let i = gid.y * gp.row_stride + gid.x;
  let n = gp.rows * gp.width;
  if (i >= n) { return GluIndex(false, 0u, 0u, 0u); }
  return GluIndex(true, i / gp.width, i % gp.width, i);
}

@compute @workgroup_size(256)
fn swiglu_fwd(@builtin(global_invocation_id) gid: vec3<u32>) {
  let ix = glu_index(gid);
  if (!ix.valid) { return; }
  let g = g_gate[gp.gate_offset + ix.row * gp.gate_stride + ix.col];
  let u = g_up[gp.up_offset + ix.row * gp.up_stride + ix.col];
  g_h[ix.flat] = g * sigmoid(g) * u;
}

// dgate = dh * up * silu'(gate), dup = dh * silu(gate)
fn swiglu_grads(ix: GluIndex) -> vec2<f32> {
  let g = g_gate[gp.gate_offset + ix.row * gp.gate_stride + ix.col];
  let u = g_up[gp.up_offset + ix.row * gp.up_stride + ix.col];
  let dh = g_dh[ix.flat];
  let s = sigmoid(g);
  return vec2<f32>(dh * u * s * (1.0 + g * (1.0 - s)), dh * g * s);
}

@compute @workgroup_size(256)
fn swiglu_bwd(@builtin(global_invocation_id) gid: vec3<u32>) {
  let ix = glu_index(gid);
  if (!ix.valid) { return; }
  let d = swiglu_grads(ix);
  g_dgate[gp.dgate_offset + ix.row * gp.dgate_stride + ix.col] = d.x;
  g_dup[gp.dup_offset + ix.row * gp.dup_stride + ix.col] = d.y;
}

@compute @workgroup_size(256)
fn swiglu_bwd_fused(@builtin(global_invocation_id) gid: vec3<u32>) {
  let ix = glu_index(gid);
  if (!ix.valid) { return; }
  let d = swiglu_grads(ix);
  g_dfused[gp.dgate_offset + ix.row * gp.dgate_stride + ix.col] = d.x;
  g_dfused[gp.dup_offset + ix.row * gp.dup_stride + ix.col] = d.y;
}
