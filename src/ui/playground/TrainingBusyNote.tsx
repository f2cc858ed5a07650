// Tells the playground user why replies come slowly while a job trains: both share this GPU.
import type { JobRecord } from '../../worker/trainingProtocol';
import { jobTitle } from '../pages/JobDetail';
import { hrefFor } from '../router';

export function TrainingBusyNote({ jobs }: { jobs: readonly JobRecord[] | null }) {
  const running = jobs?.find((j) => j.status === 'running');
  if (!running) return null;
  return (
    <p className="callout warn" role="status" data-testid="training-busy">
      Job <a href={hrefFor({ page: 'jobs', jobId: running.id, compare: [] })}>{jobTitle(running)}</a> is training on this GPU, so replies come slower until it
      finishes or you pause it.
    </p>
  );
}
