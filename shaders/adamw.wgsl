// AdamW step with torch.optim.AdamW semantics (non-amsgrad, non-fused, _single_tensor_adamw):
//   p *= 1 - lr*wd                          (decoupled weight decay, before the moments)
//   m  = beta1*m + (1-beta1)*g
//   v  = beta2*v + (1-beta2)*g*g
//   p += -(lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)
// The step-dependent scalars are computed on the CPU in f64 and passed in. An optional gradient
// factor (the clip coefficient from reduce.wgsl) is read from a buffer, so clipping costs no
// extra pass and no readback.

struct Params {
  n: u32,
  row_stride: u32,
  decay: f32,            // 1 - lr*weight_decay
  beta1: f32,
  beta2: f32,
  one_minus_beta1: f32,
  one_minus_beta2: f32,
  neg_step_size: f32,    // -lr / (1 - beta1^t)
  bc2_sqrt: f32,         // sqrt(1 - beta2^t)
  eps: f32,
  scale_index: u32,      // element of grad_scale holding the gradient factor
  use_scale: u32,        // 0: grad_scale is not read
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> grad_scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(5) var<storage, read_write> exp_avg_sq: array<f32>;

@compute @workgroup_size(256)
fn adamw_step(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * p.row_stride + gid.x;
  if (i >= p.n) { return; }
  var g = grad[i];
  if (p.use_scale != 0u) {
    g = g * grad_scale[p.scale_index];
  }
  let w = param[i] * p.decay;
  let m = p.beta1 * exp_avg[i] + p.one_minus_beta1 * g;
  let v = p.beta2 * exp_avg_sq[i] + p.one_minus_beta2 * (g * g);
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
  let denom = sqrt(v) / p.bc2_sqrt + p.eps;
  param[i] = w + p.neg_step_size * (m / denom);
}

// The same update over one flat buffer of many tensors (a whole LoRA adapter), one dispatch.
// The per-step scalars come from `hyper`, written with queue.writeBuffer each step, so the
// dispatch's bind group and uniform never change; the clip coefficient, the skip flag and
// AdamW's step count from `state` (reduce.wgsl's norm_clip_step). The CPU does not know whether
// the steps still in flight were skipped, so hyper holds the step-dependent scalars for the
// step counts TABLE steps from hyper[6] + 1 on, each computed in f64 on the CPU.
const TABLE: u32 = 4u;

struct FlatParams {
  n: u32,
  row_stride: u32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> fp: FlatParams;
// [decay, beta1, beta2, 1-beta1, 1-beta2, eps, base step count, 0,
//  neg_step_size for base+1 .. base+TABLE, bc2_sqrt for base+1 .. base+TABLE]
@group(0) @binding(1) var<storage, read> hyper: array<f32>;
@group(0) @binding(2) var<storage, read> opt_state: array<f32>;
@group(0) @binding(3) var<storage, read> flat_grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> flat_param: array<f32>;
@group(0) @binding(5) var<storage, read_write> flat_exp_avg: array<f32>;
@group(0) @binding(6) var<storage, read_write> flat_exp_avg_sq: array<f32>;

@compute @workgroup_size(256)
fn adamw_flat(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * fp.row_stride + gid.x;
  if (i >= fp.n || opt_state[2] != 0.0) { return; }
  let j = min(u32(opt_state[3] - hyper[6]) - 1u, TABLE - 1u);
  let neg_step_size = hyper[8u + j];
  let bc2_sqrt = hyper[8u + TABLE + j];
  let g = flat_grad[i] * opt_state[1];
  let w = flat_param[i] * hyper[0];
  let m = hyper[1] * flat_exp_avg[i] + hyper[3] * g;
  let v = hyper[2] * flat_exp_avg_sq[i] + hyper[4] * (g * g);
  flat_exp_avg[i] = m;
  flat_exp_avg_sq[i] = v;
  let denom = sqrt(v) / bc2_sqrt + hyper[5];
  flat_param[i] = w + neg_step_size * (m / denom);
}
