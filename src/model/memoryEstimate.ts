// GPU memory a LoRA job needs, worked out from the config alone (no GPU, no weights read): the
// same buffers the engine allocates (model/weights.ts, model/lora.ts, the Workspace of
// model/workspace.ts, train/optimizer.ts), each rounded up to the buffer pool's bucket size. Kept
// beside transformer.ts because it mirrors its Workspace: a change there must change this too.
// `whittle info --measure` checks it against a real step. No Node imports: the UI can show it too.

import { bucketSize } from '../gpu/bufferPool';
import { CE_STATE_STRIDE } from '../kernels/crossentropy';
import { planEmbeddingShards } from '../kernels/embedding';
import { groupRegion } from '../kernels/loraGroup';
import { gradNormLayout } from '../kernels/reduce';
import { expectedWeights, type ModelConfig } from './config';
import { layerLinears, LORA_DU_REGIONS, modelLayout, type LinearRole } from './layout';
import type { WeightDtype } from './weights';

export interface MemoryEstimateOptions {
  batch: number;
  seq: number;
  rank: number;
  dtype: WeightDtype;
  /** Module kinds the adapter targets (q_proj, ... / c_attn, ...). */
  targetModules: readonly string[];
  /** Largest storage binding; tables bigger than this are split (default: 128 MiB, lavapipe's). */
  maxStorageBufferBindingSize?: number;
  /** Keep every layer's activations for the backward or recompute them (default 'auto'). */
  recompute?: RecomputePolicy;
  /** What 'auto' must fit in (default DEFAULT_MEMORY_BUDGET_BYTES). */
  budgetBytes?: number;
}

/**
 * How the backward gets each layer's internals: 'always' recomputes the layer's forward just
 * before its backward (one layer's activations in memory), 'never' keeps every layer's from the
 * forward pass (layers x that, and no second forward), 'auto' keeps as many layers' as the
 * memory budget holds (all of them when they fit) and recomputes the rest.
 */
export type RecomputePolicy = 'always' | 'never' | 'auto';

/** Budget when nothing is known about the machine: a 4 GiB integrated GPU's share of memory. */
export const DEFAULT_MEMORY_BUDGET_BYTES = 2 * 1024 * 1024 * 1024;

export interface MemoryEstimate {
  /** Frozen base weights in the chosen dtype (norms, biases and GPT-2 positions stay f32). */
  weightsBytes: number;
  /** LoRA A and B, their gradients and AdamW's two moments, all f32. */
  loraBytes: number;
  loraParameters: number;
  /** The residual stream saved at every layer boundary: (layers + 1) x tokens x hidden x 4. */
  residualBytes: number;
  /** One layer's internals and their gradients, plus the LoRA u = xAᵀ per module. */
  layerScratchBytes: number;
  /** The kept layers' internals beyond the one set in layerScratchBytes (0 when every layer is recomputed). */
  keptActivationsBytes: number;
  /** The policy in effect: 'never' when every layer's activations are kept, else 'always' (see keptLayers). */
  recompute: 'always' | 'never';
  /** Layers whose activations are kept from the forward pass; the others are recomputed. */
  keptLayers: number;
  /**
   * The logits and the cross-entropy state: one vocabulary chunk, or every chunk when they are
   * kept for the backward (`keptLogits`).
   */
  logitsBytes: number;
  /**
   * Whether the backward finds every vocabulary chunk's logits from the forward pass instead of
   * recomputing all but the last (the head's matmul once per chunk instead of twice): only when
   * every layer's activations are kept and the job still fits the budget with them.
   */
  keptLogits: boolean;
  /** Gradient-norm partials and the clip coefficient. */
  optimizerScratchBytes: number;
  /**
   * Uniform buffers of kernel parameters (256 bytes per kernel launch of a step). Approximate:
   * about 100 launches per layer for forward, recomputation and backward.
   */
  kernelParamsBytes: number;
  totalBytes: number;
  /** The largest single buffer (checked against maxBufferSize). */
  largestBufferBytes: number;
  /**
   * The largest buffer a kernel binds whole: activations, LoRA tensors, embedding shards
   * (checked against maxStorageBufferBindingSize). Linear weights are left out: matmul splits
   * operands over the limit into ranges.
   */
  largestBindingBytes: number;
}

