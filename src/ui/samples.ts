// Fetching the sample datasets the app ships in public/samples/ from the page's origin (so they
// work offline from the service worker's cache). What the samples are and the "Try it" job's
// settings live in the engine (src/jobs/samples.ts), shared with `whittle try`.
import { firstExamplesFileName, firstJsonlLines, parseSampleIndex, type SampleDataset } from '../jobs/samples';

/** The first sentence of a description: the one-line summary a list shows. */
export function firstSentence(text: string): string {
  const m = /^(.+?[.!?])(\s|$)/.exec(text.trim());
  return m ? m[1]! : text.trim();
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
  const trainName = cut ? firstExamplesFileName(sample.trainFile, n) : sample.trainFile;
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
