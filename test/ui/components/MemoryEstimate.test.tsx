// @vitest-environment happy-dom
// The job form's memory line: the estimated total against the budget, its parts, the largest
// buffer and binding against the adapter's limits, the problems in a warning state, where the
// budget comes from, and the last estimate kept (dimmed) while a new one is worked out.
import { cleanup, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';

import type { JobMemoryCheck } from '../../../src/jobs/jobMemory';
import { budgetSource, MemoryEstimate, memoryParts } from '../../../src/ui/components/MemoryEstimate';

afterEach(cleanup);

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** A 1780 MiB job: 1.5 GiB of f16 weights, 48 MiB of adapter, 192 MiB of activations, 4 MiB else. */
const FITS: JobMemoryCheck = {
  batch: 4,
  seq: 512,
  rank: 16,
  dtype: 'f16',
  targetModules: ['q_proj', 'v_proj'],
  estimate: {
    weightsBytes: 1536 * MiB,
    loraBytes: 48 * MiB,
    loraParameters: 2_097_152,
    residualBytes: 64 * MiB,
    layerScratchBytes: 96 * MiB,
    keptActivationsBytes: 0,
    recompute: 'always',
    keptLayers: 0,
    logitsBytes: 32 * MiB,
    keptLogits: false,
    optimizerScratchBytes: 1 * MiB,
    kernelParamsBytes: 3 * MiB,
    totalBytes: 1780 * MiB,
    largestBufferBytes: 96 * MiB,
    largestBindingBytes: 32 * MiB,
  },
  limits: { maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 128 * MiB, limitsFrom: 'device', budgetBytes: 4 * GiB, budgetFrom: 'device-memory' },
  problems: [],
};

const OVER: JobMemoryCheck = {
  ...FITS,
  limits: { ...FITS.limits, budgetBytes: GiB, budgetFrom: 'default', limitsFrom: 'webgpu-defaults' },
  problems: [{ kind: 'total', bytes: 1780 * MiB, limit: GiB, message: 'The job needs about 1.7 GiB of GPU memory, more than the 1.0 GiB budget.' }],
};

const parts = () =>
  within(screen.getByRole('list', { name: 'Memory estimate by part' }))
    .getAllByRole('listitem')
    .map((li) => [li.firstElementChild!.textContent, li.lastElementChild!.textContent]);

describe('memoryParts', () => {
  it('adds the activations up and the optimizer scratch with the kernel parameters', () => {
    expect(memoryParts(FITS)).toEqual([
      { label: 'Base weights', bytes: 1536 * MiB, detail: 'f16, frozen' },
      { label: 'LoRA + optimizer', bytes: 48 * MiB, detail: '2.10M parameters: weights, gradients, AdamW moments (f32)' },
      { label: 'Activations', bytes: 192 * MiB, detail: 'batch 4 × 512 tokens; recomputed per layer in the backward to fit the budget' },
      { label: 'Other', bytes: 4 * MiB, detail: 'gradient-norm scratch and kernel parameters' },
    ]);
  });
});

describe('MemoryEstimate', () => {
  it('shows the total against the budget, the parts and the largest buffers, without a warning', () => {
    render(<MemoryEstimate memory={FITS} />);
    const box = screen.getByTestId('memory-estimate');
    expect(box.getAttribute('data-state')).toBe('ok');
    expect(box.className).toBe('memory-estimate');
    expect(screen.getByTestId('memory-total').textContent).toBe('≈ 1.7 GiB of ~4 GiB');
    expect(parts()).toEqual([
      ['Base weights', '1.5 GiB'],
      ['LoRA + optimizer', '48 MiB'],
      ['Activations', '192 MiB'],
      ['Other', '4 MiB'],
      ['Largest buffer', '96 MiB of 256 MiB'],
      ['Largest binding', '32 MiB of 128 MiB'],
    ]);
    expect(screen.getByText('Activations').parentElement!.getAttribute('title')).toBe('batch 4 × 512 tokens; recomputed per layer in the backward to fit the budget');
    expect(screen.queryByTestId('memory-problems')).toBeNull();
    expect(box.textContent).toContain("Estimate: WebGPU does not report GPU memory; the budget is half this machine's memory (navigator.deviceMemory); buffer limits from this GPU's adapter.");
  });

  it('an over-budget job is a warning with its reasons, and says the budget is a default', () => {
    render(<MemoryEstimate memory={OVER} />);
    const box = screen.getByTestId('memory-estimate');
    expect(box.getAttribute('data-state')).toBe('over');
    expect(box.classList.contains('over')).toBe(true);
    expect(screen.getByTestId('memory-total').textContent).toBe('≈ 1.7 GiB of ~1 GiB');
    const problems = within(screen.getByTestId('memory-problems')).getAllByRole('listitem');
    expect(problems.map((li) => [li.textContent, li.getAttribute('title')])).toEqual([['Over the memory budget', 'The job needs about 1.7 GiB of GPU memory, more than the 1.0 GiB budget.']]);
    expect(budgetSource(OVER)).toBe(
      'Estimate: WebGPU does not report GPU memory; the budget is a default, as this browser does not say how much memory the machine has; no GPU open: buffer limits are WebGPU defaults.',
    );
  });

  it('keeps the last estimate, dimmed and busy, while a new one is pending; none shows a dash', () => {
    const { rerender } = render(<MemoryEstimate memory={FITS} />);
    rerender(<MemoryEstimate memory={null} pending />);
    const box = screen.getByTestId('memory-estimate');
    expect(box.className).toBe('memory-estimate stale');
    expect(box.getAttribute('aria-busy')).toBe('true');
    expect(screen.getByTestId('memory-total').textContent).toBe('≈ 1.7 GiB of ~4 GiB');
    rerender(<MemoryEstimate memory={OVER} />);
    expect(screen.getByTestId('memory-estimate').getAttribute('aria-busy')).toBeNull();
    expect(screen.getByTestId('memory-estimate').getAttribute('data-state')).toBe('over');
    rerender(<MemoryEstimate memory={null} />);
    expect(screen.getByTestId('memory-estimate').getAttribute('data-state')).toBe('none');
    expect(screen.getByTestId('memory-estimate').textContent).toBe('Memory–');
    expect(screen.queryByTestId('memory-total')).toBeNull();
  });
});
