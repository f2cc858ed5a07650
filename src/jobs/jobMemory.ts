// Whether a LoRA job fits the GPU, before it is created: the config-only estimate of
// model/memoryEstimate.ts against the device's buffer limits and a total budget. WebGPU does not
// say how much memory a GPU has, so the budget is a heuristic (memoryBudget below) and the UI
// calls it an estimate. No GPU objects, no Node imports: the worker and the tests use it alike.

import type { ModelConfig } from '../model/config';
import { DEFAULT_MEMORY_BUDGET_BYTES, estimateLoraJobMemory, type MemoryEstimate } from '../model/memoryEstimate';
import type { WeightDtype } from '../model/weights';
import { AUTO_BATCH_MAX, resolveHyperparameters, type HyperparameterRequest, type Hyperparameters, type ResolveContext } from '../train/hyperparameters';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** WebGPU's default limits: what every adapter offers, used when no device could be opened. */
export const WEBGPU_DEFAULT_LIMITS = { maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 128 * MiB } as const;

/** Budget when nothing is known about the machine: a 4 GiB integrated GPU's share of memory. */
export const DEFAULT_BUDGET_BYTES = DEFAULT_MEMORY_BUDGET_BYTES;
/** Share of the machine's memory (navigator.deviceMemory) a job may take. */
export const DEVICE_MEMORY_SHARE = 0.5;

export interface MemoryLimits {
  /** The largest single GPU buffer. */
  maxBufferSize: number;
  /** The largest buffer a kernel may bind whole. */
  maxStorageBufferBindingSize: number;
  /** Where the two limits come from: the open device, or WebGPU's defaults when there is none. */
  limitsFrom: 'device' | 'webgpu-defaults';
  /** Bytes a job may use in all (a heuristic, see memoryBudget). */
  budgetBytes: number;
  /** How the budget was found: from navigator.deviceMemory, or the default. */
  budgetFrom: 'device-memory' | 'default';
}

/**
 * The limits a job is checked against. `deviceMemoryGiB` is navigator.deviceMemory (Chromium,
 * pages and workers: the machine's RAM in GiB, rounded down to a power of two and capped at 8);
 * the budget is half of it, since browsers give a GPU (integrated: shared memory; discrete: at
 * least that much VRAM in machines sold with it) no more than that without risk. Without it,
 * DEFAULT_BUDGET_BYTES.
 */
export function memoryLimits(device: { maxBufferSize: number; maxStorageBufferBindingSize: number } | null, deviceMemoryGiB?: number | null): MemoryLimits {
  const known = typeof deviceMemoryGiB === 'number' && Number.isFinite(deviceMemoryGiB) && deviceMemoryGiB > 0;
  return {
    maxBufferSize: device?.maxBufferSize ?? WEBGPU_DEFAULT_LIMITS.maxBufferSize,
    maxStorageBufferBindingSize: device?.maxStorageBufferBindingSize ?? WEBGPU_DEFAULT_LIMITS.maxStorageBufferBindingSize,
    limitsFrom: device ? 'device' : 'webgpu-defaults',
    budgetBytes: known ? Math.round(deviceMemoryGiB * DEVICE_MEMORY_SHARE * GiB) : DEFAULT_BUDGET_BYTES,
    budgetFrom: known ? 'device-memory' : 'default',
  };
}

/** navigator.deviceMemory where the runtime has it (Chromium), else null. */
export function navigatorDeviceMemory(): number | null {
  const v = (globalThis as { navigator?: { deviceMemory?: unknown } }).navigator?.deviceMemory;
  return typeof v === 'number' ? v : null;
}

export interface JobShape {
  batch: number;
  seq: number;
  rank: number;
  dtype: WeightDtype;
  targetModules: readonly string[];
}

export interface MemoryProblem {
  /** buffer: one buffer over maxBufferSize; binding: over maxStorageBufferBindingSize; total: over the budget. */
  kind: 'buffer' | 'binding' | 'total';
  bytes: number;
  limit: number;
  message: string;
}

/** The job form's memory line: the estimate, the limits, and what is over them. */
export interface JobMemoryCheck extends JobShape {
  estimate: MemoryEstimate;
  limits: MemoryLimits;
  /** Empty when the job fits. */
  problems: MemoryProblem[];
}

/** Bytes in words for the messages: 640 KiB, 7.5 MiB, 160 MiB, 2.0 GiB. */
const mib = (b: number) => (b >= GiB ? `${(b / GiB).toFixed(1)} GiB` : b >= MiB ? `${(b / MiB).toFixed(b < 10 * MiB ? 1 : 0)} MiB` : `${Math.round(b / 1024)} KiB`);

