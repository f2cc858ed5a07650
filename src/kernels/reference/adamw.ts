// Plain-TypeScript reference of torch.optim.AdamW (non-amsgrad, non-fused, _single_tensor_adamw).
// State lives in Float32Arrays like PyTorch's f32 tensors; each line below is one tensor op of
// PyTorch's, evaluated in f64 and stored back to f32.
import type { AdamWHyper } from '../adamw';

/**
 * One AdamW step, in place on param, expAvg and expAvgSq. `gradScale` multiplies the grad first
 * (what clip_grad_norm_ does to .grad before the optimizer runs).
 */
export function adamwStepRef(
  param: Float32Array,
  grad: Float32Array,
  expAvg: Float32Array,
  expAvgSq: Float32Array,
  hp: AdamWHyper,
  gradScale = 1,
): void {
  const bias1 = 1 - hp.beta1 ** hp.step;
  const bias2 = 1 - hp.beta2 ** hp.step;
  const stepSize = hp.lr / bias1;
  const bias2Sqrt = Math.sqrt(bias2);
  for (let i = 0; i < param.length; i++) {
    const g = gradScale === 1 ? grad[i]! : Math.fround(grad[i]! * Math.fround(gradScale));
    // param.mul_(1 - lr * weight_decay)
    param[i] = param[i]! * (1 - hp.lr * hp.weightDecay);
    // exp_avg.lerp_(grad, 1 - beta1) == beta1*m + (1-beta1)*g
    expAvg[i] = hp.beta1 * expAvg[i]! + (1 - hp.beta1) * g;
    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    expAvgSq[i] = hp.beta2 * expAvgSq[i]! + (1 - hp.beta2) * g * g;
    // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    const denom = Math.sqrt(expAvgSq[i]!) / bias2Sqrt + hp.eps;
    // param.addcdiv_(exp_avg, denom, value=-step_size)
    param[i] = param[i]! - stepSize * (expAvg[i]! / denom);
  }
}
