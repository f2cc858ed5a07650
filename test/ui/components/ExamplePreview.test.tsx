// @vitest-environment happy-dom
// The create-job token preview drawn from what the worker returns (previewExamples run on the
// tiny Llama fixture's real tokenizer and template): trained tokens highlighted, context dimmed,
// the cut at maxSeqLen marked, token ids in titles, user text rendered as text.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { cleanup, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';

import { ChatTemplate } from '../../../src/data/chatTemplate';
import { previewExamples } from '../../../src/data/examplePreview';
import { TextTokenizer } from '../../../src/data/tokenizer';
import { TokenPreview } from '../../../src/ui/components/ExamplePreview';

afterEach(cleanup);

// A path, not a URL: happy-dom replaces the URL class.
const dir = join(__dirname, '..', '..', 'fixtures', 'models', 'tiny-llama');
const read = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as Record<string, unknown>;
const tokenizer = TextTokenizer.fromJson(read('tokenizer.json'), read('tokenizer_config.json'));
const template = ChatTemplate.fromTokenizer(tokenizer);
const chat = (user: string, assistant: string) => JSON.stringify({ messages: [{ role: 'user', content: user }, { role: 'assistant', content: assistant }] });

describe('TokenPreview', () => {
  it('highlights exactly the trained tokens, dims the rest, and keeps the rendered text', async () => {
    const preview = await previewExamples(chat('What is <b>2+2</b>?', 'Four.') + '\n', tokenizer, template);
    render(<TokenPreview preview={preview} />);
    const text = screen.getByTestId('token-text');
    const spans = [...text.querySelectorAll('.tok')];
    const ex = preview.examples[0]!;
    expect(spans).toHaveLength(ex.tokens.length);
    expect(spans.map((s) => s.classList.contains('tok-trained'))).toEqual(ex.tokens.map((t) => t.trained));
    expect(spans.filter((s) => s.classList.contains('tok-context'))).toHaveLength(ex.tokens.filter((t) => !t.trained).length);
    // User text is text: the <b> is not an element.
    expect(text.querySelector('b')).toBeNull();
    expect(text.textContent).toBe(template.render([{ role: 'user', content: 'What is <b>2+2</b>?' }, { role: 'assistant', content: 'Four.' }]));
    expect(spans.filter((s) => s.classList.contains('tok-trained')).map((s) => s.textContent).join('')).toBe('Four.<|im_end|>');
    expect(spans[0]!.getAttribute('title')).toMatch(new RegExp(`^token 0 · id ${ex.tokens[0]!.id} · special · "<\\|im_start\\|>" · context: not trained$`));
    expect(screen.getByLabelText('Legend').textContent).toMatch(/Trained tokens count in the loss/);
    expect(screen.queryByTestId('token-cut')).toBeNull();
    expect(within(screen.getByTestId('token-example')).getByText(/trained$/).textContent).toBe(`${ex.trainedTokens} trained`);
  });

  it('marks the cut at maxSeqLen and strikes the dropped tokens', async () => {
    const preview = await previewExamples(chat('Tell me a long story please', 'Once upon a time there was a model.') + '\n', tokenizer, template, { maxSeqLen: 12, maxDroppedShown: 4 });
    render(<TokenPreview preview={preview} />);
    const ex = preview.examples[0]!;
    expect(ex.truncated).toBe(true);
    const cut = screen.getByTestId('token-cut');
    expect(cut.textContent).toContain('max sequence length 12');
    const spans = [...screen.getByTestId('token-text').querySelectorAll('.tok')];
    expect(spans.slice(12).every((s) => s.classList.contains('tok-dropped'))).toBe(true);
    expect(spans.slice(0, 12).some((s) => s.classList.contains('tok-dropped'))).toBe(false);
    // The marker sits between the last kept and the first dropped token.
    expect(cut.previousElementSibling).toBe(spans[11]);
    expect(cut.nextElementSibling).toBe(spans[12]);
    expect(screen.getByText(new RegExp(`${ex.omitted} more dropped tokens`))).toBeTruthy();
    expect(screen.getByLabelText('Legend').textContent).toMatch(/Dropped tokens come after the maximum sequence length/);
  });

  it('shows the bytes of a token that is only part of a character instead of an empty token', async () => {
    const preview = await previewExamples(chat('tea?', 'yes 🍵') + '\n', tokenizer, template);
    render(<TokenPreview preview={preview} />);
    const partial = [...screen.getByTestId('token-text').querySelectorAll<HTMLElement>('.tok[data-bytes]')];
    expect(partial.length).toBeGreaterThan(0);
    for (const s of partial) {
      expect(s.textContent).toMatch(/^(<0x[0-9A-F]{2}>)+$/);
      expect(s.getAttribute('title')).toMatch(/<0x[0-9A-F]{2}>.*part of a character split over several tokens/);
    }
    // The token that completes the emoji carries it.
    expect(screen.getByTestId('token-text').textContent).toContain('🍵');
  });
});