/** Estimates a job's memory and lists what does not fit `limits`. */
export function checkJobMemory(config: ModelConfig, shape: JobShape, limits: MemoryLimits): JobMemoryCheck {
  // Activations are kept for the backward as far as the budget holds them; other layers are recomputed.
  const estimate = estimateLoraJobMemory(config, { ...shape, maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, budgetBytes: limits.budgetBytes });
  const problems: MemoryProblem[] = [];
  const where = limits.limitsFrom === 'device' ? 'this GPU' : 'WebGPU by default';
  const tokens = `${shape.batch} × ${shape.seq} tokens`;
  if (estimate.largestBufferBytes > limits.maxBufferSize) {
    problems.push({
      kind: 'buffer',
      bytes: estimate.largestBufferBytes,
      limit: limits.maxBufferSize,
      message: `One GPU buffer of this job needs ${mib(estimate.largestBufferBytes)}, more than the ${mib(limits.maxBufferSize)} ${where} allows (maxBufferSize): lower the batch size or max sequence length.`,
    });
  }
  if (estimate.largestBindingBytes > limits.maxStorageBufferBindingSize) {
    problems.push({
      kind: 'binding',
      bytes: estimate.largestBindingBytes,
      limit: limits.maxStorageBufferBindingSize,
      message: `At ${tokens} one tensor a kernel binds whole is ${mib(estimate.largestBindingBytes)}, more than the ${mib(limits.maxStorageBufferBindingSize)} a kernel can bind on ${where} (maxStorageBufferBindingSize): lower the batch size or max sequence length.`,
    });
  }
  if (estimate.totalBytes > limits.budgetBytes) {
    problems.push({
      kind: 'total',
      bytes: estimate.totalBytes,
      limit: limits.budgetBytes,
      message: `The job needs about ${mib(estimate.totalBytes)} of GPU memory, more than the ${mib(limits.budgetBytes)} budget (an estimate${limits.budgetFrom === 'default' ? ': the browser does not say how much memory this machine has' : " from this machine's memory"}): lower the batch size, max sequence length or rank.`,
    });
  }
  return { ...shape, estimate, limits, problems };
}

/**
 * The largest micro-batch from 1 to `upTo` that fits `limits` at this shape, or 0 when even one
 * sequence does not (resolveHyperparameters' maxBatchByMemory). Memory grows with the batch, so
 * a binary search is exact.
 */
export function maxBatchByMemory(config: ModelConfig, shape: Omit<JobShape, 'batch'>, limits: MemoryLimits, upTo: number): number {
  const fits = (batch: number) => checkJobMemory(config, { ...shape, batch }, limits).problems.length === 0;
  if (!fits(1)) return 0;
  let lo = 1;
  let hi = Math.max(1, Math.floor(upTo));
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * resolveHyperparameters with the memory check: an auto batch is capped at the largest that fits
 * (maxBatchByMemory at the resolved max sequence length, rank and modules; accumulation makes
 * up the rest), and the final shape's check comes back with the values.
 */
export function resolveWithMemory(
  requested: HyperparameterRequest,
  examples: number,
  context: Omit<ResolveContext, 'maxBatchByMemory'> & { model: NonNullable<ResolveContext['model']> },
  config: ModelConfig,
  dtype: WeightDtype,
  limits: MemoryLimits,
): { hyperparameters: Hyperparameters; memory: JobMemoryCheck } {
  // One draw for the seed, so the second pass picks the same one.
  const draw = (context.random ?? Math.random)();
  const ctx: ResolveContext = { ...context, random: () => draw };
  let hp = resolveHyperparameters(requested, examples, ctx);
  const shape = { seq: hp.maxSeqLen, rank: hp.lora.r, dtype, targetModules: hp.lora.targetModules };
  if (hp.auto.includes('batchSize')) {
    const cap = maxBatchByMemory(config, shape, limits, AUTO_BATCH_MAX);
    if (cap >= 1 && cap < hp.batchSize) hp = resolveHyperparameters(requested, examples, { ...ctx, maxBatchByMemory: cap });
  }
  return { hyperparameters: hp, memory: checkJobMemory(config, { ...shape, batch: hp.batchSize }, limits) };
}

/** Training examples a job is sized for before a file is chosen (the auto batch is then 1). */
export const DEFAULT_JOB_EXAMPLES = 500;

/**
 * The memory check of a default job on a model (every hyperparameter auto, DEFAULT_JOB_EXAMPLES
 * examples), from its config alone: what the model list shows before anything is downloaded.
 */
export function defaultJobMemory(config: ModelConfig, dtype: WeightDtype, limits: MemoryLimits): JobMemoryCheck {
  const context = { model: { family: config.family, maxPositions: config.maxPositions }, random: () => 0 };
  return resolveWithMemory({}, DEFAULT_JOB_EXAMPLES, context, config, dtype, limits).memory;
}
