// Validation insights: the engine module on the tiny Llama fixture with a fixed random adapter,
// then the step inside real jobs (IndexedDB store, reload, no validation file, on demand).
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';

import { buildBatch } from '../../src/data/batching';
import { ChatTemplate } from '../../src/data/chatTemplate';
import { tokenizeExamples, type TokenizedExample } from '../../src/data/examples';
import type { ChatExample, ChatMessage } from '../../src/data/datasetTypes';
import { TextTokenizer } from '../../src/data/tokenizer';
import { loadHfModelDir } from '../../src/formats/hfModelDir';
import { nodeModelDir } from '../../src/formats/nodeByteSource';
import type { JobRecord } from '../../src/jobs/job';
import { IdbJobStore } from '../../src/jobs/idbStore';
import { MemoryJobStore } from '../../src/jobs/store';
import {
  answerBudget,
  computeValidationInsights,
  MAX_ANSWER_TOKENS,
  MAX_SCORED_EXAMPLES,
  MIN_ANSWER_TOKENS,
  NO_VALIDATION_DATA,
  runValidationInsightsStep,
  splitExample,
  type InsightExample,
  type ValidationInsights,
} from '../../src/jobs/validationInsights';
import { generationStopIds } from '../../src/generation/generationText';
import { generate } from '../../src/model/generate';
import { loadCausalLM } from '../../src/model/load';
import { defaultLoraConfig, LoraAdapter } from '../../src/model/lora';
import type { CausalLM } from '../../src/model/transformer';
import { TrainingClient, type ClientEndpoint } from '../../src/worker/client';
import { serveTraining, type HostEndpoint } from '../../src/worker/trainingHost';
import { getTestGpu } from '../helpers/gpu';
import { Rng } from '../../src/util/random';
import { loadRandomLora } from '../helpers/model';
import { addTinyLlama, BATCHING, CrashableStore, FIXTURES, HYPERPARAMETERS, makeRunner, MODEL_DIR, submit, TRAIN_JSONL } from './helpers';

const MAX_SEQ_LEN = 128;
const PAD = 0;

const examples: ChatExample[] = readFileSync(join(FIXTURES, 'data', 'chat_valid.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((line) => ({ kind: 'chat', messages: (JSON.parse(line) as { messages: ChatMessage[] }).messages }));

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1, Math.abs(b));

describe('prompt, reference and answer budget', () => {
  it('split at the last assistant turn; plain text has no prompt; the budget is 2x the reference within the caps', () => {
    const chat: ChatExample = {
      kind: 'chat',
      messages: [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'U1' },
        { role: 'assistant', content: 'A1' },
        { role: 'user', content: 'U2' },
        { role: 'assistant', content: 'A2', weight: 1 },
      ],
    };
    expect(splitExample(chat)).toEqual({
      prompt: [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'U1' },
        { role: 'assistant', content: 'A1' },
        { role: 'user', content: 'U2' },
      ],
      reference: 'A2',
    });
    expect(splitExample({ kind: 'text', messages: [{ role: 'assistant', content: 'just text' }] })).toEqual({ prompt: [], reference: 'just text' });
    expect(splitExample({ kind: 'chat', messages: [{ role: 'user', content: 'no answer' }] })).toBeNull();
    expect([1, 4, 10, 64, 65, 1000].map(answerBudget)).toEqual([MIN_ANSWER_TOKENS, MIN_ANSWER_TOKENS, 20, MAX_ANSWER_TOKENS, MAX_ANSWER_TOKENS, MAX_ANSWER_TOKENS]);
  });
});

