// whittle try: the "Try it" card's job from the CLI, with the card's settings resolved on the
// shipped model exactly as the worker resolves them.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { parseFinetuneSettings } from '../../src/formats/finetuneSettings';
import { EMBEDDED_MODEL_NAME, parseSampleIndex, tryItHyperparameters } from '../../src/jobs/samples';
import { parseModelConfig } from '../../src/model/config';
import { modelResolveContext, resolveHyperparameters, type Hyperparameters } from '../../src/train/hyperparameters';
import { parseResultsCsv } from '../../src/train/metrics';
import { runCli } from './run';

const PUBLIC = join(__dirname, '../../public');
const MODEL_DIR = join(PUBLIC, 'models', EMBEDDED_MODEL_NAME);
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as unknown;
const tmp = mkdtempSync(join(tmpdir(), 'whittle-try-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('whittle try', () => {
  it("trains the quick check of a sample with the card's settings on the built-in model", async () => {
    const out = join(tmp, 'pirate');
    const run = await runCli(['try', 'pirate-style', '--quick', '--out', out, '--log-every', '4']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^try pirate-style \(quick check, 32 examples\)/);

    // The settings the page's job gets: the card's request resolved with the model's own rules.
    const sample = parseSampleIndex(readJson(join(PUBLIC, 'samples/index.json'))).find((s) => s.id === 'pirate-style')!;
    const model = modelResolveContext(parseModelConfig(readJson(join(MODEL_DIR, 'config.json'))), parseFinetuneSettings(readJson(join(MODEL_DIR, 'whittle_finetune.json'))));
    const job = readJson(join(out, 'job.json')) as { model: string; hyperparameters: Hyperparameters };
    const expected = resolveHyperparameters(tryItHyperparameters(sample, 'quick'), 32, { model, longestExample: job.hyperparameters.maxSeqLen });
    expect(job.hyperparameters).toEqual(expected);
    expect([job.hyperparameters.learningRate, job.hyperparameters.batchSize, job.hyperparameters.lora.r, job.hyperparameters.seed]).toEqual([0.008, 8, 16, 1]);

    // The training file is the first 32 lines of the sample, as the page uploads it.
    const cut = readFileSync(join(out, 'pirate-style.train.first-32.jsonl'), 'utf8').trimEnd().split('\n');
    expect(cut).toEqual(readFileSync(join(PUBLIC, 'samples', sample.trainFile), 'utf8').trimEnd().split('\n').slice(0, 32));
    const rows = parseResultsCsv(readFileSync(join(out, 'metrics.csv'), 'utf8'));
    expect(rows.map((r) => r.step)).toEqual([1, 2, 3, 4]);
    // The small validation batch every other step (the card's quick setting), falling.
    const valid = rows.map((r) => r.valid_loss);
    expect(Number.isFinite(valid[1]) && Number.isFinite(valid[3])).toBe(true);
    expect(valid[3]!).toBeLessThan(valid[1]!);
  });

  it('names the samples when the id is unknown', async () => {
    const run = await runCli(['try', 'nope', '--out', join(tmp, 'x')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/there is no sample "nope" \(samples: clinic-assistant, pirate-style/);
  });
});
