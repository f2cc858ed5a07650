// The sample fetches of src/ui/samples.ts, against the files the app ships (public/samples/).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hrefFor, parseHash } from '../../src/ui/router';
import { fetchSampleBytes, fetchSampleFiles, fetchSampleIndex, firstSentence, sampleUrl } from '../../src/ui/samples';

const SAMPLES_DIR = join(__dirname, '../../public/samples');
const BASE = 'http://127.0.0.1:4173/app/';
const lines = (file: string) => readFileSync(join(SAMPLES_DIR, file), 'utf8').split('\n').filter((l) => l.trim() !== '');

/** A fetch over public/samples that records what was asked. */
function fakeFetch(asked: string[]): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    asked.push(`${init?.method ?? 'GET'} ${url}`);
    if (!url.startsWith(`${BASE}samples/`)) return new Response('', { status: 404 });
    try {
      const body = readFileSync(join(SAMPLES_DIR, url.slice(`${BASE}samples/`.length)));
      return new Response(init?.method === 'HEAD' ? null : body, { headers: { 'content-length': String(body.length) } });
    } catch {
      return new Response('', { status: 404 });
    }
  }) as typeof fetch;
}

describe('sample datasets', () => {
  it('shows the first sentence of a description', () => {
    expect(firstSentence('Patient questions (hours, fees). Every reply opens politely.')).toBe('Patient questions (hours, fees).');
    expect(firstSentence('No full stop')).toBe('No full stop');
    expect(firstSentence('Rules ("-ing" -> "-in\'", and "arr!") end. More.')).toBe('Rules ("-ing" -> "-in\'", and "arr!") end.');
  });

  it('fetches the index, sizes and files from the page origin, cutting the quick check', async () => {
    const asked: string[] = [];
    const f = fakeFetch(asked);
    const [clinic, pirate] = await fetchSampleIndex(BASE, f);
    expect(asked).toEqual([`GET ${BASE}samples/index.json`]);
    expect(sampleUrl('x.jsonl', BASE)).toBe(`${BASE}samples/x.jsonl`);
    const bytes = readFileSync(join(SAMPLES_DIR, clinic!.trainFile)).length + readFileSync(join(SAMPLES_DIR, clinic!.validFile)).length;
    expect(await fetchSampleBytes(clinic!, BASE, f)).toBe(bytes);

    const full = await fetchSampleFiles(pirate!, BASE, { fetchImpl: f });
    expect(full.train.name).toBe('pirate-style.train.jsonl');
    expect(await full.train.text()).toBe(readFileSync(join(SAMPLES_DIR, pirate!.trainFile), 'utf8'));
    const quick = await fetchSampleFiles(pirate!, BASE, { firstExamples: 32, fetchImpl: f });
    expect(quick.train.name).toBe('pirate-style.train.first-32.jsonl');
    expect((await quick.train.text()).trimEnd().split('\n')).toEqual(lines(pirate!.trainFile).slice(0, 32));
    expect(await quick.valid.text()).toBe(readFileSync(join(SAMPLES_DIR, pirate!.validFile), 'utf8'));

    await expect(fetchSampleFiles({ ...pirate!, trainFile: 'missing.jsonl' }, BASE, { fetchImpl: f })).rejects.toThrow('Could not read samples/missing.jsonl: HTTP 404');
  });

  it('routes "Open in the full form" to the create page with the sample', () => {
    const href = hrefFor({ page: 'new-job', from: null, sample: 'pirate-style' });
    expect(href).toBe('#/jobs/new?sample=pirate-style');
    expect(parseHash(href)).toEqual({ page: 'new-job', from: null, sample: 'pirate-style' });
    expect(parseHash('#/jobs/new?from=ftjob-1')).toEqual({ page: 'new-job', from: 'ftjob-1' });
    expect(hrefFor({ page: 'new-job', from: 'ftjob-1' })).toBe('#/jobs/new?from=ftjob-1');
  });
});
