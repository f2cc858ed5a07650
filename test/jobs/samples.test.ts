// The sample index and the "Try it" job's settings (src/jobs/samples.ts), against the files and
// the model the app ships (public/samples/, public/models/whittle-bilingual-small/).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFinetuneSettings } from '../../src/formats/finetuneSettings';
import { firstExamplesFileName, firstJsonlLines, parseSampleIndex, QUICK_EXAMPLES, tryItExamples, tryItHyperparameters, tryItSteps } from '../../src/jobs/samples';
import { modelResolveContext } from '../../src/train/hyperparameters';

const ROOT = join(__dirname, '../..');
const SAMPLES_DIR = join(ROOT, 'public/samples');
const MODEL_DIR = join(ROOT, 'public/models/whittle-bilingual-small');
const indexJson = JSON.parse(readFileSync(join(SAMPLES_DIR, 'index.json'), 'utf8')) as unknown;
const lines = (file: string) => readFileSync(join(SAMPLES_DIR, file), 'utf8').split('\n').filter((l) => l.trim() !== '');
const readJson = (name: string) => JSON.parse(readFileSync(join(MODEL_DIR, name), 'utf8')) as Record<string, unknown>;

describe('sample datasets', () => {
  it('parses the shipped index, and its counts match the files', () => {
    const samples = parseSampleIndex(indexJson);
    expect(samples.map((s) => s.id)).toEqual(['clinic-assistant', 'pirate-style', 'clinic-zh']);
    for (const s of samples) {
      expect(lines(s.trainFile)).toHaveLength(s.trainExamples);
      expect(lines(s.validFile)).toHaveLength(s.validExamples);
    }
  });

  it('rejects entries with missing fields or paths outside samples/', () => {
    const good = parseSampleIndex(indexJson)[0]!;
    expect(() => parseSampleIndex({})).toThrow(/no "samples" list/);
    expect(() => parseSampleIndex({ samples: [{ ...good, trainFile: '../secret.jsonl' }] })).toThrow(/entry 0: "trainFile"/);
    expect(() => parseSampleIndex({ samples: [{ ...good, trainExamples: 0 }] })).toThrow(/"trainExamples"/);
    expect(() => parseSampleIndex({ samples: [good, { ...good, title: undefined }] })).toThrow(/entry 1: "title"/);
  });

});

describe('the "Try it" job', () => {
  const config = readJson('config.json');
  const finetune = parseFinetuneSettings(readJson('whittle_finetune.json'));
  const model = modelResolveContext({ family: 'llama', maxPositions: config.max_position_embeddings as number, hidden: config.hidden_size as number }, finetune);

  it('asks only for its length and seed: the rest is auto, as in the form and the CLI', () => {
    const pirate = parseSampleIndex(indexJson).find((s) => s.id === 'pirate-style')!;
    expect(tryItHyperparameters(pirate, 'suggested')).toEqual({ epochs: 3, seed: 1 });
    expect(tryItHyperparameters(pirate, 'quick')).toEqual({ epochs: 1, seed: 1, evalEvery: 2 });
  });

  it("sizes the runs with the shipped model's recommended batch: every example, or the first 32", () => {
    const pirate = parseSampleIndex(indexJson).find((s) => s.id === 'pirate-style')!;
    expect(finetune.batchSize).toBe(8);
    expect(tryItExamples(pirate, 'suggested')).toBe(112);
    expect(tryItExamples(pirate, 'quick')).toBe(QUICK_EXAMPLES);
    expect(tryItSteps(pirate, 'suggested', model)).toBe(3 * 14);
    expect(tryItSteps(pirate, 'quick', model)).toBe(4);
    // Without a recommendation the generic rule (0.2% of 112 examples -> batch 1) applies.
    expect(tryItSteps(pirate, 'quick', { ...model, finetune: null })).toBe(32);
  });

  it('cuts the quick check to the first lines, in a file whose name says so', () => {
    expect(firstJsonlLines('a\n\nb\nc\n', 2)).toBe('a\nb\n');
    expect(firstExamplesFileName('pirate-style.train.jsonl', 32)).toBe('pirate-style.train.first-32.jsonl');
  });
});
