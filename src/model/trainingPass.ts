/** What one training pass of the transformer takes and returns: a token batch, its options, the loss totals. */
import type { BaseGradients } from './fullParameters';

/** A batch of B sequences of T tokens, row-major, with next-token targets and a 0/1 loss mask. */
export interface TokenBatch {
  B: number;
  T: number;
  tokens: Uint32Array;
  /** The token each position must predict; any value where mask is 0. */
  targets: Uint32Array;
  mask: Float32Array;
}

export interface LossTotals {
  /** Sum of the per-token losses over trained tokens. */
  lossSum: number;
  /** Number of trained tokens (sum of the mask). */
  tokens: number;
  /** Trained tokens whose argmax prediction is the target. */
  correct: number;
}

/** Options of one training forward/backward. */
export interface StepOptions {
  /** Seed of this micro-batch's LoRA dropout masks (same seed, same masks). */
  dropoutSeed?: number;
  /** 1 / trained tokens of the whole optimizer step (micro-batches share it). */
  gradScale: number;
  /** Add into the LoRA gradients instead of overwriting them (gradient accumulation). */
  accumulate: boolean;
  /** Also compute gradients of every base weight (pretraining); LoRA fine-tuning leaves it out. */
  full?: BaseGradients;
}
