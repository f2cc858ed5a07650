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
