import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { ChatTemplate } from '../../src/data/chatTemplate';
import { previewExamples, previewExampleTokens, tokenBytesLabel, tokenTexts } from '../../src/data/examplePreview';
import { tokenizeExample } from '../../src/data/examples';
import { validateJsonl } from '../../src/data/datasetReport';
import { TextTokenizer } from '../../src/data/tokenizer';

type Json = Record<string, unknown>;

function load(dir: URL): TextTokenizer {
  const read = (name: string) => JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as Json;
  return TextTokenizer.fromJson(read('tokenizer.json'), read('tokenizer_config.json'));
}

const TINY = new URL('../fixtures/models/tiny-llama/', import.meta.url);
const CHAT_JSONL = readFileSync(new URL('../fixtures/data/chat_valid.jsonl', import.meta.url), 'utf8');
const tokenizer = load(TINY);
const template = ChatTemplate.fromTokenizer(tokenizer);

async function examplesOf(jsonl: string) {
  const report = await validateJsonl(jsonl, { keepExamples: true });
  expect(report.ok).toBe(true);
  return report.validExamples!;
}

describe('previewExamples (tiny-llama, chat_valid.jsonl)', () => {
  it('flags exactly the tokens tokenizeExample trains on, and the token texts rebuild the rendered chat', async () => {
    const lines = await examplesOf(CHAT_JSONL);
    const preview = await previewExamples(CHAT_JSONL, tokenizer, template, { count: lines.length });
    expect(preview.format).toBe('chat');
    expect(preview.problems).toEqual([]);
    expect(preview.examples.map((e) => e.line)).toEqual(lines.map((l) => l.line));
    for (const [i, { example }] of lines.entries()) {
      const p = preview.examples[i]!;
      const want = tokenizeExample(example, tokenizer, template);
      expect(p.tokens.map((t) => t.id), `line ${p.line} ids`).toEqual([...want.ids]);
      expect(p.tokens.map((t) => (t.trained ? 1 : 0)), `line ${p.line} mask`).toEqual([...want.trained]);
      expect(p.trainedTokens).toBe(want.fullTrained);
      expect(p.trainedTokens).toBeGreaterThan(0);
      expect(p).toMatchObject({ truncated: false, kept: want.ids.length, fullLength: want.ids.length, omitted: 0 });
      // The texts concatenated are the template's rendering, character for character.
      expect(p.tokens.map((t) => t.text).join(''), `line ${p.line} text`).toBe(template.render(example.messages));
      // The trained tokens spell the trained answers (weight 0 ones are context), each with its end-of-turn token.
      const answer = example.messages.filter((m) => m.role === 'assistant' && m.weight !== 0).map((m) => `${m.content}<|im_end|>`).join('');
      expect(p.tokens.filter((t) => t.trained).map((t) => t.text).join('')).toBe(answer);
      expect(p.tokens.filter((t) => t.special).map((t) => t.text)).toContain('<|im_end|>');
    }
  });

  it('marks the cut at maxSeqLen with the mask training uses, and shows some dropped tokens untrained', async () => {
    const [first] = await examplesOf(CHAT_JSONL);
    const whole = tokenizeExample(first!.example, tokenizer, template);
    const maxSeqLen = whole.ids.length - 5;
    const want = tokenizeExample(first!.example, tokenizer, template, { maxSeqLen });
    const preview = await previewExamples(CHAT_JSONL, tokenizer, template, { count: 1, maxSeqLen, maxDroppedShown: 3 });
    const p = preview.examples[0]!;
    expect(preview.maxSeqLen).toBe(maxSeqLen);
    expect(p).toMatchObject({ truncated: true, kept: maxSeqLen, fullLength: whole.ids.length, omitted: 2 });
    expect(p.tokens).toHaveLength(maxSeqLen + 3);
    expect(p.tokens.slice(0, maxSeqLen).map((t) => (t.trained ? 1 : 0))).toEqual([...want.trained]);
    expect(p.tokens.slice(maxSeqLen).every((t) => !t.trained)).toBe(true);
    expect(p.trainedTokens).toBe(want.trained.reduce((s, x) => s + x, 0));
    // The dropped tail includes trained answer tokens in the whole example: the cut really loses them.
    expect([...whole.trained.slice(maxSeqLen)].some((x) => x === 1)).toBe(true);
  });

  it('stops after count examples, lists invalid lines as problems, previews prompt/completion and text files', async () => {
    const bad = '{"messages": 3}\n' + CHAT_JSONL;
    const p = await previewExamples(bad, tokenizer, template, { count: 2 });
    expect(p.examples.map((e) => e.line)).toEqual([2, 3]);
    expect(p.problems).toHaveLength(1);
    expect(p.problems[0]!.line).toBe(1);

    const pc = await previewExamples('{"prompt": "Hi there", "completion": "Hello."}\n', tokenizer, template);
    expect(pc.format).toBe('prompt_completion');
    expect(pc.examples[0]!.tokens.filter((t) => t.trained).map((t) => t.text).join('')).toBe('Hello.<|im_end|>');

    const text = await previewExamples('{"text": "plain words"}\n', tokenizer, null);
    const t = text.examples[0]!;
    expect(t.kind).toBe('text');
    // Every token after the first is a target for text examples.
    expect(t.tokens.map((x) => x.trained)).toEqual(t.tokens.map((_, i) => i > 0));
    expect(t.tokens.map((x) => x.text).join('')).toBe(tokenizer.decode(t.tokens.map((x) => x.id)));
  });

  it('tokenTexts holds a split multi-byte character until the token that completes it', () => {
    const text = 'naïve café 🍵 ok';
    const ids = tokenizer.encode(text);
    const texts = tokenTexts(tokenizer, ids);
    expect(texts.join('')).toBe(text);
    expect(texts.some((t) => t.includes('\uFFFD'))).toBe(false);
    // The emoji is 4 UTF-8 bytes; a tiny BPE splits it, so some token carries no text alone.
    expect(ids.length).toBeGreaterThan(texts.filter((t) => t.length > 0).length);
  });

  it('a token that is only part of a character carries its bytes, so the preview never shows an empty token', () => {
    const utf8 = (t: string) => [...new TextEncoder().encode(t)].map((b) => `<0x${b.toString(16).toUpperCase()}>`).join('');
    const [example] = [{ kind: 'chat' as const, messages: [{ role: 'user' as const, content: 'tea?' }, { role: 'assistant' as const, content: 'yes 🍵' }] }];
    const preview = previewExampleTokens(example, 1, tokenizer, template);
    const partial = preview.tokens.filter((t) => t.text === '');
    expect(partial.length).toBeGreaterThan(0);
    for (const t of partial) expect(t.bytes).toMatch(/^(<0x[0-9A-F]{2}>)+$/);
    // The partial tokens' bytes are the emoji's first bytes, in order.
    expect(utf8('🍵').startsWith(partial.map((t) => t.bytes).join(''))).toBe(true);
    expect(preview.tokens.filter((t) => t.text !== '').every((t) => t.bytes === undefined)).toBe(true);
    // Byte-level BPE pieces (GPT-2's alphabet) read back as bytes too: "Ġ" is the space byte.
    const bpe = { idToToken: (id: number) => ['Ġ', 'æĺ'][id] } as unknown as TextTokenizer;
    expect(tokenBytesLabel(bpe, 0)).toBe('<0x20>');
    expect(tokenBytesLabel(bpe, 1)).toBe('<0xE6><0x98>');
  });
});
