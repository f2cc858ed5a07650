// @vitest-environment happy-dom
// The jobs list and a queued job's page say why it waits: the job training now, else the queued
// job ahead of it; a job that starts next, or is not queued, says nothing.
import { cleanup, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { createJobRecord, type JobRecord, type JobStatus } from '../../../src/jobs/job';
import { EngineContext } from '../../../src/ui/engine';
import { queueReason } from '../../../src/ui/pages/JobDetail';
import { FineTuningPage } from '../../../src/ui/pages/FineTuningPage';
import { storeOverJobs } from '../jobsStore';

vi.mock('uplot', () => import('../fakeUplot'));

function job(id: string, file: string, status: JobStatus, createdAt: number): JobRecord {
  const record = createJobRecord({
    id,
    baseModel: {
      source: { kind: 'embedded', name: 'whittle-tiny', url: 'http://x/models/tiny/', files: [] },
      summary: { architecture: 'LlamaForCausalLM', modelType: 'llama', family: 'llama', parameters: 400_000, layers: 2, hidden: 48, heads: 4, kvHeads: 2, vocabSize: 320, maxPositions: 128, torchDtype: 'float32' },
    },
    trainingFile: { id: `file-${id}`, name: file, bytes: 10 },
    hyperparameters: {},
    dtype: 'auto',
    now: createdAt,
  });
  return { ...record, status };
}

async function open(jobs: JobRecord[], shown: string) {
  const store = await storeOverJobs(jobs);
  render(
    <EngineContext.Provider value={store}>
      <FineTuningPage jobId={shown} compare={[]} />
    </EngineContext.Provider>,
  );
  await waitFor(() => expect(screen.getByTestId('job-detail').getAttribute('data-job-id')).toBe(shown));
}

const listed = (id: string) => screen.getAllByTestId('job-item').find((li) => li.getAttribute('data-job-id') === id)!;

afterEach(cleanup);

describe('a queued job says why it waits', () => {
  const running = job('ftjob-run', 'pirate-style.train.jsonl', 'running', 1000);
  const first = job('ftjob-q1', 'clinic.jsonl', 'queued', 2000);
  const second = job('ftjob-q2', 'notes.jsonl', 'queued', 3000);

  it('on its page and in the jobs list: waiting for the job that trains now', async () => {
    await open([second, first, running], 'ftjob-q2');
    const reason = 'Waiting for job pirate-style to finish: jobs train one at a time on this GPU.';
    expect(screen.getByTestId('queue-reason').textContent).toBe(reason);
    expect(within(listed('ftjob-q2')).getByTestId('job-queue-reason').textContent).toBe(reason);
    expect(within(listed('ftjob-q1')).getByTestId('job-queue-reason').textContent).toBe(reason);
    expect(within(listed('ftjob-run')).queryByTestId('job-queue-reason')).toBeNull();
  });

  it('with nothing training: the queued job ahead of it, and none for the one that starts next', () => {
    const done = { ...running, status: 'succeeded' as const };
    expect(queueReason(second, [second, first, done])).toBe('Waiting for job clinic, queued before it.');
    expect(queueReason(first, [second, first, done])).toBeNull();
    expect(queueReason(running, [second, first, running])).toBeNull();
  });
});
