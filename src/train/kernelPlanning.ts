// A training job's kernel plan at its start: the products of its step, handed to the plan choice (rules, cache or tuning).
import { chooseKernelPlan, type ChooseOptions } from '../kernels/kernelPlanChoice';
import { matmulFlops } from '../kernels/matmul';
import type { KernelPlanRecord } from '../kernels/matmulPlans';
import type { TuningShape } from '../kernels/matmulTuning';
import type { LoraAdapter } from '../model/lora';
import type { CausalLM } from '../model/transformer';

/** Vocabulary rows of one LM-head product (the model's chunk). */
const HEAD_CHUNK = 8192;

/**
 * The large products of one LoRA training step of `rows` tokens, largest first: each frozen
 * linear's forward (with its LoRA term folded in where the GPU plan's fused path folds it) and
 * input gradient, and the LM head's logits and input gradient per vocabulary chunk.
 */
export function stepMatmulShapes(model: CausalLM, adapter: LoraAdapter | null, rows: number): TuningShape[] {
  const folds = model.gpu.kernels === 'gpu' && model.loraLinearPath === 'fused';
  const shapes: TuningShape[] = [];
  for (const layer of model.weights.layers) {
    for (const lin of [...layer.attnIn, layer.attnOut, ...layer.mlpIn, layer.mlpOut]) {
      const lora = folds && !!adapter?.modules.has(lin);
      const r = adapter?.modules.get(lin)?.r;
      shapes.push({ M: rows, N: lin.outFeatures, K: lin.inFeatures, batch: 1, lora, transB: true, bF16: lin.f16, ...(lora && r ? { r } : {}) });
      shapes.push({ M: rows, N: lin.inFeatures, K: lin.outFeatures, batch: 1, lora: false, bF16: lin.f16 });
    }
  }
  const { hidden, vocabSize } = model.config;
  const chunk = Math.min(vocabSize, HEAD_CHUNK);
  const f16 = model.weights.dtype === 'f16';
  shapes.push({ M: rows, N: chunk, K: hidden, batch: 1, lora: false, transB: true, bF16: f16 });
  shapes.push({ M: rows, N: hidden, K: chunk, batch: 1, lora: false, bF16: f16 });
  return shapes.sort((a, b) => matmulFlops(b.M, b.N, b.K) - matmulFlops(a.M, a.N, a.K));
}

/** The plan for a job training micro-batches of `rows` tokens, applied to the model's device. */
export function planJobKernels(model: CausalLM, adapter: LoraAdapter | null, rows: number, options: Omit<ChooseOptions, 'shapes'>): Promise<KernelPlanRecord> {
  return chooseKernelPlan(model.gpu, { ...options, shapes: stepMatmulShapes(model, adapter, rows) });
}
