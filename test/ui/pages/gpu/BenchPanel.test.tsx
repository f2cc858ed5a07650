// @vitest-environment happy-dom
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';

import { BenchPanel, benchFileName, type BenchWorkerLike } from '../../../../src/ui/pages/gpu/BenchPanel';
import type { BenchEvent, BenchRequest, BenchRow } from '../../../../src/worker/benchProtocol';

afterEach(cleanup);

class FakeWorker implements BenchWorkerLike {
  sent: BenchRequest[] = [];
  terminated = false;
  onmessage: ((ev: MessageEvent<BenchEvent>) => void) | null = null;
  onerror: ((ev: ErrorEvent) => void) | null = null;
  postMessage(message: BenchRequest): void {
    this.sent.push(message);
  }
  terminate(): void {
    this.terminated = true;
  }
  emit(event: BenchEvent): void {
    act(() => this.onmessage?.({ data: event } as MessageEvent<BenchEvent>));
  }
}

const ROWS: BenchRow[] = [
  { suite: 'kernels', name: 'linear x·Wᵀ 64x128x128 f32', ms: 1.5, gflops: 1.4 },
  { suite: 'kernels', name: 'lora linear fused <b>64</b>', ms: 5.25, gflops: 1.16, note: 'loraDown + loraLinear' },
];

describe('BenchPanel', () => {
  it('runs the chosen preset in the worker, shows progress, the table, and offers the JSON', () => {
    const workers: FakeWorker[] = [];
    const { unmount } = render(<BenchPanel createWorker={() => (workers.push(new FakeWorker()), workers.at(-1)!)} />);
    expect(workers).toHaveLength(0); // no worker (and no GPU device) until asked
    fireEvent.change(screen.getByLabelText('Shapes'), { target: { value: 'small' } });
    fireEvent.click(screen.getByRole('button', { name: 'Run benchmarks' }));
    expect(workers).toHaveLength(1);
    expect(workers[0]!.sent).toEqual([{ type: 'run-kernels', preset: 'small', kernels: 'auto' }]);
    expect(screen.getByRole('button', { name: 'Running…' }).hasAttribute('disabled')).toBe(true);

    workers[0]!.emit({ type: 'progress', message: 'kernels: attention T = 128' });
    expect(screen.getByTestId('bench-summary').textContent).toBe('kernels: attention T = 128');
    expect(screen.queryByRole('button', { name: 'Download JSON' })).toBeNull();

    workers[0]!.emit({ type: 'done', rows: ROWS, json: '{}\n', adapter: 'SwiftShader', seconds: 3.21, kernels: 'cpu' });
    expect(screen.getByTestId('bench-summary').textContent).toBe('2 cases in 3.2 s on SwiftShader, cpu kernels.');
    const rows = screen.getAllByTestId('bench-row');
    expect(rows).toHaveLength(2);
    // Names are text, never markup.
    expect(rows[1]!.querySelector('th')!.textContent).toBe('lora linear fused <b>64</b>');
    expect(rows[1]!.querySelector('b')).toBeNull();
    expect(rows[1]!.textContent).toContain('5.250');
    expect(screen.getByRole('button', { name: 'Download JSON' })).toBeTruthy();

    // A second run reuses the worker.
    fireEvent.click(screen.getByRole('button', { name: 'Run benchmarks' }));
    expect(workers).toHaveLength(1);
    expect(workers[0]!.sent).toHaveLength(2);
    workers[0]!.emit({ type: 'error', message: 'device lost' });
    expect(screen.getByTestId('bench-summary').textContent).toBe('The benchmark stopped: device lost');
    expect(screen.queryByTestId('bench-table')).toBeNull();

    unmount();
    expect(workers[0]!.terminated).toBe(true);
  });

  it('names downloads like the CLI results', () => {
    expect(benchFileName('tiny', new Date('2026-11-25T13:00:00Z'))).toBe('kernels-tiny-2026-11-25.json');
  });
});
