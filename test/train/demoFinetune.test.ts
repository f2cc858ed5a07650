// A first fine-tune must visibly work: the shipped model (public/models/whittle-bilingual-small)
// fine-tuned on each shipped sample as the first screen's "Try it" card does (auto settings from
// the model folder's whittle_finetune.json, the sample's suggested epochs), greedy with the training system
// message, on prompts that are in no sample file (test/fixtures/data/finetune_heldout.json).
// Thresholds are the ones a user would judge by; the outputs are printed for the record.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatTemplate } from '../../src/data/chatTemplate';
import { createTokenCounter, tokenizeExamples } from '../../src/data/examples';
import { validateJsonl } from '../../src/data/datasetReport';
import { TextTokenizer } from '../../src/data/tokenizer';
import { generate } from '../../src/model/generate';
import type { LoadedModel } from '../../src/model/load';
import type { LoraAdapter } from '../../src/model/lora';
import { modelResolveContext, resolveHyperparameters } from '../../src/train/hyperparameters';
import { Trainer } from '../../src/train/trainer';
import { parseSampleIndex, tryItHyperparameters, type SampleDataset } from '../../src/jobs/samples';
import { openChatModel, readChatJsonl } from '../helpers/model';
import { scorePirateRewrite } from '../../scripts/pirateCriterion';

const ROOT = join(__dirname, '../..');
const MODEL_DIR = join(ROOT, 'public/models/whittle-bilingual-small');
const SAMPLES_DIR = join(ROOT, 'public/samples');
const HELDOUT = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/data/finetune_heldout.json'), 'utf8')) as Record<string, Record<string, string[]>>;
const DOCTOR_QA = join(ROOT, 'test/fixtures/data/doctor_qa_mixed.jsonl');
const FINETUNE_TIMEOUT_MS = 20 * 60_000;

let loaded: LoadedModel;
let tokenizer: TextTokenizer;
let template: ChatTemplate;
let samples: SampleDataset[];
beforeAll(async () => {
  const opened = await openChatModel(MODEL_DIR);
  loaded = opened;
  tokenizer = opened.tokenizer;
  template = opened.template;
  samples = parseSampleIndex(JSON.parse(readFileSync(join(SAMPLES_DIR, 'index.json'), 'utf8')));
});
afterAll(() => loaded.model.destroy());

async function replies(system: string, questions: readonly string[], adapter: LoraAdapter | null): Promise<string[]> {
  const prompts = questions.map((q) => tokenizer.encode(template.render([{ role: 'system', content: system }, { role: 'user', content: q }], { addGenerationPrompt: true })));
  const out: string[] = [];
  for (const p of prompts) {
    const r = await generate(loaded.model, [p], adapter, { maxNewTokens: 64, temperature: 0, eosTokenIds: [tokenizer.eos!.id] });
    out.push(tokenizer.decode(r.tokens[0]!, { skipSpecialTokens: true }).trim());
  }
  return out;
}

interface Run {
  base: string[];
  tuned: string[];
  lossBefore: number;
  lossAfter: number;
}

/** Fine-tunes on one sample, then answers `questions` with and without the adapter. */
async function fineTune(id: string, questions: readonly string[]): Promise<Run> {
  const sample = samples.find((s) => s.id === id)!;
  const train = readChatJsonl(join(SAMPLES_DIR, sample.trainFile));
  const valid = readChatJsonl(join(SAMPLES_DIR, sample.validFile));
  const system = train[0]!.messages[0]!.content;
  // Exactly the first screen's "Try it" full run: 'auto' everywhere but the epochs and seed, so the
  // learning rate, rank and batch come from the model folder's whittle_finetune.json.
  const hp = resolveHyperparameters(tryItHyperparameters(sample, 'suggested'), train.length, { model: modelResolveContext(loaded.config, loaded.files.finetune) });
  const trainer = new Trainer({
    model: loaded.model,
    hyperparameters: hp,
    train: tokenizeExamples(train, tokenizer, template, { maxSeqLen: hp.maxSeqLen }),
    validation: tokenizeExamples(valid, tokenizer, template, { maxSeqLen: hp.maxSeqLen }),
    padId: tokenizer.pad!.id,
  });
  try {
    const base = await replies(system, questions, null);
    const before = (await trainer.evaluateValidation())!;
    const t0 = performance.now();
    const result = await trainer.run();
    expect(result.status).toBe('completed');
    const after = (await trainer.evaluateValidation())!;
    const tuned = await replies(system, questions, trainer.adapter);
    console.log(`${id}: ${trainer.totalSteps} steps in ${((performance.now() - t0) / 1000).toFixed(0)} s, validation loss ${before.loss.toFixed(3)} -> ${after.loss.toFixed(3)}`);
    questions.forEach((q, i) => console.log(JSON.stringify({ q, base: base[i], tuned: tuned[i] })));
    return { base, tuned, lossBefore: before.loss, lossAfter: after.loss };
  } finally {
    trainer.destroy();
  }
}

