// @vitest-environment happy-dom
// The validation report as the create-job page shows it, from reports built by the real
// validator (validateJsonl): line-numbered errors, counts with their plurals, token statistics,
// and user text rendered as text.
import { cleanup, render, screen, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { validateJsonl } from '../../../src/data/datasetReport';
import type { ChatExample } from '../../../src/data/datasetTypes';
import { DatasetReportView } from '../../../src/ui/components/DatasetReportView';
import { plots } from '../fakeUplot';

vi.mock('uplot', () => import('../fakeUplot'));

beforeEach(() => {
  plots.length = 0;
});
afterEach(cleanup);

const chat = (user: string, assistant: string) => JSON.stringify({ messages: [{ role: 'user', content: user }, { role: 'assistant', content: assistant }] });
/** One token per character: enough to give the report exact statistics. */
const countTokens = (e: ChatExample) => {
  const tokens = e.messages.reduce((n, m) => n + m.content.length, 0);
  const trainedTokens = e.messages.filter((m) => m.role === 'assistant').reduce((n, m) => n + m.content.length, 0);
  return { tokens, trainedTokens };
};
const NO_SPEED = { epochs: null, tokensPerSecond: null };

describe('DatasetReportView', () => {
  it('lists errors by line with where and what, and counts them with plurals', async () => {
    const text = [chat('hi', 'hello'), '{"messages": [', JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'bot', content: 'x' }] }), chat('a', 'b')].join('\n');
    const report = await validateJsonl(text);
    render(<DatasetReportView report={report} estimate={NO_SPEED} testId="r" />);
    expect(screen.getByTestId('r').getAttribute('data-ok')).toBe('false');
    expect(screen.getByRole('status').textContent).toBe(`${report.errorCount} errors in 2 of 4 lines. Fix them and pick the file again.`);
    expect(report.errorCount).toBeGreaterThanOrEqual(2);

    const table = screen.getByTestId('validation-errors');
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows).toHaveLength(report.errors.length);
    expect(rows.map((r) => r.getAttribute('data-line'))).toEqual(report.errors.map((e) => String(e.line)));
    expect(rows[0]!.getAttribute('data-line')).toBe('2');
    const cells = (r: HTMLElement) => [within(r).getByRole('rowheader').textContent, ...within(r).getAllByRole('cell').map((c) => c.textContent)];
    // Line 2 is not JSON: a whole-line problem has no path.
    expect(cells(rows[0]!)[0]).toBe('2');
    expect(cells(rows[0]!)[1]).toBe('–');
    const bot = rows.find((r) => r.getAttribute('data-line') === '3' && cells(r)[1] === 'messages[1].role')!;
    expect(cells(bot)[2]).toContain('"bot"');
    expect(screen.queryByText(/Only the first/)).toBeNull();
  });

  it('one error is "error", singular; a truncated list says how many it shows', async () => {
    const one = await validateJsonl([chat('a', 'b'), 'nope', chat('c', 'd')].join('\n'));
    render(<DatasetReportView report={one} estimate={NO_SPEED} testId="one" />);
    expect(within(screen.getByTestId('one')).getByRole('status').textContent).toBe('1 error in 1 of 3 lines. Fix them and pick the file again.');
    cleanup();

    const many = await validateJsonl(['x', 'y', 'z', chat('a', 'b')].join('\n'), { maxListedErrors: 2 });
    render(<DatasetReportView report={many} estimate={NO_SPEED} testId="many" />);
    expect(within(screen.getByTestId('validation-errors')).getAllByRole('row')).toHaveLength(3);
    expect(screen.getByText('Only the first 2 errors are listed.')).toBeTruthy();
    expect(screen.getByRole('status').textContent).toBe('3 errors in 3 of 4 lines. Fix them and pick the file again.');
  });

  it('renders user text as text: markup in an error message creates no element', async () => {
    const evil = '<img src=x onerror=alert(1)>';
    const report = await validateJsonl([chat('a', 'b'), JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: evil, content: 'x' }] })].join('\n'));
    const shown = report.errors.find((e) => e.message.includes(evil));
    expect(shown).toBeDefined();
    const { container } = render(<DatasetReportView report={report} estimate={NO_SPEED} testId="r" />);
    expect(container.querySelector('img')).toBeNull();
    expect(document.querySelector('img')).toBeNull();
    const cell = within(screen.getByTestId('validation-errors')).getByText((_, el) => el?.tagName === 'TD' && (el.textContent ?? '').includes(evil));
    expect(cell.textContent).toBe(shown!.message);
    expect(cell.children).toHaveLength(0);
  });

  it('a report with errors but no invalid lines to fix says there are no valid examples', async () => {
    const report = await validateJsonl('\n\n');
    render(<DatasetReportView report={report} estimate={NO_SPEED} testId="r" />);
    expect(report.errorCount).toBe(0);
    expect(screen.getByRole('status').textContent).toBe('No valid examples in this file.');
  });

  it('a good file: example count with plural, warnings with their lines, and a hint to pick a model', async () => {
    const report = await validateJsonl([chat('a', 'b'), chat('c', 'd')].join('\n'));
    render(<DatasetReportView report={report} estimate={NO_SPEED} testId="r" />);
    expect(screen.getByRole('status').textContent).toBe('2 valid examples (chat messages).');
    const warnings = screen.getByTestId('validation-warnings');
    // Two examples are fewer than OpenAI's minimum of 10.
    expect(report.warnings.map((w) => w.code)).toContain('too_few_examples');
    const items = within(warnings).getAllByRole('listitem').map((li) => li.textContent);
    expect(items).toHaveLength(report.warnings.length);
    report.warnings.forEach((w, i) => expect(items[i]).toBe(`warning ${w.message}${w.lines?.length ? ` (line${w.lines.length > 1 ? 's' : ''} ${w.lines.join(', ')})` : ''}`));
    expect(screen.getByText('Pick a model to see token statistics (they need its tokenizer).')).toBeTruthy();
    expect(screen.queryByTestId('billed-tokens')).toBeNull();
    cleanup();

    const single = await validateJsonl(chat('a', 'b'));
    render(<DatasetReportView report={single} estimate={NO_SPEED} testId="r" />);
    expect(screen.getByRole('status').textContent).toBe('1 valid example (chat messages).');
  });

  it('warnings quote their lines: "line 3", "lines 2, 3", and "…" when there are more', async () => {
    const lines = [chat('same', 'same'), chat('same', 'same'), chat('same', 'same'), chat('other', 'x')];
    const report = await validateJsonl(lines.join('\n'), { maxWarningLines: 1 });
    const dup = report.warnings.find((w) => w.code === 'duplicates')!;
    expect(dup.lines).toEqual([2]);
    expect(dup.count).toBe(2);
    render(<DatasetReportView report={report} estimate={NO_SPEED} testId="r" />);
    const item = within(screen.getByTestId('validation-warnings'))
      .getAllByRole('listitem')
      .find((li) => li.textContent!.includes(dup.message))!;
    expect(item.textContent).toBe(`warning ${dup.message} (line 2, …)`);
    cleanup();

    const all = await validateJsonl(lines.join('\n'));
    render(<DatasetReportView report={all} estimate={NO_SPEED} testId="r" />);
    const dupAll = all.warnings.find((w) => w.code === 'duplicates')!;
    const item2 = within(screen.getByTestId('validation-warnings'))
      .getAllByRole('listitem')
      .find((li) => li.textContent!.includes(dupAll.message))!;
    expect(item2.textContent).toBe(`warning ${dupAll.message} (lines 2, 3)`);
  });

  it('token statistics, billed tokens for the epochs, a time estimate at a measured speed, and the histogram', async () => {
    // Tokens per example: 2+3=5 (3 trained), 4+6=10 (6 trained), 1+30=31 (30 trained).
    const text = [chat('ab', 'cde'), chat('abcd', 'efghij'), chat('a', 'x'.repeat(30))].join('\n');
    const report = await validateJsonl(text, { countTokens, maxSeqLen: 20, epochs: 2 });
    expect(report.stats!.totalTokens).toBe(46);
    render(<DatasetReportView report={report} estimate={{ epochs: 4, tokensPerSecond: 35 }} testId="r" />);
    const value = (term: string) => screen.getByText(term, { selector: 'dt' }).nextElementSibling!;
    expect(value('Tokens').textContent).toBe('46');
    // Truncation at 20 keeps 19 of the last example's 30 trained tokens: 3 + 6 + 19.
    expect(value('Trained tokens / epoch').textContent).toBe('28');
    expect(value('Per example').textContent).toBe(`min 5 · median 10 · p95 ${report.stats!.p95} · max 31`);
    // The estimate's epochs (the preview's) win over the report's.
    expect(screen.getByTestId('billed-tokens').textContent).toBe('1124 epochs × trained tokens');
    // 4 epochs x processed tokens (5 + 10 + 20 = 35) / 35 tokens/s = 4 s.
    expect(value('Time estimate').textContent).toBe('≈ 4 sat 35 tokens/s measured here');
    expect(screen.getByText('1 examples are longer than 20 tokens and will be cut from the end.')).toBeTruthy();

    const histogram = screen.getByTestId('token-histogram');
    expect(histogram.getAttribute('data-points')).toBe(String(report.stats!.histogram.length));
    expect(plots).toHaveLength(1);
    const [x, counts] = plots[0]!.data as [number[], number[]];
    expect(x).toEqual(report.stats!.histogram.map((b) => b.lo));
    expect(counts).toEqual(report.stats!.histogram.map((b) => b.count));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(3);
  });

  it('without a measured speed the time waits for a first job; one epoch is singular', async () => {
    const report = await validateJsonl(chat('ab', 'cd'), { countTokens });
    render(<DatasetReportView report={report} estimate={{ epochs: 1, tokensPerSecond: null }} testId="r" />);
    expect(screen.getByTestId('billed-tokens').textContent).toBe('21 epoch × trained tokens');
    expect(screen.getByText('after a first job')).toBeTruthy();
    expect(screen.getByText('needs a measured speed on this device')).toBeTruthy();
  });
});
