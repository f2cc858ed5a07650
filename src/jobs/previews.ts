/**
 * What the create-job form shows before a job exists: the hyperparameters a job would get with
 * its memory estimate against this device, and the first examples as tokens with trained flags.
 */
import { previewExamples, type ExamplesPreview } from '../data/examplePreview';
import type { WeightDtype } from '../model/weights';
import { AUTO_MAX_SEQ_LEN, resolveHyperparameters, type HyperparameterRequest, type Hyperparameters } from '../train/hyperparameters';
import type { ModelSource } from './job';
import { resolveWithMemory, type JobMemoryCheck } from './jobMemory';
import type { ModelPool } from './modelPool';

/** The job form's preview: resolved values and whether the job fits the GPU. */
export interface HyperparametersPreview extends Hyperparameters {
  /** The memory estimate at these values against the device's limits (absent from older workers). */
  memory?: JobMemoryCheck;
}

/**
 * Resolved hyperparameters a job would get, without creating it, with its memory estimate
 * against this device (an auto batch already capped to fit).
 */
export async function previewHyperparameters(
  pool: ModelPool,
  model: ModelSource,
  examples: number,
  requested: HyperparameterRequest,
  longestExample?: number,
  dtype?: WeightDtype | 'auto',
): Promise<HyperparametersPreview> {
  const tm = await pool.textModel(model);
  const context = { model: { family: tm.config.family, maxPositions: tm.config.maxPositions }, longestExample, random: () => 0 };
  // Out-of-range values fail here, naming their field, before any device is asked.
  resolveHyperparameters(requested, examples, context);
  const { limits, dtype: weights } = await pool.memoryContext(dtype, true);
  const { hyperparameters, memory } = resolveWithMemory(requested, examples, context, tm.config, weights, limits);
  return { ...hyperparameters, memory };
}

/** The first examples of a file as tokens with trained flags (the create-job preview). */
export async function previewFileExamples(pool: ModelPool, file: Blob, model: ModelSource, options: { count?: number; maxSeqLen?: number } = {}): Promise<ExamplesPreview> {
  const tm = await pool.textModel(model);
  const maxSeqLen = options.maxSeqLen ?? Math.min(tm.config.maxPositions, AUTO_MAX_SEQ_LEN);
  return previewExamples(file.stream(), tm.tokenizer, tm.template, { count: Math.min(options.count ?? 3, 20), maxSeqLen });
}
