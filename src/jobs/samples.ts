// The sample datasets the app ships in public/samples/ (listed by index.json) and the settings of
// the "Try it" job on them: one definition that the first screen's card and `whittle try` both
// run, so the CLI reproduces exactly what the page does.
import { resolveHyperparameters, type HyperparameterRequest, type ResolveContext } from '../train/hyperparameters';

export interface SampleDataset {
  id: string;
  title: string;
  description: string;
  trainFile: string;
  validFile: string;
  trainExamples: number;
  validExamples: number;
  suggestedEpochs: number;
}

/**
 * How long the "Try it" job runs: the sample's suggested epochs over all of it, or a quick check
 * (one epoch over its first QUICK_EXAMPLES training examples: seconds on a laptop GPU, a few
 * minutes on a CPU-emulated one).
 */
export type TryItLength = 'suggested' | 'quick';

/** The model the app ships in public/models/ and the "Try it" job fine-tunes. */
export const EMBEDDED_MODEL_NAME = 'whittle-bilingual-small';

export const QUICK_EXAMPLES = 32;
/** Fixed so that two runs of the same sample (page or CLI) train the same adapter. */
export const TRY_IT_SEED = 1;

function field<T>(o: Record<string, unknown>, key: string, check: (v: unknown) => v is T, where: string): T {
  const v = o[key];
  if (!check(v)) throw new Error(`${where}: "${key}" is missing or has the wrong type`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
// A file name inside samples/, never a path elsewhere: the index is data, not code.
const isFileName = (v: unknown): v is string => isString(v) && /^[\w.-]+$/.test(v) && !v.startsWith('.');

/** public/samples/index.json, checked field by field. */
export function parseSampleIndex(json: unknown): SampleDataset[] {
  if (typeof json !== 'object' || json === null || !Array.isArray((json as { samples?: unknown }).samples)) {
    throw new Error('samples/index.json has no "samples" list');
  }
  return (json as { samples: unknown[] }).samples.map((s, i) => {
    if (typeof s !== 'object' || s === null) throw new Error(`samples/index.json: entry ${i} is not an object`);
    const o = s as Record<string, unknown>;
    const where = `samples/index.json entry ${i}`;
    return {
      id: field(o, 'id', isFileName, where),
      title: field(o, 'title', isString, where),
      description: field(o, 'description', isString, where),
      trainFile: field(o, 'trainFile', isFileName, where),
      validFile: field(o, 'validFile', isFileName, where),
      trainExamples: field(o, 'trainExamples', isCount, where),
      validExamples: field(o, 'validExamples', isCount, where),
      suggestedEpochs: field(o, 'suggestedEpochs', isCount, where),
    };
  });
}

/**
 * What the "Try it" job asks for: the sample's length and a fixed seed. Everything else is 'auto',
 * the same rules as the job form and `whittle train`, so the learning rate, rank and batch come
 * from the model (its whittle_finetune.json, else the width rule).
 */
export function tryItHyperparameters(sample: SampleDataset, length: TryItLength): HyperparameterRequest {
  const quick = length === 'quick';
  return {
    epochs: quick ? 1 : sample.suggestedEpochs,
    seed: TRY_IT_SEED,
    // The quick check's few steps: a small validation batch every other step, not after each.
    ...(quick ? { evalEvery: 2 } : {}),
  };
}

/** Training examples a "Try it" job uses. */
export function tryItExamples(sample: SampleDataset, length: TryItLength): number {
  return length === 'quick' ? Math.min(QUICK_EXAMPLES, sample.trainExamples) : sample.trainExamples;
}

/** Optimizer steps of a "Try it" job on a model (before any memory cap): what the length choice shows. */
export function tryItSteps(sample: SampleDataset, length: TryItLength, model: ResolveContext['model']): number {
  return resolveHyperparameters(tryItHyperparameters(sample, length), tryItExamples(sample, length), { ...(model ? { model } : {}), random: () => 0 }).totalSteps;
}

/** The first `n` non-blank lines of a JSONL text (the quick check's training set). */
export function firstJsonlLines(text: string, n: number): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(0, n).map((l) => `${l}\n`).join('');
}

/** The training file's name when only its first `n` examples are used. */
export function firstExamplesFileName(trainFile: string, n: number): string {
  return trainFile.replace(/(\.jsonl)?$/, `.first-${n}$1`);
}
