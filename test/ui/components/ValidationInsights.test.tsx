// @vitest-environment happy-dom
// The job page's validation-insights section for each stored state, with a fake engine client.
import { cleanup, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { createJobRecord, type JobRecord, type JobStatus } from '../../../src/jobs/job';
import type { InsightExample, ValidationInsightsState } from '../../../src/jobs/validationInsights';
import { formatLossChange, insightsView, ValidationInsights } from '../../../src/ui/components/ValidationInsights';

const client = vi.hoisted(() => ({ computeInsights: vi.fn<(id: string) => Promise<unknown>>() }));
vi.mock('../../../src/ui/engine', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/ui/engine')>();
  return { ...real, useClient: () => client };
});

afterEach(cleanup);

const SUMMARY = { architecture: 'LlamaForCausalLM', modelType: 'llama', family: 'llama', parameters: 1, layers: 2, hidden: 48, heads: 4, kvHeads: 2, vocabSize: 320, maxPositions: 128, torchDtype: 'float32' } as const;

function jobWith(status: JobStatus, state: ValidationInsightsState | null | undefined): JobRecord {
  const job = createJobRecord({ id: 'ftjob-abc', baseModel: { source: { kind: 'embedded', name: 'm', url: '/m', files: [] }, summary: SUMMARY }, trainingFile: { id: 'file-t', name: 't.jsonl', bytes: 1 }, now: 0 });
  return { ...job, status, validationInsights: state };
}

const example = (index: number, baseLoss: number, fineTunedLoss: number, over: Partial<InsightExample> = {}): InsightExample => ({
  index,
  prompt: [
    { role: 'system', content: 'Be terse.' },
    { role: 'user', content: `Question ${index}` },
  ],
  reference: `Reference ${index}`,
  tokens: 3,
  baseLoss,
  fineTunedLoss,
  baseAnswer: `base says ${index}`,
  fineTunedAnswer: `tuned says ${index}`,
  baseFinish: 'length',
  fineTunedFinish: 'eos',
  maxNewTokens: 8,
  truncated: false,
  ...over,
});

const READY: ValidationInsightsState = {
  state: 'ready',
  insights: {
    computedAt: 0,
    validationExamples: 70,
    scored: 64,
    baseMeanLoss: 2,
    fineTunedMeanLoss: 1.25,
    highest: [example(4, 3, 2.5, { fineTunedAnswer: '<b>not bold</b>' }), example(0, 2.9, 2.0)],
    lowest: [example(7, 1.5, 0.123456)],
  },
};

describe('ValidationInsights', () => {
  it('shows the highest- and lowest-loss examples with both losses and both answers side by side, as text', () => {
    render(<ValidationInsights job={jobWith('succeeded', READY)} />);
    const section = screen.getByRole('region', { name: 'Validation insights' });
    expect(section.getAttribute('data-state')).toBe('ready');
    expect(screen.getByTestId('insights-summary').textContent).toContain('64 of 70 validation examples scored');
    expect(screen.getByTestId('insights-summary').textContent).toContain('2.0000 base → 1.2500 fine-tuned (\u221237.5%)');
    const high = screen.getByRole('region', { name: /Highest loss/ });
    const low = screen.getByRole('region', { name: /Lowest loss/ });
    const highCards = within(high).getAllByTestId('insight-example');
    expect(highCards.map((c) => within(c).getByRole('heading').textContent)).toEqual(['Example 5 (high loss, rank 1)', 'Example 1 (high loss, rank 2)']);
    const [card] = within(low).getAllByTestId('insight-example');
    expect(within(card!).getByTestId('insight-fine-tuned-loss').textContent).toBe('0.1235');
    expect(card!.textContent).toContain('1.5000');
    expect(card!.textContent).toContain('Question 7');
    expect(card!.textContent).toContain('Reference 7');
    const answers = card!.querySelectorAll('figure');
    expect([...answers].map((f) => f.querySelector('figcaption')!.textContent)).toEqual(['Base model', 'Fine-tuned model']);
    expect(answers[0]!.textContent).toContain('base says 7');
    expect(answers[0]!.textContent).toContain('stopped at the 8-token limit');
    expect(answers[1]!.textContent).toContain('tuned says 7');
    expect(answers[1]!.textContent).not.toContain('limit');
    // Model output is text, never markup.
    expect(section.querySelector('b')).toBeNull();
    expect(highCards[0]!.textContent).toContain('<b>not bold</b>');
  });

  it('says "no validation data", offers to compute missing or failed insights, and shows progress', async () => {
    const none = render(<ValidationInsights job={jobWith('succeeded', { state: 'none', reason: 'No validation data: nothing to rank.' })} />);
    expect(screen.getByTestId('insights-none').textContent).toBe('No validation data: nothing to rank.');
    expect(screen.queryByRole('button')).toBeNull();
    none.unmount();

    client.computeInsights.mockResolvedValue(null);
    const missing = render(<ValidationInsights job={jobWith('succeeded', undefined)} />);
    await userEvent.click(screen.getByRole('button', { name: 'Compute validation insights' }));
    expect(client.computeInsights).toHaveBeenCalledWith('ftjob-abc');
    missing.unmount();

    const failed = render(<ValidationInsights job={jobWith('succeeded', { state: 'failed', message: 'out of memory' })} />);
    expect(screen.getByText(/could not be computed: out of memory/)).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Try again' })).toBeTruthy();
    failed.unmount();

    render(<ValidationInsights job={jobWith('running', { state: 'computing', phase: 'generating', done: 3, total: 12 })} />);
    const bar = screen.getByRole('progressbar', { name: 'Validation insights progress' });
    expect(bar.getAttribute('aria-valuenow')).toBe('3');
    expect(bar.getAttribute('aria-valuemax')).toBe('12');
    expect(screen.getByTestId('validation-insights').textContent).toContain('(3 of 12)');
  });

  it('shows nothing before a job succeeds, unless insights are being computed', () => {
    expect(insightsView({ status: 'running' }, null)).toBeNull();
    expect(insightsView({ status: 'paused' }, { state: 'computing', phase: 'scoring', done: 1, total: 4 })).toBeNull();
    expect(insightsView({ status: 'failed' }, undefined)).toBeNull();
    expect(insightsView({ status: 'succeeded' }, null)).toEqual({ kind: 'missing' });
    const { container } = render(<ValidationInsights job={jobWith('queued', null)} />);
    expect(container.innerHTML).toBe('');
  });

  it('formats the loss change', () => {
    expect(formatLossChange(2, 1)).toBe('\u221250.0%');
    expect(formatLossChange(1, 1.5)).toBe('+50.0%');
    expect(formatLossChange(1, 1)).toBe('±0.0%');
    expect(formatLossChange(NaN, 1)).toBe('–');
  });
});