const VOCAB_CHUNK = 8192;
const DEFAULT_BINDING = 128 * 1024 * 1024;

function sum(sizes: number[]): number {
  return sizes.reduce((s, b) => s + b, 0);
}

/** Bytes a pool buffer of n f32 takes (the engine allocates at least one element). */
const f32 = (n: number) => bucketSize(Math.max(1, n) * 4);
/** One buffer of tensors each starting at a multiple of 64 floats (the Workspace's `regions`). */
const regionsF32 = (sizes: readonly number[]) => f32(sizes.reduce((s, n) => s + Math.ceil(Math.max(1, n) / 64) * 64, 0));

/** LoRA u buffers of one layer: one, a region per adapted role (none without an adapter). */
function loraUBuffers(roles: readonly LinearRole[], n: number): number[] {
  return roles.length ? [regionsF32(roles.map(() => n))] : [];
}

/** Linear layers of one block with their shapes: [kind, out, in] (as model/weights.ts loads them). */
function linearShapes(c: ModelConfig): [string, number, number][] {
  if (c.layers === 0) return [];
  return layerLinears(modelLayout(c).layers[0]!).map((l) => [l.module.slice(l.module.lastIndexOf('.') + 1), l.out[0], l.in[0]]);
}

/** Roles of the adapted linears in a block (the Workspace saves one LoRA u per role). */
function loraRoles(c: ModelConfig, targets: readonly string[]): LinearRole[] {
  return layerLinears(modelLayout(c).layers[0]!)
    .filter((l) => targets.includes(l.module.slice(l.module.lastIndexOf('.') + 1)))
    .map((l) => l.role);
}