describe('computeValidationInsights (engine)', () => {
  let model: CausalLM;
  let adapter: LoraAdapter;
  let tokenizer: TextTokenizer;
  let template: ChatTemplate;
  let eos: number[];
  let sequences: TokenizedExample[];
  /** The first test's result, compared with a second run for determinism. */
  let first: ValidationInsights;

  beforeAll(async () => {
    const gpu = await getTestGpu();
    const dir = await nodeModelDir(MODEL_DIR);
    const files = await loadHfModelDir(dir);
    const loaded = await loadCausalLM(gpu, dir, { dtype: 'f32' });
    await dir.close?.();
    model = loaded.model;
    tokenizer = TextTokenizer.fromJson(files.tokenizerJson, files.tokenizerConfig, files.chatTemplate === null ? {} : { chatTemplate: files.chatTemplate });
    template = ChatTemplate.fromTokenizer(tokenizer);
    eos = generationStopIds(loaded.config.eosTokenIds, files.generationConfig, tokenizer);
    // A fixed random adapter, large enough to move the argmax of many positions.
    adapter = new LoraAdapter(gpu, loaded.config, model.weights, defaultLoraConfig(loaded.config, { r: 4, alpha: 8 }));
    loadRandomLora(adapter, new Rng(5), 0.5);
    sequences = tokenizeExamples(examples, tokenizer, template, { maxSeqLen: MAX_SEQ_LEN });
  });

  const run = (list: readonly ChatExample[] = examples, shownPerEnd?: number): Promise<ValidationInsights> =>
    computeValidationInsights({ model, adapter, tokenizer, template, examples: list, maxSeqLen: MAX_SEQ_LEN, padId: PAD, eosTokenIds: eos, shownPerEnd, now: () => 42 });

  /** evaluate() of one example alone: its mean masked token loss. */
  const single = async (i: number, withAdapter: boolean): Promise<number> => {
    const seq = sequences[i]!;
    const t = await model.evaluate(buildBatch(sequences, { examples: [i], T: seq.ids.length - 1 }, PAD), withAdapter ? adapter : null);
    return t.lossSum / t.tokens;
  };

  it('ranks by fine-tuned loss, with losses equal to evaluate() of each example alone (1e-5)', async () => {
    const phases: string[] = [];
    const got = await computeValidationInsights({
      model,
      adapter,
      tokenizer,
      template,
      examples,
      maxSeqLen: MAX_SEQ_LEN,
      padId: PAD,
      eosTokenIds: eos,
      now: () => 42,
      onProgress: (phase, done, total) => {
        expect(done).toBeLessThanOrEqual(total);
        phases.push(`${phase} ${done}/${total}`);
      },
    });
    expect(got.scored).toBe(12);
    expect(got.validationExamples).toBe(12);
    expect(phases.at(0)).toMatch(/^scoring \d+\/24$/);
    expect(phases).toContain('scoring 24/24');
    expect(phases.at(-1)).toBe('generating 12/12');

    const base = await Promise.all(examples.map((_, i) => single(i, false)));
    const tuned = await Promise.all(examples.map((_, i) => single(i, true)));
    const order = examples.map((_, i) => i).sort((a, b) => tuned[b]! - tuned[a]! || a - b);
    expect(got.highest.map((e) => e.index)).toEqual(order.slice(0, 3));
    expect(got.lowest.map((e) => e.index)).toEqual(order.slice(-3).reverse());
    for (const e of [...got.highest, ...got.lowest]) {
      expect(rel(e.baseLoss, base[e.index]!), `base loss of ${e.index}`).toBeLessThan(1e-5);
      expect(rel(e.fineTunedLoss, tuned[e.index]!), `fine-tuned loss of ${e.index}`).toBeLessThan(1e-5);
      // The fixture's prompts: system + user, the reference the assistant turn.
      const split = splitExample(examples[e.index]!)!;
      expect(e.prompt).toEqual(split.prompt);
      expect(e.prompt.map((m) => m.role)).toEqual(['system', 'user']);
      expect(e.reference).toBe(examples[e.index]!.messages.at(-1)!.content);
      expect(e.maxNewTokens).toBe(answerBudget(tokenizer.encode(e.reference).length));
    }
    // Token-weighted means of every scored example, as the trainer's full validation loss.
    const all = buildBatch(sequences, { examples: examples.map((_, i) => i), T: Math.max(...sequences.map((s) => s.ids.length - 1)) }, PAD);
    for (const [which, mean] of [
      [null, got.baseMeanLoss],
      [adapter, got.fineTunedMeanLoss],
    ] as const) {
      const t = await model.evaluate(all, which);
      expect(rel(mean, t.lossSum / t.tokens)).toBeLessThan(1e-5);
    }
    expect(got.fineTunedMeanLoss).not.toBeCloseTo(got.baseMeanLoss, 3);
    first = got;
  });

  it('generates both answers greedily and deterministically; the adapter changes them', async () => {
    const a = first;
    // Again (one per end, to spare generation time): the same extremes, word for word.
    const again = await run(examples, 1);
    expect(again.highest).toEqual(a.highest.slice(0, 1));
    expect(again.lowest).toEqual(a.lowest.slice(0, 1));
    const shown: InsightExample[] = [...a.highest, ...a.lowest];
    for (const e of shown) {
      expect(typeof e.baseAnswer).toBe('string');
      expect(typeof e.fineTunedAnswer).toBe('string');
      expect(e.baseFinish === 'eos' || e.baseFinish === 'length').toBe(true);
    }
    expect(shown.some((e) => e.baseAnswer !== e.fineTunedAnswer)).toBe(true);
    // The same greedy decoding by hand, for one example, with and without the adapter.
    const e = shown[0]!;
    const prompt = tokenizer.encode(template.render(e.prompt, { addGenerationPrompt: true }));
    for (const [which, want] of [
      [null, e.baseAnswer],
      [adapter, e.fineTunedAnswer],
    ] as const) {
      const out = await generate(model, [prompt], which, { maxNewTokens: e.maxNewTokens, temperature: 0, eosTokenIds: eos });
      expect(tokenizer.decode(out.tokens[0]!.filter((t) => t < tokenizer.vocabSize), { skipSpecialTokens: true })).toBe(want);
    }
  });

  it('as a job step: "none" without examples, "failed" on errors (the job goes on), rethrows fatal ones, null when aborted', async () => {
    const logged: string[] = [];
    const hooks = (fatal: boolean) => ({
      log: async (level: string, message: string) => void logged.push(`${level}: ${message}`),
      progress: async () => {},
      isFatal: async () => fatal,
    });
    const failing = { config: model.config, evaluateRows: () => Promise.reject(new Error('boom')) } as unknown as CausalLM;
    const base = { model: failing, adapter, tokenizer, template, maxSeqLen: MAX_SEQ_LEN, padId: PAD, eosTokenIds: eos };
    expect(await runValidationInsightsStep({ ...base, examples: async () => null }, hooks(false))).toEqual({ state: 'none', reason: NO_VALIDATION_DATA });
    expect(await runValidationInsightsStep({ ...base, examples: () => Promise.reject(new Error('file gone')) }, hooks(false))).toEqual({ state: 'failed', message: 'file gone' });
    expect(await runValidationInsightsStep({ ...base, examples: async () => examples }, hooks(false))).toEqual({ state: 'failed', message: 'boom' });
    await expect(runValidationInsightsStep({ ...base, examples: async () => examples }, hooks(true))).rejects.toThrow('boom');
    const controller = new AbortController();
    controller.abort('pause');
    expect(await runValidationInsightsStep({ ...base, model, examples: async () => examples, signal: controller.signal }, hooks(false))).toBeNull();
    expect(logged.filter((l) => l.startsWith('warning'))).toEqual(['warning: Validation insights failed: file gone', 'warning: Validation insights failed: boom']);
    expect(logged.filter((l) => l.startsWith('info: Computing'))[0]).toBe(
      "info: Computing validation insights: scoring 12 validation examples with the base and the fine-tuned model, then generating both models' answers to the 3 highest- and 3 lowest-loss ones",
    );
  });

  it(`scores at most ${MAX_SCORED_EXAMPLES} examples`, async () => {
    // Short examples and one shown per end: scoring and generation are the slow parts, and the
    // ranking is checked above.
    const many: ChatExample[] = Array.from({ length: MAX_SCORED_EXAMPLES + 6 }, (_, i) => ({
      kind: 'chat',
      messages: [
        { role: 'user', content: `q${i % 7}` },
        { role: 'assistant', content: `a${i % 5}` },
      ],
    }));
    const got = await run(many, 1);
    expect(got.validationExamples).toBe(MAX_SCORED_EXAMPLES + 6);
    expect(got.scored).toBe(MAX_SCORED_EXAMPLES);
    const shown = [...got.highest, ...got.lowest];
    expect(shown).toHaveLength(2);
    expect(Math.max(...shown.map((e) => e.index))).toBeLessThan(MAX_SCORED_EXAMPLES);
    expect(got.highest[0]!.fineTunedLoss).toBeGreaterThan(got.lowest[0]!.fineTunedLoss);
    expect(got.highest[0]!.prompt).toEqual([{ role: 'user', content: `q${got.highest[0]!.index % 7}` }]);
  });
});

