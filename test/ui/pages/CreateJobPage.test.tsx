// @vitest-environment happy-dom
// The create-job page's form-level checks with a fake engine client (the real EngineStore over an
// object that answers the calls the page makes): Create stays disabled, with every reason listed,
// until the job would start, and then creates it with the form's request.
import { cleanup, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { validateJsonl } from '../../../src/data/datasetReport';
import type { ChatExample } from '../../../src/data/formats';
import { createJobRecord, type JobRecord, type ModelSource } from '../../../src/jobs/job';
import type { CreateJobInput } from '../../../src/jobs/runner';
import { resolveHyperparameters, type HyperparameterRequest } from '../../../src/train/hyperparameters';
import type { EngineStore } from '../../../src/ui/engine';
import { CreateJobPage } from '../../../src/ui/pages/CreateJobPage';
import type { TrainingClient } from '../../../src/worker/client';
import type { ModelInfo } from '../../../src/worker/trainingProtocol';

// The page reaches the engine through these hooks; they read a store made per test.
const engine = vi.hoisted(() => ({ store: null as EngineStore | null }));
vi.mock('../../../src/ui/engine', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/ui/engine')>();
  const { useSyncExternalStore } = await import('react');
  const useEngineStore = () => engine.store!;
  return {
    ...real,
    useEngineStore,
    useClient: () => useEngineStore().client,
    useEngine: () => {
      const s = useEngineStore();
      return useSyncExternalStore(s.subscribe, s.getSnapshot, s.getSnapshot);
    },
  };
});
vi.mock('uplot', () => import('../fakeUplot'));

const SUMMARY = { architecture: 'LlamaForCausalLM', modelType: 'llama', family: 'llama', parameters: 400_000, layers: 2, hidden: 48, heads: 4, kvHeads: 2, vocabSize: 320, maxPositions: 256, torchDtype: 'float32' } as const;

/** One token per character, as a stand-in tokenizer. */
const countTokens = (e: ChatExample) => ({
  tokens: e.messages.reduce((n, m) => n + m.content.length, 0),
  trainedTokens: e.messages.filter((m) => m.role === 'assistant').reduce((n, m) => n + m.content.length, 0),
});

interface Calls {
  preview: HyperparameterRequest[];
  upload: string[];
  create: CreateJobInput[];
}

function fakeClient(calls: Calls): TrainingClient {
  const client = {
    init: () => Promise.resolve({ gpu: null, gpuError: null, storage: 'memory', recovered: [], runsJobs: true }),
    listJobs: () => Promise.resolve([] as JobRecord[]),
    listFiles: () => Promise.resolve([]),
    inspectModel: (source: ModelSource): Promise<ModelInfo> => Promise.resolve({ source, summary: { ...SUMMARY }, hasChatTemplate: true }),
    validateFile: async (file: Blob, options: { maxSeqLen?: number }) => validateJsonl(await file.text(), { countTokens, maxSeqLen: options.maxSeqLen }),
    previewHyperparameters: (p: { examples: number; requested: HyperparameterRequest; longestExample?: number }) => {
      calls.preview.push(p.requested);
      // A rule only the worker knows: the page must show its refusal as a reason.
      if (p.requested.batchSize === 64) return Promise.reject(Object.assign(new Error('batchSize: 64 is more than this GPU can hold at 256 tokens'), { field: 'batchSize' }));
      return Promise.resolve(resolveHyperparameters(p.requested, p.examples, { model: { family: 'llama', maxPositions: 256 }, longestExample: p.longestExample, random: () => 0.25 }));
    },
    uploadFile: async (name: string, file: Blob) => {
      calls.upload.push(name);
      const report = await validateJsonl(await file.text());
      return { file: { id: `file-${calls.upload.length}`, name, bytes: file.size, createdAt: 0, purpose: 'fine-tune', format: report.format, examples: report.examples }, report };
    },
    createJob: (input: CreateJobInput) => {
      calls.create.push(input);
      return Promise.resolve(
        createJobRecord({ id: 'ftjob-test', baseModel: { source: input.model, summary: { ...SUMMARY } }, trainingFile: { id: input.trainingFileId, name: 'train.jsonl', bytes: 1 }, hyperparameters: input.hyperparameters, suffix: input.suffix ?? null, dtype: input.dtype }),
      );
    },
  };
  // Calls this test does not fake (other helpers may add some) fail loudly but harmlessly.
  return new Proxy(client, {
    get: (target, key) => (key in target ? target[key as keyof typeof target] : () => Promise.reject(new Error(`fake client: ${String(key)} is not faked`))),
  }) as unknown as TrainingClient;
}

const chat = (user: string, assistant: string) => JSON.stringify({ messages: [{ role: 'user', content: user }, { role: 'assistant', content: assistant }] });
const GOOD = Array.from({ length: 12 }, (_, i) => chat(`question ${i}`, `answer number ${i}`)).join('\n');
const BAD = [chat('a', 'b'), '{"messages": oops'].join('\n');

let calls: Calls;

beforeEach(async () => {
  calls = { preview: [], upload: [], create: [] };
  localStorage.clear();
  location.hash = '#/jobs/new';
  const { EngineStore } = await vi.importActual<typeof import('../../../src/ui/engine')>('../../../src/ui/engine');
  engine.store = new EngineStore(fakeClient(calls));
  await engine.store.start();
});
afterEach(cleanup);