export function estimateLoraJobMemory(c: ModelConfig, o: MemoryEstimateOptions): MemoryEstimate {
  const elem = o.dtype === 'f16' ? 2 : 4;
  const binding = o.maxStorageBufferBindingSize ?? DEFAULT_BINDING;

  // Weights: tables and linear matrices in dtype, 1-D tensors and GPT-2's position table in f32.
  const weights: number[] = [];
  const tableShards: number[] = [];
  for (const w of expectedWeights(c)) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const isTable = w.name.endsWith('embed_tokens.weight') || w.name === 'wte.weight' || w.name === 'lm_head.weight';
    if (isTable) {
      for (const s of planEmbeddingShards(c.vocabSize, c.hidden, o.dtype, binding)) tableShards.push(bucketSize(s.rowCount * c.hidden * elem));
    } else if (w.shape.length === 2 && w.name !== 'wpe.weight') {
      weights.push(bucketSize(n * elem));
    } else {
      weights.push(f32(n));
    }
  }

  // LoRA: a, b, gradA, gradB and two AdamW moments of each.
  weights.push(...tableShards);
  const lora: number[] = [];
  const tensorSizes: number[] = [];
  let loraParameters = 0;
  for (let l = 0; l < c.layers; l++) {
    for (const [kind, out, inF] of linearShapes(c)) {
      if (!o.targetModules.includes(kind)) continue;
      const aN = o.rank * inF;
      const bN = out * o.rank;
      loraParameters += aN + bN;
      lora.push(4 * f32(aN), 4 * f32(bN));
      tensorSizes.push(aN, bN);
    }
  }

  // The training Workspace (transformer.ts) for B x T with backward.
  const { hidden: C, intermediate: I, heads: H, kvHeads: Hkv, headDim: D, layers: L } = c;
  const B = o.batch;
  const T = o.seq;
  const N = B * T;
  const llama = c.family === 'llama';
  const residual = Array.from({ length: L + 1 }, () => f32(N * C));
  const vocabChunk = Math.min(c.vocabSize, VOCAB_CHUNK);
  const logits = [f32(N * vocabChunk), f32(N * CE_STATE_STRIDE), f32(N), f32(N), f32(4)];
  // Kept logits: one more chunk-sized buffer for each chunk but the last (which uses the one above).
  const chunks = planEmbeddingShards(c.vocabSize, c.hidden, o.dtype, binding).reduce((n, s) => n + Math.ceil(s.rowCount / vocabChunk), 0);
  const keptLogits = Array.from({ length: chunks - 1 }, () => f32(N * vocabChunk));
  // One layer's activations (the Workspace's LayerActivations).
  const activations = [
    regionsF32([N * C, N * C]), // h1|h2
    f32(2 * N), f32(2 * N), // norm stats
    regionsF32([N * H * D, N * Hkv * D, N * Hkv * D]), f32(N * H * D), f32(B * H * T), // q|k|v attn lse
    f32(N * C), // xmid
    regionsF32([N * I, llama ? N * I : 1]), f32(N * I), // gate|up act
    ...loraUBuffers([...new Set(loraRoles(c, o.targetModules))], N * o.rank),
  ];
  const scratch = [
    f32(N), f32(N), f32(N), // ids, targets, mask
    f32(2 * N), // final norm stats
    f32(llama ? 1 : N * 3 * C), // fused qkv
    f32(N * C), f32(N * C), f32(N), f32(N * C), // tmpC xout ones hF
    f32(3 * N + 1), // embedding-gradient index
    // backward
    f32(N * C), f32(N * C), f32(N * I), regionsF32([N * I, llama ? N * I : 1]), // dres dh dAct dGate|dUp
    f32(N * H * D), regionsF32([N * H * D, N * Hkv * D, N * Hkv * D]), f32(llama ? 1 : N * 3 * C), f32(B * H * T), // dAttn dq|dk|dv dqkv delta
    f32(LORA_DU_REGIONS * groupRegion(N, Math.max(o.rank, 1))), // du
    ...activations,
  ];
  const optimizer = tensorSizes.length ? [f32(gradNormLayout(tensorSizes).slots), f32(2)] : [];
  const rope = llama ? [f32(D / 2)] : [];
  const loraTensors = tensorSizes.map(f32);

  const est = {
    weightsBytes: sum(weights) + sum(rope),
    loraBytes: sum(lora),
    loraParameters,
    residualBytes: sum(residual),
    layerScratchBytes: sum(scratch),
    keptActivationsBytes: (L - 1) * sum(activations),
    recompute: 'never' as 'always' | 'never',
    keptLayers: L,
    logitsBytes: sum(logits),
    keptLogits: false,
    optimizerScratchBytes: sum(optimizer),
    kernelParamsBytes: bucketSize(256 * (100 * L + 20)),
    totalBytes: 0,
    largestBufferBytes: Math.max(...weights, ...rope, ...loraTensors, ...residual, ...scratch, ...logits, ...optimizer),
    largestBindingBytes: Math.max(...tableShards, ...rope, ...loraTensors, ...residual, ...scratch, ...logits, ...optimizer),
  };
  const total = (kept: number) =>
    est.weightsBytes + est.loraBytes + est.residualBytes + est.layerScratchBytes + kept + est.logitsBytes + est.optimizerScratchBytes + est.kernelParamsBytes;
  const policy = o.recompute ?? 'auto';
  const budget = o.budgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES;
  const keepAll = policy === 'never' || (policy === 'auto' && total(est.keptActivationsBytes) <= budget);
  if (!keepAll) {
    // Keeping k < L layers takes k sets besides the recomputed layers' shared one (in the scratch).
    const set = sum(activations);
    const fit = policy === 'auto' && set > 0 ? Math.floor((budget - total(0)) / set) : 0;
    est.keptLayers = Math.max(0, Math.min(L - 2, fit));
    est.keptActivationsBytes = est.keptLayers * set;
  }
  est.recompute = keepAll ? 'never' : 'always';
  est.keptLogits = keepAll && keptLogits.length > 0 && total(est.keptActivationsBytes) + sum(keptLogits) <= budget;
  if (est.keptLogits) est.logitsBytes += sum(keptLogits);
  est.totalBytes = total(est.keptActivationsBytes);
  return est;
}