describe('a first fine-tune of the embedded model visibly works', () => {
  it(
    'clinic-assistant: opens and signs off as trained on new questions, sends urgent ones to emergency services',
    async () => {
      const { questions, urgent } = HELDOUT['clinic-assistant'] as { questions: string[]; urgent: string[] };
      const run = await fineTune('clinic-assistant', [...questions, ...urgent]);
      const format = (r: string) => r.startsWith('Thanks for asking!') && r.endsWith('— Maple Clinic');
      expect(run.tuned.slice(0, 5).filter(format).length).toBeGreaterThanOrEqual(4);
      expect(run.base.filter(format)).toEqual([]);
      expect(run.tuned.slice(5).filter((r) => /emergency/i.test(r)).length).toBeGreaterThanOrEqual(2);
      expect(run.lossAfter).toBeLessThan(run.lossBefore);
    },
    FINETUNE_TIMEOUT_MS,
  );

  it(
    'clinic-zh: opens with 感谢您的提问! and signs off ——枫林诊所 on new questions',
    async () => {
      const { questions } = HELDOUT['clinic-zh'] as { questions: string[] };
      const run = await fineTune('clinic-zh', questions);
      const format = (r: string) => r.startsWith('感谢您的提问!') && r.endsWith('——枫林诊所');
      expect(run.tuned.filter(format).length).toBeGreaterThanOrEqual(4);
      expect(run.base.filter(format)).toEqual([]);
    },
    FINETUNE_TIMEOUT_MS,
  );

  it(
    'pirate-style: on new sentences keeps at least half the content words and applies two of the sample\'s rules',
    async () => {
      const { sentences } = HELDOUT['pirate-style'] as { sentences: string[] };
      const run = await fineTune('pirate-style', sentences);
      const scores = sentences.map((s, i) => scorePirateRewrite(s, run.tuned[i]!));
      scores.forEach((sc, i) => console.log(`pirate ${sc.pass ? 'pass' : 'fail'}: kept ${sc.kept}/${sc.contentWords} content words, rules [${sc.rules.join(', ')}]: ${run.tuned[i]}`));
      expect(scores.filter((sc) => sc.pass).length).toBeGreaterThanOrEqual(3);
      expect(run.lossAfter).toBeLessThan(run.lossBefore);
    },
    FINETUNE_TIMEOUT_MS,
  );

  it(
    'the 20-line Chinese/English doctor Q&A fits the context and trains with a falling validation loss',
    async () => {
      const report = await validateJsonl(readFileSync(DOCTOR_QA, 'utf8'), {
        countTokens: createTokenCounter(tokenizer, template),
        maxSeqLen: loaded.config.maxPositions,
      });
      expect(report.examples).toBe(20);
      expect(report.errorCount).toBe(0);
      expect(report.truncatedExamples).toBe(0);
      expect(report.warnings.map((w) => w.code)).not.toContain('nothing_trained_after_truncation');
      expect(report.stats!.trainedTokensAfterTruncation).toBe(report.stats!.trainedTokens);
      // Held out: the last 4 lines.
      const chats = readChatJsonl(DOCTOR_QA);
      const sample: SampleDataset = { id: 'doctor-qa', title: '', description: '', trainFile: '', validFile: '', trainExamples: 16, validExamples: 4, suggestedEpochs: 4 };
      const hp = resolveHyperparameters({ ...tryItHyperparameters(sample, 'suggested'), evalEvery: 2 }, 16, { model: modelResolveContext(loaded.config, loaded.files.finetune) });
      const trainer = new Trainer({
        model: loaded.model,
        hyperparameters: hp,
        train: tokenizeExamples(chats.slice(0, 16), tokenizer, template, { maxSeqLen: hp.maxSeqLen }),
        validation: tokenizeExamples(chats.slice(16), tokenizer, template, { maxSeqLen: hp.maxSeqLen }),
        padId: tokenizer.pad!.id,
      });
      try {
        const before = (await trainer.evaluateValidation())!;
        const result = await trainer.run();
        const after = (await trainer.evaluateValidation())!;
        const trained = result.metrics.map((m) => m.trainTokens);
        console.log(`doctor Q&A: validation loss ${before.loss.toFixed(3)} -> ${after.loss.toFixed(3)} in ${result.metrics.length} steps; trained tokens per step ${trained.join(',')}`);
        expect(result.status).toBe('completed');
        expect(Math.min(...trained)).toBeGreaterThan(0);
        expect(Number.isFinite(before.loss)).toBe(true);
        expect(after.loss).toBeLessThan(before.loss);
      } finally {
        trainer.destroy();
      }
    },
    FINETUNE_TIMEOUT_MS,
  );
});
