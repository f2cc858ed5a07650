// Fuzzing chat templates: whatever Jinja a model folder ships, rendering returns text or throws
// ChatTemplateError within its step, size and time budget; and whatever conversation a data file
// holds, the trained-token mask marks exactly each trained assistant message through its
// end-of-turn token (the header search for long conversations included) or the conversation is
// refused with ChatTemplateError.

import { readFileSync } from 'node:fs';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { ChatTemplate, ChatTemplateError, renderChatWithAssistantSpans, type ChatMessage } from '../../src/data/chatTemplate';
import { TextTokenizer } from '../../src/data/tokenizer';

type Json = Record<string, unknown>;
const read = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/models/tiny-llama/${name}`, import.meta.url), 'utf8')) as Json;
const tok = TextTokenizer.fromJson(read('tokenizer.json'), read('tokenizer_config.json'));

const LIMITS = { steps: 20_000, chars: 50_000, ms: 10_000 };

/** Template pieces, nested at random: loops (also empty and nested), sets, filters, calls, text. */
const fragment: fc.Arbitrary<string> = fc.letrec<{ piece: string }>((tie) => ({
  piece: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('x', '{{ messages|length }}', '{{ bos_token }}', "{{ raise_exception('no') }}", '{{ 1/0 }}', '{{ undefined_name.attr }}', '{% break %}', '{{ messages[0].content }}', "{{ 'ab' ~ 'cd' }}"),
    fc.tuple(fc.integer({ min: -5, max: 100_000_000 }), tie('piece')).map(([n, body]) => `{% for i in range(${n}) %}${body}{% endfor %}`),
    tie('piece').map((body) => `{% for m in messages %}{{ m.role }}{{ m.content }}${body}{% endfor %}`),
    tie('piece').map((body) => `{% set ns = namespace(s='ab') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}${body}{% endfor %}{{ ns.s|length }}`),
    fc.tuple(tie('piece'), tie('piece')).map(([a, b]) => `{% if messages|length > 1 %}${a}{% else %}${b}{% endif %}`),
    fc.tuple(tie('piece'), tie('piece')).map(([a, b]) => a + b),
    tie('piece').map((body) => `{% macro f(n) %}${body}{{ f(n) }}{% endmacro %}{{ f(1) }}`),
  ),
})).piece;

const conversation = fc.array(fc.record({ role: fc.constantFrom('user', 'assistant', 'system'), content: fc.string({ maxLength: 12 }) }), { minLength: 1, maxLength: 6 });

describe('chat template fuzzing', () => {
  it('any template renders or throws ChatTemplateError within its budget', () => {
    fc.assert(
      fc.property(fc.oneof(fragment, fc.string({ maxLength: 40 })), conversation, (source, messages) => {
        let template: ChatTemplate;
        try {
          template = new ChatTemplate(source, tok.templateVariables(), LIMITS);
        } catch (e) {
          expect(e).toBeInstanceOf(ChatTemplateError);
          return;
        }
        try {
          const text = template.render(messages, { addGenerationPrompt: true });
          expect(text.length).toBeLessThanOrEqual(LIMITS.chars);
        } catch (e) {
          expect(e).toBeInstanceOf(ChatTemplateError);
        }
      }),
      { numRuns: 300, seed: 21 },
    );
  });

  it('the mask marks each trained assistant message through <|im_end|>, however long the conversation', () => {
    const turn = fc.record({
      user: fc.string({ maxLength: 10 }),
      assistant: fc.string({ maxLength: 10 }),
      weight: fc.constantFrom(undefined, 0, 1),
    });
    fc.assert(
      fc.property(fc.option(fc.string({ maxLength: 10 }), { nil: undefined }), fc.array(turn, { minLength: 1, maxLength: 12 }), (system, turns) => {
        const messages: ChatMessage[] = system === undefined ? [] : [{ role: 'system', content: system }];
        for (const t of turns) {
          messages.push({ role: 'user', content: t.user });
          messages.push(t.weight === undefined ? { role: 'assistant', content: t.assistant } : { role: 'assistant', content: t.assistant, weight: t.weight });
        }
        let r;
        try {
          r = renderChatWithAssistantSpans(tok, messages, { endOfTurn: '<|im_end|>' });
        } catch (e) {
          // Refused only for content holding template markers (the end-of-turn or header text).
          expect(e).toBeInstanceOf(ChatTemplateError);
          expect(messages.some((m) => /<\|im_(end|start)\|>/.test(m.content))).toBe(true);
          return;
        }
        expect(r.spans.map((s) => r.text.slice(s.charStart, s.charEnd))).toEqual(turns.map((t) => `${t.assistant}<|im_end|>`));
        expect(r.spans.map((s) => s.trained)).toEqual(turns.map((t) => t.weight !== 0));
        expect(r.mask.length).toBe(r.ids.length);
        let trained = 0;
        for (const s of r.spans) if (s.trained) trained += s.tokenEnd - s.tokenStart;
        expect(r.mask.reduce((a, b) => a + b, 0)).toBe(trained);
      }),
      { numRuns: 200, seed: 22 },
    );
  });
});
