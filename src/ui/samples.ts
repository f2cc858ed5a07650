// The sample datasets the app ships in public/samples/ (listed by index.json) and the settings of
// the first-screen "Try it" job. Plain TypeScript (no React), so Node tests can use the same
// settings the page does.
import type { HyperparameterRequest } from '../train/hyperparameters';

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

export const QUICK_EXAMPLES = 32;

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

/** The first sentence of a description: the one-line summary a list shows. */
export function firstSentence(text: string): string {
  const m = /^(.+?[.!?])(\s|$)/.exec(text.trim());
  return m ? m[1]! : text.trim();
}

/**
 * Hyperparameters of the "Try it" job on the embedded model (0.4 M parameters, 128 positions).
 * Auto's learning rate (OpenAI's 2e-4 scale, meant for large models) barely moves a model this
 * small in a few dozen steps; 1e-2 with rank 8 visibly changes its style within one epoch
 * (test/train/embeddedFinetune.test.ts checks that the validation loss drops with these).
 */
export function tryItHyperparameters(sample: SampleDataset, length: TryItLength): HyperparameterRequest {
  const quick = length === 'quick';
  return {
    epochs: quick ? 1 : sample.suggestedEpochs,
    batchSize: 8,
    learningRate: 1e-2,
    warmupSteps: 0,
    loraR: 8,
    loraAlpha: 16,
    loraDropout: 0,
    seed: 1,
    // The quick check's 4 steps: a small validation batch at steps 2 and 4, not after each.
    ...(quick ? { evalEvery: 2 } : {}),
  };
}

/** Training examples a "Try it" job uses. */
export function tryItExamples(sample: SampleDataset, length: TryItLength): number {
  return length === 'quick' ? Math.min(QUICK_EXAMPLES, sample.trainExamples) : sample.trainExamples;
}

/** Optimizer steps of a "Try it" job (no gradient accumulation): what the length choice shows. */
export function tryItSteps(sample: SampleDataset, length: TryItLength): number {
  const hp = tryItHyperparameters(sample, length);
  return (hp.epochs as number) * Math.ceil(tryItExamples(sample, length) / (hp.batchSize as number));
}

/** The first `n` non-blank lines of a JSONL text (the quick check's training set). */
export function firstJsonlLines(text: string, n: number): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(0, n).map((l) => `${l}\n`).join('');
}

/** The URL of a file in samples/, resolved against the page (same origin, cached offline). */
export function sampleUrl(file: string, base: string): string {
  return new URL(`samples/${file}`, base).href;
}

/**
 * Reads a sample's training and validation files as Files (what a user would have picked); with
 * `firstExamples`, only that many training examples, in a file whose name says so.
 */
export async function fetchSampleFiles(
  sample: SampleDataset,
  base: string,
  options: { firstExamples?: number; fetchImpl?: typeof fetch } = {},
): Promise<{ train: File; valid: File }> {
  const fetchImpl = options.fetchImpl ?? fetch;
  const get = async (name: string) => {
    const res = await fetchImpl(sampleUrl(name, base));
    if (!res.ok) throw new Error(`Could not read samples/${name}: HTTP ${res.status}`);
    return res.text();
  };
  const [trainText, validText] = await Promise.all([get(sample.trainFile), get(sample.validFile)]);
  const n = options.firstExamples;
  const cut = n !== undefined && n < sample.trainExamples;
  const trainName = cut ? sample.trainFile.replace(/(\.jsonl)?$/, `.first-${n}$1`) : sample.trainFile;
  return {
    train: new File([cut ? firstJsonlLines(trainText, n) : trainText], trainName, { type: 'application/jsonl' }),
    valid: new File([validText], sample.validFile, { type: 'application/jsonl' }),
  };
}

/** The sample index from the page's origin. */
export async function fetchSampleIndex(base: string, fetchImpl: typeof fetch = fetch): Promise<SampleDataset[]> {
  const res = await fetchImpl(sampleUrl('index.json', base));
  if (!res.ok) throw new Error(`Could not read samples/index.json: HTTP ${res.status}`);
  return parseSampleIndex(await res.json());
}

/** Bytes of both files of a sample, from HEAD requests (null when the server does not say). */
export async function fetchSampleBytes(sample: SampleDataset, base: string, fetchImpl: typeof fetch = fetch): Promise<number | null> {
  const sizes = await Promise.all(
    [sample.trainFile, sample.validFile].map(async (f) => {
      const res = await fetchImpl(sampleUrl(f, base), { method: 'HEAD' });
      const n = Number(res.headers.get('content-length'));
      return res.ok && Number.isFinite(n) && n > 0 ? n : null;
    }),
  );
  return sizes.every((s): s is number => s !== null) ? sizes.reduce((a, b) => a + b, 0) : null;
}
