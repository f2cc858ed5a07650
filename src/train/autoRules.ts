// The numeric 'auto' rules that depend only on the data set size or the model's width: plain
// functions with no other imports, so the dataset report (epochs for its time estimate) and the
// hyperparameter resolver use the same ones.

/**
 * OpenAI's default epoch count for n training examples: 3, raised when 3 epochs would see fewer
 * than 100 examples (to floor(100 / n), at most 25), lowered when they would see more than 25,000
 * (to floor(25000 / n), at least 1). 0 examples: 0 epochs (no job).
 */
export function autoEpochs(examples: number): number {
  const n = Math.floor(examples);
  if (!(n >= 1)) return 0;
  const target = 3;
  if (n * target < 100) return Math.min(25, Math.floor(100 / n));
  if (n * target > 25_000) return Math.max(1, Math.floor(25_000 / n));
  return target;
}

/**
 * The LoRA learning rate at the reference width: QLoRA (Dettmers et al. 2023, "QLoRA: Efficient
 * Finetuning of Quantized LLMs", appendix hyperparameters) fine-tunes the 7B and 13B LLaMA models
 * (hidden size 4096 and 5120) with 2e-4 and the 33B and 65B ones (6656 and 8192) with 1e-4; PEFT
 * and Unsloth recipes use 2e-4 for 7B-class models.
 */
export const REFERENCE_LEARNING_RATE = 2e-4;
export const REFERENCE_HIDDEN_SIZE = 4096;
/** Bounds on the width-scaled rate: below the floor nothing moves, above the cap Adam diverges. */
export const MIN_AUTO_LEARNING_RATE = 1e-5;
export const MAX_AUTO_LEARNING_RATE = 1e-2;

/**
 * Auto peak learning rate for a model of hidden size `hiddenSize`: 2e-4 x 4096 / hidden, within
 * [1e-5, 1e-2]. Why 1/width: with Adam, one step changes a hidden pre-activation by about
 * learning rate x width (every coordinate of the update moves by ~lr and n of them add up), so the
 * largest stable rate falls as 1/width; muP (Yang et al. 2022, "Tensor Programs V: Tuning Large
 * Neural Networks via Zero-Shot Hyperparameter Transfer", github.com/microsoft/mup) scales Adam's
 * hidden-layer rate by exactly base width / width. QLoRA's own halving from 4096 to 8192 fits it.
 * A 96-wide model gets 8.5e-3, a 576-wide one (SmolLM-135M) 1.4e-3, Qwen2.5-0.5B (896) 9.1e-4.
 * Without a known width: the reference rate.
 */
export function autoLearningRate(hiddenSize: number | undefined): number {
  if (hiddenSize === undefined || !(hiddenSize > 0)) return REFERENCE_LEARNING_RATE;
  const scaled = (REFERENCE_LEARNING_RATE * REFERENCE_HIDDEN_SIZE) / hiddenSize;
  return Math.min(MAX_AUTO_LEARNING_RATE, Math.max(MIN_AUTO_LEARNING_RATE, scaled));
}
