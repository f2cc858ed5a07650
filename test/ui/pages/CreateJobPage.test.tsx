// @vitest-environment happy-dom
// The create-job page's form-level checks with a fake engine client (the real EngineStore over an
// object that answers the calls the page makes): Create stays disabled, with every reason listed,
// until the job would start, and then creates it with the form's request.
import { cleanup, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { validateJsonl } from '../../../src/data/datasetReport';
import type { ChatExample } from '../../../src/data/datasetTypes';
import { createJobRecord, type JobRecord, type ModelSource } from '../../../src/jobs/job';
import { checkJobMemory, memoryLimits } from '../../../src/jobs/jobMemory';
import type { CreateJobInput } from '../../../src/jobs/queue';
import { parseModelConfig } from '../../../src/model/config';
import { resolveHyperparameters, type HyperparameterRequest, type Hyperparameters } from '../../../src/train/hyperparameters';
import type { StepMetrics } from '../../../src/train/metrics';
import { rememberModel } from '../../../src/ui/modelRegistry';
import type { EngineStore } from '../../../src/ui/engine';
import { CreateJobPage, LONG_JOB_SECONDS } from '../../../src/ui/pages/CreateJobPage';
import { embeddedModelSource } from '../../../src/ui/embeddedModel';
import { formatBytes } from '../../../src/ui/format';
import type { TrainingClient } from '../../../src/worker/client';
import type { ModelInfo } from '../../../src/worker/trainingProtocol';

// The page reaches the engine through these hooks; they read a store made per test.
const engine = vi.hoisted(() => ({ store: null as EngineStore | null }));
vi.mock('../../../src/ui/engine', async (importOriginal) => (await import('../engineMock')).engineModuleOver(importOriginal, engine));
vi.mock('uplot', () => import('../fakeUplot'));

const SUMMARY = { architecture: 'LlamaForCausalLM', modelType: 'llama', family: 'llama', parameters: 400_000, layers: 2, hidden: 48, heads: 4, kvHeads: 2, vocabSize: 320, maxPositions: 256, torchDtype: 'float32' } as const;

// The worker's memory check, on a Llama of SUMMARY's shape with an 8 MiB budget: the auto rank
// fits, rank 1024 does not.
const LLAMA = parseModelConfig({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 320,
  hidden_size: 48,
  intermediate_size: 88,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: false,
});
const LIMITS = { ...memoryLimits({ maxBufferSize: 256 * 1024 * 1024, maxStorageBufferBindingSize: 128 * 1024 * 1024 }, null), budgetBytes: 8 * 1024 * 1024 };
const memoryOf = (h: Hyperparameters) => checkJobMemory(LLAMA, { batch: h.batchSize, seq: h.maxSeqLen, rank: h.lora.r, dtype: 'f32', targetModules: h.lora.targetModules }, LIMITS);

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
    listJobs: () => Promise.resolve(priorJobs),
    getJob: (id: string) => Promise.resolve({ job: priorJobs.find((j) => j.id === id)!, events: [], metrics: priorMetrics }),
    listFiles: () => Promise.resolve([]),
    inspectModel: (source: ModelSource): Promise<ModelInfo> =>
      embeddedFailure && source.kind === 'embedded' ? Promise.reject(new Error(embeddedFailure)) : Promise.resolve({ source, summary: { ...SUMMARY }, hasChatTemplate: true }),
    // As the worker does: with a model, examples are measured against its context by default.
    validateFile: async (file: Blob, options: { maxSeqLen?: number; tooFewIsError?: boolean }, onProgress?: (bytesRead: number, totalBytes: number) => void) => {
      if (validationGate) {
        onProgress?.(Math.ceil(file.size * 0.42), file.size);
        await validationGate.promise;
      }
      return validateJsonl(await file.text(), { countTokens, maxSeqLen: options.maxSeqLen ?? 256, tooFewIsError: options.tooFewIsError });
    },
    previewHyperparameters: (p: { examples: number; requested: HyperparameterRequest; longestExample?: number }) => {
      calls.preview.push(p.requested);
      // A rule only the worker knows: the page must show its refusal as a reason.
      if (p.requested.batchSize === 64) return Promise.reject(Object.assign(new Error('batchSize: 64 is more than this GPU can hold at 256 tokens'), { field: 'batchSize' }));
      const h = resolveHyperparameters(p.requested, p.examples, { model: { family: 'llama', maxPositions: 256 }, longestExample: p.longestExample, random: () => 0.25 });
      return Promise.resolve({ ...h, memory: memoryOf(h) });
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
/** Jobs already on this device, with the metrics the page measures its speed from. */
let priorJobs: JobRecord[] = [];
let priorMetrics: StepMetrics[] = [];
/** When set, the worker fails to read the embedded model with this message. */
let embeddedFailure: string | null = null;
/** When set, validation reports 42% read and waits for this before answering. */
let validationGate: { promise: Promise<void>; resolve: () => void } | null = null;

beforeEach(async () => {
  calls = { preview: [], upload: [], create: [] };
  embeddedFailure = null;
  validationGate = null;
  priorJobs = [];
  priorMetrics = [];
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
    await waitFor(() => expect(screen.getByTestId('model-summary').textContent).toContain('whittle-bilingual-small'));
    // The model tabs open on the chosen model's tab, not on "Local folder".
    expect((screen.getByRole('radio', { name: /Embedded model/ }) as HTMLInputElement).checked).toBe(true);
    expect(reasons()).toEqual(['Add a training file.']);
    expect(createButton().disabled).toBe(true);
  });

  it('says why when the embedded model cannot be read, instead of waiting for it forever', async () => {
    embeddedFailure = 'models/whittle-bilingual-small/tokenizer.json: HTTP 404 Not Found';
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('embedded-error').textContent).toBe(`The embedded model could not be read: ${embeddedFailure}`));
    expect(screen.queryByTestId('model-summary')).toBeNull();
    expect(screen.getByText('unavailable')).toBeTruthy();
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

  it('shows how much of the file has been validated while it runs', async () => {
    let open = () => {};
    validationGate = { promise: new Promise<void>((resolve) => (open = resolve)), resolve: () => open() };
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary')).toBeTruthy());
    await pick(user, 'training-file', 'train.jsonl', GOOD);
    const bar = await screen.findByRole('progressbar', { name: 'Validation progress' });
    expect(bar.getAttribute('aria-valuenow')).toBe('42');
    expect(bar.textContent).toBe(' 42%');
    validationGate.resolve();
    await waitFor(() => expect(screen.getByTestId('training-file-report').getAttribute('data-ok')).toBe('true'));
    expect(screen.queryByRole('progressbar', { name: 'Validation progress' })).toBeNull();
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

  it('warns about examples past the context, and blocks Create when over a quarter train nothing until overridden', async () => {
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary')).toBeTruthy());
    // 4 of 12 examples have a 300-token question: at 256 tokens their whole reply is cut.
    const long = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? chat('q'.repeat(300), `answer ${i}`) : chat(`question ${i}`, `answer ${i}`))).join('\n');
    await pick(user, 'training-file', 'long.jsonl', long);
    const blocked = '4 of 12 training examples lose every trained token at 256 tokens: shorten them, raise the maximum sequence length, or tick “Train anyway”.';
    await waitFor(() => expect(reasons()).toEqual([blocked]));
    expect(createButton().disabled).toBe(true);
    expect(screen.getByTestId('training-file-report').textContent).toMatch(/4 examples lose every trained token to truncation/);
    await user.click(screen.getByTestId('allow-untrained'));
    await waitFor(() => expect(createButton().disabled).toBe(false));

    // One long example in twelve is a warning only.
    const one = Array.from({ length: 12 }, (_, i) => (i === 0 ? chat('q'.repeat(300), 'a') : chat(`question ${i}`, `answer ${i}`))).join('\n');
    await pick(user, 'training-file', 'one.jsonl', one);
    await waitFor(() => expect(screen.getByTestId('training-file-report').textContent).toMatch(/1 example loses every trained token/));
    expect(screen.queryByTestId('allow-untrained')).toBeNull();
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
    expect(calls.create[0]!.checkpointEvery).toBeUndefined();
    expect(calls.create[0]!.model).toMatchObject({ kind: 'embedded', name: 'whittle-bilingual-small' });
    await waitFor(() => expect(location.hash).toBe('#/jobs/ftjob-test'));
    expect(engine.store!.snapshot.jobs!.map((j) => j.id)).toEqual(['ftjob-test']);
  });

  it('fewer than 10 training examples block Create until the user allows them, and the job carries that', async () => {
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary')).toBeTruthy());
    await pick(user, 'training-file', 'small.jsonl', GOOD.split('\n').slice(0, 5).join('\n'));
    await waitFor(() => expect(reasons()).toEqual(['The training file has only 5 examples: at least 10 are needed (or tick “Allow fewer than 10 training examples”).']));
    expect(createButton().disabled).toBe(true);
    await user.click(screen.getByTestId('allow-small'));
    await waitFor(() => expect(createButton().disabled).toBe(false));
    expect(reasons()).toEqual([]);
    await user.click(createButton());
    await waitFor(() => expect(calls.create).toHaveLength(1));
    expect(calls.create[0]).toMatchObject({ allowSmall: true });
  });

  it('shows the memory the job needs against the budget, and an over-budget job is a reason', async () => {
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary')).toBeTruthy());
    expect(screen.getByTestId('memory-estimate').getAttribute('data-state')).toBe('none');
    await pick(user, 'training-file', 'good.jsonl', GOOD);
    await waitFor(() => expect(screen.getByTestId('memory-estimate').getAttribute('data-state')).toBe('ok'));
    const longest = (await validateJsonl(GOOD, { countTokens })).stats!.max;
    const fits = memoryOf(resolveHyperparameters({}, 12, { model: { family: 'llama', maxPositions: 256 }, longestExample: longest }));
    expect(fits.problems).toEqual([]);
    expect(screen.getByTestId('memory-total').textContent).toBe(`≈ ${formatBytes(fits.estimate.totalBytes)} of ~8 MiB`);
    expect(createButton().disabled).toBe(false);

    await user.type(screen.getByTestId('hp-loraR'), '1024');
    await waitFor(() => expect(screen.getByTestId('memory-estimate').getAttribute('data-state')).toBe('over'));
    const over = memoryOf(resolveHyperparameters({ loraR: 1024 }, 12, { model: { family: 'llama', maxPositions: 256 }, longestExample: longest }));
    expect(over.problems.map((p) => p.kind)).toEqual(['total']);
    expect(over.problems[0]!.message).toMatch(/^The job needs about \d+ MiB of GPU memory, more than the 8\.0 MiB budget \(an estimate: the browser does not say how much memory this machine has\): lower the batch size, max sequence length or rank\.$/);
    expect(reasons()).toEqual([over.problems[0]!.message]);
    expect(createButton().disabled).toBe(true);
  });

  it('custom target modules go back to auto when the model family changes', async () => {
    rememberModel({ source: { kind: 'hub', name: 'tiny/gpt2', revision: 'main', files: [] }, summary: { ...SUMMARY, architecture: 'GPT2LMHeadModel', modelType: 'gpt2', family: 'gpt2' }, hasChatTemplate: true });
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary').textContent).toContain('whittle-bilingual-small'));
    const lora = screen.getByTestId('advanced-lora');
    const ticked = () => within(lora).getAllByRole('checkbox').map((c) => [c.parentElement!.textContent, (c as HTMLInputElement).checked]);
    await user.click(within(lora).getByLabelText('q_proj'));
    expect(ticked().filter(([, on]) => !on)).toEqual([['q_proj', false]]);
    expect(within(lora).queryByText('auto · all linear layers')).toBeNull();

    await user.click(screen.getByRole('radio', { name: /Used before/ }));
    await user.click(screen.getByRole('button', { name: /tiny\/gpt2/ }));
    await waitFor(() => expect(screen.getByTestId('model-summary').textContent).toContain('tiny/gpt2'));
    expect(ticked()).toEqual([
      ['c_attn', true],
      ['c_proj', true],
      ['c_fc', true],
    ]);
    expect(within(lora).getByText('auto · all linear layers')).toBeTruthy();
    expect(reasons()).toEqual(['Add a training file.']);
  });

  /** A finished job on the same model measured this speed here: the page estimates the time from it. */
  async function measuredSpeed(tokensPerSecond: number) {
    priorJobs = [{ ...createJobRecord({ id: 'ftjob-prior', baseModel: { source: embeddedModelSource(), summary: { ...SUMMARY } }, trainingFile: { id: 'file-0', name: 'old.jsonl', bytes: 1 } }), status: 'succeeded', step: 1 }];
    priorMetrics = [{ step: 1, epoch: 1, trainLoss: 2, trainAccuracy: 0.5, trainTokens: 10, learningRate: 1e-3, gradNorm: 1, tokensPerSecond, elapsedMs: 1000, etaMs: null, gpuBytes: 0 }];
    const { EngineStore } = await vi.importActual<typeof import('../../../src/ui/engine')>('../../../src/ui/engine');
    engine.store = new EngineStore(fakeClient(calls));
    await engine.store.start();
  }
  const timeCell = () => screen.getByText('Time', { selector: 'dt' }).nextElementSibling!.textContent!;

  it('a job estimated at hours on this device waits for a yes before Create', async () => {
    await measuredSpeed(0.01);
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary')).toBeTruthy());
    await pick(user, 'training-file', 'good.jsonl', GOOD);
    await waitFor(() => expect(timeCell()).toMatch(/^≈ /));
    const hours = timeCell().replace(/^≈ /, '');
    expect(hours).toMatch(/^\d+ h \d\d min$/);
    expect(Number(hours.split(' ')[0]) * 3600).toBeGreaterThanOrEqual(LONG_JOB_SECONDS);
    expect(reasons()).toEqual([`This job is estimated at ${hours} on this device: confirm below to create it anyway.`]);
    expect(createButton().disabled).toBe(true);
    const yes = screen.getByTestId('allow-long');
    expect(yes.parentElement!.textContent).toBe(`This job is estimated at ${hours} on this device; create it anyway?`);
    await user.click(yes);
    await waitFor(() => expect(createButton().disabled).toBe(false));
    await user.click(createButton());
    await waitFor(() => expect(calls.create).toHaveLength(1));
  });

  it('a job estimated at minutes needs no confirmation', async () => {
    await measuredSpeed(1000);
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary')).toBeTruthy());
    await pick(user, 'training-file', 'good.jsonl', GOOD);
    await waitFor(() => expect(timeCell()).toMatch(/^≈ \d+ s$/));
    await waitFor(() => expect(createButton().disabled).toBe(false));
    expect(screen.queryByTestId('allow-long')).toBeNull();
  });

  it('checkpoint every N steps: a bad value is a reason, a good one goes with the job, empty means each epoch', async () => {
    const user = userEvent.setup({ delay: null });
    render(<CreateJobPage from={null} />);
    await waitFor(() => expect(screen.getByTestId('model-summary')).toBeTruthy());
    await pick(user, 'training-file', 'good.jsonl', GOOD);
    await waitFor(() => expect(createButton().disabled).toBe(false));
    const every = screen.getByTestId('checkpoint-every') as HTMLInputElement;
    expect(every.placeholder).toBe('each epoch');
    await user.type(every, '2.5');
    await waitFor(() => expect(reasons()).toEqual(['Checkpoint every must be a whole number of steps, 1 or more (or empty: each epoch).']));
    expect(createButton().disabled).toBe(true);
    await user.clear(every);
    await user.type(every, '25');
    await waitFor(() => expect(createButton().disabled).toBe(false));
    await user.click(createButton());
    await waitFor(() => expect(calls.create).toHaveLength(1));
    expect(calls.create[0]).toMatchObject({ checkpointEvery: 25 });
  });
});
