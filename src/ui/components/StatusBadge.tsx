import type { JobStatus } from '../../worker/trainingProtocol';

const LABELS: Record<JobStatus, string> = {
  validating_files: 'Validating files',
  queued: 'Queued',
  running: 'Running',
  paused: 'Paused',
  succeeded: 'Succeeded',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

export function statusLabel(status: JobStatus): string {
  return LABELS[status];
}

/** A job's status as a coloured badge; the word is always there, colour only repeats it. */
export function StatusBadge({ status }: { status: JobStatus }) {
  return (
    <span className={`badge status-${status}`} data-testid="status-badge" data-status={status}>
      {(status === 'running' || status === 'validating_files') && <span className="badge-pulse" aria-hidden="true" />}
      {LABELS[status]}
    </span>
  );
}
