// The embedded model the app ships (public/models/whittle-wordnet-tiny, trained by
// scripts/pretrain/main.ts): it must load, chat and fine-tune like any Hub model.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChatTemplate } from '../../src/data/chatTemplate';
import type { ChatMessage } from '../../src/data/datasetTypes';
import { makeBatches } from '../../src/data/batching';
import { tokenizeExample } from '../../src/data/examples';
import { countParameters } from '../../src/model/config';
import { generate } from '../../src/model/generate';
import { defaultLoraConfig, LoraAdapter } from '../../src/model/lora';
import type { CausalLM, TokenBatch } from '../../src/model/transformer';
import { LoraOptimizer } from '../../src/train/optimizer';
import { openChatModel } from '../helpers/model';

const MODEL_DIR = join(__dirname, '../../public/models/whittle-wordnet-tiny');

const open = () => openChatModel(MODEL_DIR);

function chat(word: string, answer: string): ChatMessage[] {
  return [
    { role: 'user', content: `What does the word "${word}" mean?` },
    { role: 'assistant', content: answer },
  ];
}

async function meanLoss(model: CausalLM, batches: readonly TokenBatch[], adapter: LoraAdapter | null): Promise<number> {
  let sum = 0;
  let n = 0;
  for (const b of batches) {
    const t = await model.evaluate(b, adapter);
    sum += t.lossSum;
    n += t.tokens;
  }
  return sum / n;
}

describe('embedded model whittle-wordnet-tiny', () => {
  it('parses as a small Llama with a ChatML tokenizer that round-trips text', async () => {
    const { config, tokenizer, files, model } = await open();
    expect(config.modelType).toBe('llama');
    expect(config.tieWordEmbeddings).toBe(true);
    expect(config.heads % config.kvHeads).toBe(0);
    expect(config.kvHeads).toBeLessThan(config.heads);
    expect(tokenizer.vocabSize).toBe(config.vocabSize);
    expect(countParameters(config)).toBeLessThan(5_000_000);
    expect(tokenizer.eos?.token).toBe('<|im_end|>');
    expect(tokenizer.pad?.token).toBe('<|endoftext|>');
    expect(config.eosTokenIds).toEqual([tokenizer.eos!.id]);
    expect(files.generationConfig).not.toBeNull();
    const text = 'lucid (adjective): transparent; easily understandable. Ünïcödé 42!';
    expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    const rendered = ChatTemplate.fromTokenizer(tokenizer).render([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
    expect(rendered).toBe('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
    // The special tokens are single tokens, not spelled out in bytes.
    expect(tokenizer.encode('<|im_start|>')).toEqual([tokenizer.specialTokens.get('<|im_start|>')]);
    model.destroy();
  });

  it('answers a dictionary question through its chat template (greedy)', async () => {
    const { model, tokenizer, template } = await open();
    const prompt = template.render([{ role: 'user', content: 'What does the word "water" mean?' }], { addGenerationPrompt: true });
    const result = await generate(model, [tokenizer.encode(prompt)], null, { maxNewTokens: 8, temperature: 0 });
    const reply = tokenizer.decode(result.tokens[0]!, { skipSpecialTokens: true });
    expect(result.tokens[0]!.length).toBeGreaterThan(0);
    expect(reply.trim().length).toBeGreaterThan(0);
    model.destroy();
  });

  it('a short LoRA fine-tune lowers the loss on held-out conversations', async () => {
    const { gpu, model, config, tokenizer, template } = await open();
    // New "facts" in a fixed answer style: the held-out pair shares the style, not the words.
    const train = [
      chat('blick', '"Blick" (noun) means: a small blue bird of the northern hills.'),
      chat('trasp', '"Trasp" (noun) means: a small blue stone of the northern hills.'),
      chat('quell', '"Quell" (noun) means: a small blue flower of the northern hills.'),
      chat('morv', '"Morv" (noun) means: a small blue fish of the northern hills.'),
    ];
    const held = [chat('zandle', '"Zandle" (noun) means: a small blue shell of the northern hills.'), chat('pell', '"Pell" (noun) means: a small blue moth of the northern hills.')];
    const opts = { batchSize: 4, maxSeqLen: 64, seed: 1, epoch: 0, padId: tokenizer.pad!.id, strategy: 'pad' as const };
    const tok = (m: ChatMessage[]) => tokenizeExample({ kind: 'chat', messages: m }, tokenizer, template, { maxSeqLen: 64 });
    const trainBatches = makeBatches(train.map(tok), opts);
    const heldBatches = makeBatches(held.map(tok), opts);
    const adapter = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: 8, alpha: 16 }));
    adapter.initialize(7);
    const opt = new LoraOptimizer(gpu, adapter);
    const before = await meanLoss(model, heldBatches, adapter);
    for (let step = 0; step < 5; step++) {
      for (const b of trainBatches) {
        await model.forwardBackward(b, adapter, { gradScale: 1 / b.trainedTokens, accumulate: false });
        opt.apply({ lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 });
        expect((await opt.readVerdict()).skipped).toBe(false);
      }
    }
    const after = await meanLoss(model, heldBatches, adapter);
    expect(Number.isFinite(before)).toBe(true);
    expect(after).toBeLessThan(before - 0.1);
    opt.destroy();
    adapter.destroy();
    model.destroy();
  });
});
