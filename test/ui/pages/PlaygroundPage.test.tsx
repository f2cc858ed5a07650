// @vitest-environment happy-dom
// The playground opened on a job, with a fake engine client: it asks with the system message the
// job trained with, samples a small model greedily, says when the context (not max tokens)
// stopped a reply, and warns when the prompt leaves little room for one.
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { createJobRecord, type JobRecord } from '../../../src/jobs/job';
import type { GenerateOutput, GenerateParams } from '../../../src/generation/generationText';
import type { EngineStore } from '../../../src/ui/engine';
import { finishLabel, PlaygroundPage } from '../../../src/ui/pages/PlaygroundPage';
import type { TrainingClient } from '../../../src/worker/client';

const engine = vi.hoisted(() => ({ store: null as EngineStore | null }));
vi.mock('../../../src/ui/engine', async (importOriginal) => (await import('../engineMock')).engineModuleOver(importOriginal, engine));
vi.mock('uplot', () => import('../fakeUplot'));

const SYSTEM = 'You are Maple Clinic’s front desk.';
const summary = (parameters: number) =>
  ({ architecture: 'LlamaForCausalLM', modelType: 'llama', family: 'llama', parameters, layers: 2, hidden: 48, heads: 4, kvHeads: 2, vocabSize: 320, maxPositions: 256, torchDtype: 'float32' }) as const;

function jobOn(parameters: number, system: string | null): JobRecord {
  const job = createJobRecord({
    id: 'ftjob-1',
    baseModel: { source: { kind: 'embedded', name: 'whittle-tiny', url: 'http://x/models/tiny/', files: [] }, summary: summary(parameters) },
    trainingFile: { id: 'file-1', name: 'train.jsonl', bytes: 10 },
    hyperparameters: {},
    suffix: 'clinic',
    dtype: 'auto',
  });
  return { ...job, status: 'succeeded', adapterKey: 'adapters/ftjob-1', trainingSystemMessage: system };
}

let generated: GenerateParams[];
let reply: Partial<GenerateOutput>;

function fakeClient(jobs: JobRecord[]): TrainingClient {
  const client = {
    init: () => Promise.resolve({ gpu: null, gpuError: null, storage: 'memory', recovered: [], runsJobs: true }),
    listJobs: () => Promise.resolve(jobs),
    listFiles: () => Promise.resolve([]),
    generate: (params: GenerateParams) => {
      generated.push(params);
      return Promise.resolve({ text: 'Thanks for asking!', tokens: [1, 2, 3], promptTokens: 20, finish: 'eos', prefillMs: 1, decodeMs: 1, tokensPerSecond: 100, ...reply });
    },
  };
  return new Proxy(client, {
    get: (target, key) => (key in target ? target[key as keyof typeof target] : () => Promise.reject(new Error(`fake client: ${String(key)} is not faked`))),
  }) as unknown as TrainingClient;
}

async function open(job: JobRecord, others: JobRecord[] = []) {
  const { EngineStore } = await vi.importActual<typeof import('../../../src/ui/engine')>('../../../src/ui/engine');
  engine.store = new EngineStore(fakeClient([job, ...others]));
  await engine.store.start();
  render(<PlaygroundPage job={job.id} checkpoint={null} />);
  await waitFor(() => expect(screen.getAllByTestId('pane')).toHaveLength(2));
}

// The form's submit, as the Run button sends it (happy-dom does not submit a form on a button click).
const run = () => fireEvent.submit(screen.getByTestId('run-compare').closest('form')!);
const systemBox = () => screen.getByLabelText('System message') as HTMLTextAreaElement;
const temperature = () => screen.getAllByLabelText('Temperature')[0] as HTMLInputElement;

beforeEach(() => {
  generated = [];
  reply = {};
  localStorage.clear();
});
afterEach(cleanup);

describe('PlaygroundPage on a job', () => {
  it('fills in the system message the job trained with and samples a small model greedily', async () => {
    await open(jobOn(400_000, SYSTEM));
    await waitFor(() => expect(systemBox().value).toBe(SYSTEM));
    expect(temperature().value).toBe('0');
    expect(screen.queryByTestId('temperature-hint')).toBeNull();

    const user = userEvent.setup({ delay: null });
    await user.type(screen.getByTestId('user-message'), 'When are you open?');
    await run();
    await waitFor(() => expect(generated).toHaveLength(2));
    for (const p of generated) {
      expect(p.messages![0]).toEqual({ role: 'system', content: SYSTEM });
      expect(p.temperature).toBe(0);
    }
    // Raising the temperature on a small model says why its text turns noisy.
    await user.clear(temperature());
    await user.type(temperature(), '0.7');
    expect(screen.getByTestId('temperature-hint').textContent).toMatch(/Small model: temperature 0 \(greedy\) shows what it learned/);
  });

  it('keeps the usual defaults for a large model and an empty system message for an older job', async () => {
    await open(jobOn(7e9, null));
    expect(systemBox().value).toBe('');
    expect(temperature().value).toBe('0.7');
    expect(screen.queryByTestId('temperature-hint')).toBeNull();
  });

  it('says the context filled, and warns that the prompt leaves little room until it changes', async () => {
    reply = { finish: 'context', promptTokens: 250, tokens: [1, 2, 3, 4, 5, 6] };
    await open(jobOn(400_000, SYSTEM));
    const user = userEvent.setup({ delay: null });
    await user.type(screen.getByTestId('user-message'), 'A long question');
    await run();
    await waitFor(() => expect(screen.getAllByTestId('pane-state').map((s) => s.textContent)).toEqual(['context full', 'context full']));
    expect(screen.getByTestId('prompt-room').textContent).toMatch(/This prompt takes 250 of the model’s 256 positions, leaving 6 tokens for the reply \(max tokens is 128\)/);
    await user.type(screen.getByTestId('user-message'), '?');
    expect(screen.queryByTestId('prompt-room')).toBeNull();
  });

  it('shows the kernel plan each pane generated with', async () => {
    reply = { kernelPlan: 'gpu plan (cache, 3 tuned matmul shapes, subgroup reductions)' };
    await open(jobOn(400_000, SYSTEM));
    const user = userEvent.setup({ delay: null });
    await user.type(screen.getByTestId('user-message'), 'Hello');
    await run();
    await waitFor(() => expect(screen.getAllByTestId('pane-kernels').map((s) => s.textContent)).toEqual(Array(2).fill('kernels: gpu plan (cache, 3 tuned matmul shapes, subgroup reductions)')));
  });

  it('says replies are slow while a job trains on the same GPU, naming the job, and nothing when none trains', async () => {
    const training: JobRecord = { ...jobOn(400_000, null), id: 'ftjob-2', status: 'running', adapterKey: null, suffix: null, trainingFile: { id: 'file-2', name: 'pirate-style.train.jsonl', bytes: 10 } };
    await open(jobOn(400_000, SYSTEM), [training]);
    const note = screen.getByTestId('training-busy');
    expect(note.textContent).toBe('Job pirate-style is training on this GPU, so replies come slower until it finishes or you pause it.');
    expect(note.querySelector('a')!.getAttribute('href')).toBe('#/jobs/ftjob-2');
    cleanup();
    await open(jobOn(400_000, SYSTEM));
    expect(screen.queryByTestId('training-busy')).toBeNull();
  });

  it('names every finish reason', () => {
    expect(['eos', 'length', 'context', 'stop', 'aborted'].map((f) => finishLabel(f as GenerateOutput['finish']))).toEqual(['finished', 'max tokens', 'context full', 'stop', 'aborted']);
  });
});