const reasons = () => {
  const list = screen.queryByTestId('create-reasons');
  return list ? within(list).getAllByRole('listitem').map((li) => li.textContent) : [];
};
const createButton = () => screen.getByTestId('create-submit') as HTMLButtonElement;
const pick = (user: ReturnType<typeof userEvent.setup>, testId: string, name: string, text: string) => user.upload(screen.getByTestId(`${testId}-input`), new File([text], name, { type: 'application/jsonl' }));

describe('CreateJobPage', () => {
  it('starts on the embedded model and asks for a training file', async () => {
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary').textContent).toContain('whittle-wordnet-tiny'));
    expect(reasons()).toEqual(['Add a training file.']);
    expect(createButton().disabled).toBe(true);
  });

  it('a file with errors keeps Create disabled and shows its report', async () => {
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary')).toBeTruthy());
    await pick(user, 'training-file', 'bad.jsonl', BAD);
    await waitFor(() => expect(reasons()).toEqual(['The training file has errors: see its report.']));
    expect(createButton().disabled).toBe(true);
    const report = screen.getByTestId('training-file-report');
    expect(report.getAttribute('data-ok')).toBe('false');
    expect(within(report).getByTestId('validation-errors').querySelector('tr[data-line="2"]')).not.toBeNull();
    expect(calls.preview).toHaveLength(0);
  });

  it('invalid hyperparameters and suffix are listed before Create, and fixing them enables it', async () => {
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary')).toBeTruthy());
    await pick(user, 'training-file', 'good.jsonl', GOOD);
    await waitFor(() => expect(createButton().disabled).toBe(false));
    expect(reasons()).toEqual([]);
    // The summary shows what the auto rules chose for 12 examples.
    const auto = resolveHyperparameters({}, 12, { model: { family: 'llama', maxPositions: 256 } });
    expect(screen.getByText('Epochs', { selector: 'dt' }).nextElementSibling!.textContent).toBe(String(auto.epochs));
    expect(screen.getByTestId('hp-epochs').getAttribute('placeholder')).toBe(`auto · ${auto.epochs}`);

    await user.type(screen.getByTestId('hp-epochs'), '0');
    await user.type(screen.getByTestId('hp-loraR'), 'x');
    await user.click(screen.getByTestId('suffix'));
    await user.paste('no spaces!');
    await waitFor(() =>
      expect(reasons()).toEqual(['Epochs must be a whole number from 1 to 1000.', 'Rank r must be a whole number from 1 to 1024.', 'The suffix may have up to 64 letters, digits, - and _.']),
    );
    expect(createButton().disabled).toBe(true);
    // Invalid values are never sent to the worker for a preview.
    expect(calls.preview.some((r) => r.epochs === 0)).toBe(false);

    await user.clear(screen.getByTestId('hp-epochs'));
    await user.type(screen.getByTestId('hp-epochs'), '2');
    await user.clear(screen.getByTestId('hp-loraR'));
    await user.clear(screen.getByTestId('suffix'));
    await user.paste('run_1');
    await waitFor(() => expect(createButton().disabled).toBe(false));
    expect(screen.getByText('Epochs', { selector: 'dt' }).nextElementSibling!.textContent).toBe('2');
  });

  it('a value the worker refuses becomes a reason too', async () => {
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary')).toBeTruthy());
    await pick(user, 'training-file', 'good.jsonl', GOOD);
    await user.type(screen.getByTestId('hp-batchSize'), '64');
    await waitFor(() => expect(reasons()).toEqual(['batchSize: 64 is more than this GPU can hold at 256 tokens']));
    expect(createButton().disabled).toBe(true);
  });

  it('a validation file with errors blocks Create as well', async () => {
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary')).toBeTruthy());
    await pick(user, 'training-file', 'good.jsonl', GOOD);
    await pick(user, 'validation-file', 'valid.jsonl', BAD);
    await waitFor(() => expect(reasons()).toEqual(['The validation file has errors: see its report.']));
    expect(createButton().disabled).toBe(true);
  });

  it('Create uploads the file and creates the job with the form’s request, then opens it', async () => {
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary')).toBeTruthy());
    await pick(user, 'training-file', 'good.jsonl', GOOD);
    await user.type(screen.getByTestId('hp-epochs'), '2');
    await user.click(screen.getByTestId('suffix'));
    await user.paste('mine');
    await waitFor(() => expect(createButton().disabled).toBe(false));
    await user.click(createButton());
    await waitFor(() => expect(calls.create).toHaveLength(1));
    expect(calls.upload).toEqual(['good.jsonl']);
    expect(calls.create[0]).toMatchObject({ trainingFileId: 'file-1', validationFileId: null, hyperparameters: { epochs: 2 }, suffix: 'mine', dtype: 'auto' });
    expect(calls.create[0]!.model).toMatchObject({ kind: 'embedded', name: 'whittle-wordnet-tiny' });
    await waitFor(() => expect(location.hash).toBe('#/jobs/ftjob-test'));
    expect(engine.store!.snapshot.jobs!.map((j) => j.id)).toEqual(['ftjob-test']);
  });
});
