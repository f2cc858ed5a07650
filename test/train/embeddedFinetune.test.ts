// The older shipped model (public/models/whittle-wordnet-tiny, kept beside the default
// whittle-bilingual-small): fine-tuning it on a shipped sample (public/samples/pirate-style) with
// the first screen's quick "Try it" settings (auto resolved from its whittle_finetune.json) lowers the loss
// on the sample's validation file, through the same trainer a job uses.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatTemplate } from '../../src/data/chatTemplate';
import { tokenizeExamples } from '../../src/data/examples';
import { TextTokenizer } from '../../src/data/tokenizer';
import { generate } from '../../src/model/generate';
import type { LoadedModel } from '../../src/model/load';
import { modelResolveContext, resolveHyperparameters } from '../../src/train/hyperparameters';
import { Trainer } from '../../src/train/trainer';
import { parseSampleIndex, tryItExamples, tryItHyperparameters } from '../../src/jobs/samples';
import { openChatModel, readChatJsonl } from '../helpers/model';

const ROOT = join(__dirname, '../..');
const MODEL_DIR = join(ROOT, 'public/models/whittle-wordnet-tiny');
const SAMPLES_DIR = join(ROOT, 'public/samples');
// The validation loss must fall by at least this much (nats per trained token). The quick check
// measured 6.53 -> 5.97 (0.55) on lavapipe with the auto dropout 0.05 and one warmup step; 0.4
// leaves room for another device's rounding.
const MIN_DROP = 0.4;

let loaded: LoadedModel;
let tokenizer: TextTokenizer;
let template: ChatTemplate;
beforeAll(async () => {
  const opened = await openChatModel(MODEL_DIR);
  loaded = opened;
  tokenizer = opened.tokenizer;
  template = opened.template;
});
afterAll(() => loaded.model.destroy());

describe('fine-tuning the embedded model on a shipped sample', () => {
  it('generates a reply through its chat template', async () => {
    const prompt = template.render([{ role: 'user', content: 'Use "ship" in a sentence.' }], { addGenerationPrompt: true });
    expect(prompt).toBe('<|im_start|>user\nUse "ship" in a sentence.<|im_end|>\n<|im_start|>assistant\n');
    const result = await generate(loaded.model, [tokenizer.encode(prompt)], null, { maxNewTokens: 12, temperature: 0 });
    const reply = tokenizer.decode(result.tokens[0]!, { skipSpecialTokens: true });
    expect(reply.trim().length, 'an empty reply').toBeGreaterThan(0);
  });

  it('the quick "Try it" job on pirate-style lowers the validation loss', async () => {
    const samples = parseSampleIndex(JSON.parse(readFileSync(join(SAMPLES_DIR, 'index.json'), 'utf8')));
    const sample = samples.find((s) => s.id === 'pirate-style')!;
    const trainChats = readChatJsonl(join(SAMPLES_DIR, sample.trainFile));
    const validChats = readChatJsonl(join(SAMPLES_DIR, sample.validFile));
    expect([trainChats.length, validChats.length]).toEqual([sample.trainExamples, sample.validExamples]);

    // The quick check trains on the first examples of the file, as the page uploads them.
    const quickChats = trainChats.slice(0, tryItExamples(sample, 'quick'));
    const hp = resolveHyperparameters(tryItHyperparameters(sample, 'quick'), quickChats.length, { model: modelResolveContext(loaded.config, loaded.files.finetune) });
    const options = { maxSeqLen: hp.maxSeqLen };
    const train = tokenizeExamples(quickChats, tokenizer, template, options);
    const validation = tokenizeExamples(validChats, tokenizer, template, options);
    const trainer = new Trainer({ model: loaded.model, hyperparameters: hp, train, validation, padId: tokenizer.pad!.id });
    try {
      expect(trainer.totalSteps).toBe(4); // 32 examples, batch 8, one epoch
      // Before any step the adapter's B is zero: this is the base model's loss.
      const before = (await trainer.evaluateValidation())!;
      const result = await trainer.run();
      const after = (await trainer.evaluateValidation())!;
      console.log(`pirate-style validation loss ${before.loss.toFixed(4)} -> ${after.loss.toFixed(4)} (accuracy ${before.accuracy.toFixed(3)} -> ${after.accuracy.toFixed(3)}) in ${result.metrics.length} steps`);
      expect(result.status).toBe('completed');
      expect(result.metrics).toHaveLength(4);
      expect(before.tokens).toBe(after.tokens);
      expect(Number.isFinite(before.loss)).toBe(true);
      expect(after.loss).toBeLessThan(before.loss - MIN_DROP);
    } finally {
      trainer.destroy();
    }
  });
});
