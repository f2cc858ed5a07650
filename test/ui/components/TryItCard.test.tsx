// @vitest-environment happy-dom
// The first screen's "Try it" card over the shipped samples and a fake engine: it says what a tiny
// model learns, counts steps with the model's recommended settings, and creates the job with the
// card's request (the same request `whittle try` sends).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { createJobRecord, type ModelSource } from '../../../src/jobs/job';
import type { CreateJobInput } from '../../../src/jobs/queue';
import { parseSampleIndex, tryItHyperparameters } from '../../../src/jobs/samples';
import { TryItCard } from '../../../src/ui/components/TryItCard';
import type { EngineStore } from '../../../src/ui/engine';
import type { TrainingClient } from '../../../src/worker/client';

const engine = vi.hoisted(() => ({ store: null as EngineStore | null }));
vi.mock('../../../src/ui/engine', async (importOriginal) => (await import('../engineMock')).engineModuleOver(importOriginal, engine));

const SAMPLES = join(__dirname, '../../../public/samples');
const SUMMARY = { architecture: 'LlamaForCausalLM', modelType: 'llama', family: 'llama', parameters: 403_296, layers: 2, hidden: 96, heads: 4, kvHeads: 2, vocabSize: 2048, maxPositions: 128, torchDtype: 'float16' } as const;
const FINETUNE = { learningRate: 0.01, loraR: 8, loraAlpha: 16, batchSize: 8 };

let created: CreateJobInput[];

beforeEach(async () => {
  created = [];
  // Same-origin sample files, as the page fetches them.
  vi.stubGlobal('fetch', (input: RequestInfo | URL, init?: RequestInit) => {
    const name = new URL(String(input)).pathname.split('/samples/')[1]!;
    const body = readFileSync(join(SAMPLES, name));
    return Promise.resolve(new Response(init?.method === 'HEAD' ? null : body, { headers: { 'content-length': String(body.length) } }));
  });
  const client = new Proxy(
    {
      init: () => Promise.resolve({ gpu: null, gpuError: null, storage: 'memory', recovered: [], runsJobs: true }),
      listJobs: () => Promise.resolve([]),
      listFiles: () => Promise.resolve([]),
      inspectModel: (source: ModelSource) => Promise.resolve({ source, summary: { ...SUMMARY }, hasChatTemplate: true, finetune: FINETUNE }),
      uploadFile: (name: string) => Promise.resolve({ file: { id: `file-${name}`, name, bytes: 1, createdAt: 0, purpose: 'fine-tune', format: 'chat', examples: 1 }, report: null }),
      createJob: (input: CreateJobInput) => {
        created.push(input);
        return Promise.resolve(createJobRecord({ id: 'ftjob-try', baseModel: { source: input.model, summary: { ...SUMMARY } }, trainingFile: { id: input.trainingFileId, name: 't', bytes: 1 }, hyperparameters: input.hyperparameters, suffix: input.suffix ?? null, dtype: input.dtype }));
      },
    },
    { get: (t, k) => (k in t ? t[k as keyof typeof t] : () => Promise.reject(new Error(`fake client: ${String(k)} is not faked`))) },
  ) as unknown as TrainingClient;
  const { EngineStore } = await vi.importActual<typeof import('../../../src/ui/engine')>('../../../src/ui/engine');
  engine.store = new EngineStore(client);
  await engine.store.start();
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe('TryItCard', () => {
  it('says what to expect, counts steps with the model’s recommended batch, and creates the card’s job', async () => {
    render(<TryItCard />);
    expect(screen.getByTestId('try-it-expect').textContent).toMatch(/What to expect: a model this small learns style and format first/);
    await waitFor(() => expect(screen.getByText(/403k-parameter English and Chinese model/)).toBeTruthy());
    const pirate = screen.getAllByTestId('try-it-sample').find((s) => s.getAttribute('data-sample-id') === 'pirate-style')!;
    const user = userEvent.setup({ delay: null });
    await user.click(within(pirate).getByRole('radio'));
    // 112 examples in batches of 8 (the model's whittle_finetune.json): 14 steps an epoch.
    const lengths = screen.getByRole('group', { name: 'Length' });
    await waitFor(() => expect(lengths.textContent).toMatch(/Full: 3 epochs42 steps/));
    expect(lengths.textContent).toMatch(/Quick check: 32 examples4 steps/);

    await user.click(screen.getByTestId('try-it-start'));
    await waitFor(() => expect(created).toHaveLength(1));
    const sample = parseSampleIndex(JSON.parse(readFileSync(join(SAMPLES, 'index.json'), 'utf8'))).find((s) => s.id === 'pirate-style')!;
    expect(created[0]!.hyperparameters).toEqual(tryItHyperparameters(sample, 'suggested'));
  });
});
