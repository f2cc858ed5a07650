// @vitest-environment happy-dom
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';

import { KERNELS_KEY, savedKernelChoice } from '../../../../src/ui/kernelPlan';
import { BenchPanel, type BenchWorkerLike } from '../../../../src/ui/pages/gpu/BenchPanel';
import { KernelPlanCard } from '../../../../src/ui/pages/gpu/KernelPlanCard';
import type { BenchRequest } from '../../../../src/worker/benchProtocol';

afterEach(() => {
  cleanup();
  localStorage.clear();
});

describe('KernelPlanCard', () => {
  it('saves the chosen plan, which the next benchmark run asks its worker for', () => {
    expect(savedKernelChoice()).toBe('auto');
    const sent: BenchRequest[] = [];
    const worker: BenchWorkerLike = { onmessage: null, onerror: null, postMessage: (m) => void sent.push(m), terminate: () => {} };
    render(
      <>
        <KernelPlanCard />
        <BenchPanel createWorker={() => worker} />
      </>,
    );
    const select = screen.getByLabelText('Kernel plan') as HTMLSelectElement;
    expect(select.value).toBe('auto');
    fireEvent.change(select, { target: { value: 'gpu' } });
    expect(localStorage.getItem(KERNELS_KEY)).toBe('gpu');
    expect(savedKernelChoice()).toBe('gpu');
    fireEvent.click(screen.getByRole('button', { name: 'Run benchmarks' }));
    expect(sent).toEqual([{ type: 'run-kernels', preset: 'tiny', kernels: 'gpu' }]);
  });

  it('reads an unknown saved value as auto', () => {
    localStorage.setItem(KERNELS_KEY, 'fastest');
    expect(savedKernelChoice()).toBe('auto');
    render(<KernelPlanCard />);
    expect((screen.getByLabelText('Kernel plan') as HTMLSelectElement).value).toBe('auto');
  });
});
