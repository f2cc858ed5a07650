// @vitest-environment happy-dom
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';

import { StatusBadge, statusLabel } from '../../../src/ui/components/StatusBadge';
import type { JobStatus } from '../../../src/worker/trainingProtocol';

afterEach(cleanup);

const ALL: [JobStatus, string, boolean][] = [
  ['validating_files', 'Validating files', true],
  ['queued', 'Queued', false],
  ['running', 'Running', true],
  ['paused', 'Paused', false],
  ['succeeded', 'Succeeded', false],
  ['failed', 'Failed', false],
  ['cancelled', 'Cancelled', false],
];

describe('StatusBadge', () => {
  it.each(ALL)('%s: says "%s" in words, pulses only while work is happening', (status, label, pulses) => {
    render(<StatusBadge status={status} />);
    const badge = screen.getByTestId('status-badge');
    expect(badge.textContent).toBe(label);
    expect(badge.getAttribute('data-status')).toBe(status);
    expect(badge.className).toBe(`badge status-${status}`);
    const pulse = badge.querySelector('.badge-pulse');
    expect(pulse !== null).toBe(pulses);
    if (pulse) expect(pulse.getAttribute('aria-hidden')).toBe('true');
    expect(statusLabel(status)).toBe(label);
  });

  it('renders one badge per render (cleanup between tests leaves none behind)', () => {
    render(<StatusBadge status="queued" />);
    expect(screen.getAllByTestId('status-badge')).toHaveLength(1);
  });
});