describe('validation insights in a job', () => {
  /** The first job's insights, for the job that is interrupted in the same computation. */
  let reference: ValidationInsights | null = null;
  const insightsOf = (job: JobRecord): ValidationInsights => {
    expect(job.validationInsights?.state).toBe('ready');
    return (job.validationInsights as { state: 'ready'; insights: ValidationInsights }).insights;
  };

  it('are computed after training, logged, stored in IndexedDB, and recomputed after an interrupted computation', async () => {
    const name = `insights-${Date.now()}`;
    const store = await IdbJobStore.open({ name, blobs: 'indexeddb' });
    const runner = makeRunner(store);
    const source = await addTinyLlama(store.blobs);
    const created = await submit(runner, source);
    await runner.idle();
    const job = await runner.getJob(created.id);
    expect(job.status).toBe('succeeded');
    expect(job.statusMessage).toBeNull();
    const insights = insightsOf(job);
    reference = insights;
    // The helpers' job validates on the fixture's last 2 examples: one at each end.
    expect(insights.scored).toBe(2);
    expect(insights.highest).toHaveLength(1);
    expect(insights.lowest).toHaveLength(1);
    expect(insights.highest[0]!.fineTunedLoss).toBeGreaterThanOrEqual(insights.lowest[0]!.fineTunedLoss);
    expect(insights.highest[0]!.fineTunedAnswer).not.toBeNull();
    // The final full validation loss of the trainer is the same token-weighted mean.
    const last = (await store.listMetrics(job.id)).at(-1)!;
    expect(rel(insights.fineTunedMeanLoss, last.fullValidLoss!)).toBeLessThan(1e-5);
    // 4 steps at learning rate 2e-2 move the loss: the fine-tuned side really carries the adapter.
    expect(Math.abs(insights.fineTunedMeanLoss - insights.baseMeanLoss)).toBeGreaterThan(1e-3);
    const messages = (await store.listEvents(job.id)).map((e) => e.message);
    const computing = messages.findIndex((m) => m.startsWith('Computing validation insights'));
    const ready = messages.findIndex((m) => m.startsWith('Validation insights ready'));
    expect(computing).toBeGreaterThan(0);
    expect(ready).toBeGreaterThan(computing);
    expect(messages.at(-1)).toBe(`New fine-tuned model created: ${job.fineTunedModel}`);
    store.close();

    // A reload: the record comes back from IndexedDB as it was stored.
    const reopened = await IdbJobStore.open({ name, blobs: 'indexeddb' });
    expect((await reopened.getJob(job.id))!.validationInsights).toEqual(job.validationInsights);

    // A reload in the middle of an on-demand computation leaves it `computing`: recovery redoes it
    // from the stored adapter, with the same losses and answers.
    await reopened.updateJob(job.id, (j) => ({ ...j, validationInsights: { state: 'computing', phase: 'generating', done: 1, total: 2 } }));
    const after = makeRunner(reopened);
    await after.recover();
    await after.idle();
    const again = insightsOf(await after.getJob(job.id));
    expect(again.highest.map((e) => e.index)).toEqual(insights.highest.map((e) => e.index));
    for (const [i, e] of again.highest.concat(again.lowest).entries()) {
      const want = insights.highest.concat(insights.lowest)[i]!;
      expect(rel(e.fineTunedLoss, want.fineTunedLoss)).toBeLessThan(1e-5);
      expect(rel(e.baseLoss, want.baseLoss)).toBeLessThan(1e-5);
      expect(e.fineTunedAnswer).toBe(want.fineTunedAnswer);
      expect(e.baseAnswer).toBe(want.baseAnswer);
    }
    expect((await reopened.listEvents(job.id)).some((e) => e.message.includes('Validation insights were interrupted'))).toBe(true);
    reopened.close();
  });

  it('are recomputed when the page closes during the step (the job resumes from its final checkpoint)', async () => {
    if (!reference) throw new Error('needs the first job of this block');
    const disk = new MemoryJobStore();
    const crashing = new CrashableStore(disk);
    let jobId = '';
    const runner1 = makeRunner(crashing, {
      onUpdate: (u) => {
        if (!crashing.crashed && u.type === 'job' && u.job.status === 'running' && u.job.validationInsights?.state === 'computing') {
          crashing.crash();
          void runner1.pause(jobId);
        }
      },
    });
    const source = await addTinyLlama(disk.blobs);
    jobId = (await submit(runner1, source)).id;
    await runner1.idle();
    const left = (await disk.getJob(jobId))!;
    expect(left.status).toBe('running');
    expect(left.validationInsights?.state).toBe('computing');
    expect(left.statusMessage).toMatch(/^Computing validation insights/);

    const runner2 = makeRunner(disk);
    expect(await runner2.recover()).toEqual([jobId]);
    await runner2.idle();
    const done = await runner2.getJob(jobId);
    expect(done.status).toBe('succeeded');
    const got = insightsOf(done);
    expect(got.highest.map((e) => e.index)).toEqual(reference.highest.map((e) => e.index));
    expect(rel(got.fineTunedMeanLoss, reference.fineTunedMeanLoss)).toBeLessThan(1e-5);
    expect(rel(got.baseMeanLoss, reference.baseMeanLoss)).toBeLessThan(1e-5);
    expect(got.highest[0]!.fineTunedAnswer).toBe(reference.highest[0]!.fineTunedAnswer);
    expect((await disk.listEvents(jobId)).some((e) => e.message.startsWith('Resuming from step 4/4'))).toBe(true);
  });

  it('say "no validation data" for a job without a validation file; on demand through the worker protocol, only once succeeded', async () => {
    const store = new MemoryJobStore();
    const source = await addTinyLlama(store.blobs);
    const channel = new MessageChannel();
    serveTraining(channel.port2 as unknown as HostEndpoint, { openStore: () => Promise.resolve(store), acquireGpu: getTestGpu, runner: { batching: BATCHING }, locks: null, broadcast: null });
    const client = new TrainingClient(channel.port1 as unknown as ClientEndpoint);
    const states: string[] = [];
    client.subscribe((e) => {
      if (e.type === 'status' && e.job.validationInsights) states.push(e.job.validationInsights.state);
    });
    try {
      await client.init({ autoStart: false });
      const train = await client.uploadFile('train.jsonl', new Blob([TRAIN_JSONL]), source);
      const created = await client.createJob({ model: source, trainingFileId: train.file.id, hyperparameters: { ...HYPERPARAMETERS, epochs: 1 }, dtype: 'f32' });
      const until = async (what: string, ok: (j: JobRecord) => boolean): Promise<JobRecord> => {
        for (let i = 0; i < 600; i++) {
          const j = (await client.getJob(created.id)).job;
          if (ok(j)) return j;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`timed out waiting for ${what}`);
      };
      await until('queued', (j) => j.status === 'queued');
      await expect(client.computeInsights(created.id)).rejects.toThrow(/is queued: validation insights are computed when it succeeds/);
      await client.start(created.id);
      const job = await until('succeeded', (j) => j.status === 'succeeded');
      expect(job.validationInsights).toEqual({ state: 'none', reason: NO_VALIDATION_DATA });

      const marked = await client.computeInsights(created.id);
      expect(marked.validationInsights?.state).toBe('computing');
      const again = await until('insights', (j) => j.validationInsights?.state !== 'computing');
      expect(again.validationInsights).toEqual({ state: 'none', reason: NO_VALIDATION_DATA });
      expect(again.statusMessage).toBeNull();
      expect(states).toContain('computing');
      const skipped = (await client.getJob(created.id)).events.filter((e) => e.message.startsWith('Validation insights skipped'));
      expect(skipped).toHaveLength(2);
    } finally {
      channel.port1.close();
      channel.port2.close();
    }
  });
});
