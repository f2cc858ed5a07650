// @vitest-environment happy-dom
// A job's page says what its numbers mean: steps that trained no token are not a loss of 0, a
// validation pass with no trained token is not NaN, and a tiny base model comes with what to expect.
import { cleanup, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { createJobRecord, type JobRecord } from '../../../src/jobs/job';
import type { StepMetrics } from '../../../src/train/metrics';
import { EngineContext } from '../../../src/ui/engine';
import { JobDetail, jobTitle } from '../../../src/ui/pages/JobDetail';
import { storeOverJobs } from '../jobsStore';

vi.mock('uplot', () => import('../fakeUplot'));

function jobOn(parameters: number): JobRecord {
  const job = createJobRecord({
    id: 'ftjob-1',
    baseModel: {
      source: { kind: 'embedded', name: 'whittle-tiny', url: 'http://x/models/tiny/', files: [] },
      summary: { architecture: 'LlamaForCausalLM', modelType: 'llama', family: 'llama', parameters, layers: 2, hidden: 48, heads: 4, kvHeads: 2, vocabSize: 320, maxPositions: 128, torchDtype: 'float32' },
    },
    trainingFile: { id: 'file-1', name: 'train.jsonl', bytes: 10 },
    hyperparameters: {},
    suffix: 'doctor',
    dtype: 'auto',
  });
  return { ...job, status: 'succeeded', step: 3, totalSteps: 3 };
}

function step(n: number, extra: Partial<StepMetrics>): StepMetrics {
  return { step: n, epoch: 1, trainLoss: 2, trainAccuracy: 0.4, trainTokens: 50, learningRate: 1e-3, gradNorm: 1, tokensPerSecond: 100, elapsedMs: n * 1000, etaMs: null, gpuBytes: 1024, ...extra };
}

async function open(job: JobRecord, metrics: StepMetrics[]) {
  const store = await storeOverJobs([job], () => metrics);
  render(
    <EngineContext.Provider value={store}>
      <JobDetail jobId={job.id} controls={{ smoothing: 0, logScale: false }} onControls={() => undefined} />
    </EngineContext.Provider>,
  );
}

afterEach(cleanup);

describe('JobDetail', () => {
  it('says which steps trained nothing and shows the loss of the last step that trained', async () => {
    await open(jobOn(400_000), [step(1, { trainLoss: 2.5 }), step(2, { trainLoss: 1.75, trainAccuracy: 0.5 }), step(3, { trainTokens: 0, trainLoss: 0, trainAccuracy: 0, fullValidLoss: NaN, fullValidAccuracy: 0 })]);
    await waitFor(() => expect(screen.getByTestId('untrained-steps').textContent).toMatch(/^1 of 3 steps had no trained tokens/));
    expect(screen.getByTestId('train-loss').textContent).toBe('1.75accuracy 50.0%');
    expect(screen.getByTestId('untrained-validation').textContent).toMatch(/Validation loss: none, no trained tokens in the validation file at this length/);
    expect(screen.getByTestId('tiny-model-expectation').textContent).toMatch(/What to expect: a model this small learns style and format first/);
    expect(document.body.textContent).not.toMatch(/NaN/);
    expect(screen.getByTestId('checkpoint-cadence').textContent).toBe('each epoch');
  });

  it('shows the checkpoint cadence the job was created with', async () => {
    await open({ ...jobOn(400_000), checkpointEvery: 50 }, [step(1, {})]);
    await waitFor(() => expect(screen.getByTestId('checkpoint-cadence').textContent).toBe('every 50 steps and each epoch'));
    expect(screen.getByText(/^Checkpoints are saved every 50 steps, at the end of each epoch and when a job pauses\.$/)).toBeTruthy();
  });

  it('says which kernel plan the job runs and where it came from, once it has run', async () => {
    await open({ ...jobOn(400_000), kernelPlan: 'gpu plan (tuning, 6 tuned matmul shapes)' }, [step(1, {})]);
    await waitFor(() => expect(screen.getByTestId('job-kernel-plan').textContent).toBe('gpu plan (tuning, 6 tuned matmul shapes)'));
    cleanup();
    await open(jobOn(400_000), [step(1, {})]);
    await waitFor(() => expect(screen.getByTestId('checkpoint-cadence')).toBeTruthy());
    expect(screen.queryByTestId('job-kernel-plan')).toBeNull();
  });

  it('a job where no step trained says none, not 0; a large model gets no tiny-model note', async () => {
    await open(jobOn(7e9), [step(1, { trainTokens: 0, trainLoss: 0, trainAccuracy: 0 })]);
    await waitFor(() => expect(screen.getByTestId('train-loss').textContent).toBe('noneno trained tokens in this step'));
    expect(screen.queryByTestId('tiny-model-expectation')).toBeNull();
    expect(screen.queryByTestId('untrained-validation')).toBeNull();
  });
});

describe('jobTitle', () => {
  it('names a job after its training file or sample, with the suffix the user gave', () => {
    expect(jobTitle({ id: 'ftjob-abc', suffix: null, trainingFile: { name: 'pirate-style.train.jsonl' } })).toBe('pirate-style');
    expect(jobTitle({ id: 'ftjob-abc', suffix: 'v2', trainingFile: { name: 'pirate-style.train.jsonl' } })).toBe('pirate-style · v2');
    expect(jobTitle({ id: 'ftjob-abc', suffix: 'notes', trainingFile: { name: 'notes.jsonl' } })).toBe('notes');
    // The first screen's quick check trains on the sample's first examples.
    expect(jobTitle({ id: 'ftjob-abc', suffix: 'pirate-style', trainingFile: { name: 'pirate-style.train.first-32.jsonl' } })).toBe('pirate-style · quick check');
    // Without a file name: the suffix, else the id.
    expect(jobTitle({ id: 'ftjob-abc', suffix: 'tiny' })).toBe('tiny');
    expect(jobTitle({ id: 'ftjob-abc', suffix: null })).toBe('ftjob-abc');
  });
});
