// @vitest-environment happy-dom
// The Hugging Face tab of the model picker with a fake engine client: the curated list with
// sizes, licence and memory fit before any download, Qwen3 marked unsupported, a one-click
// download with per-file and total progress, and a gated repo asking for a token.
import { act, cleanup, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { curatedModelFacts, CURATED_MODELS } from '../../../src/jobs/curatedModels';
import { checkJobMemory, memoryLimits } from '../../../src/jobs/jobMemory';
import { HubModels } from '../../../src/ui/components/HubModels';
import { formatBytes } from '../../../src/ui/format';
import type { TrainingClient } from '../../../src/worker/client';
import type { CuratedModelView, DownloadProgress, HubRepoView, ModelInfo, ModelSource } from '../../../src/worker/trainingProtocol';

const client = vi.hoisted(() => ({ current: null as unknown }));
vi.mock('../../../src/ui/engine', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/ui/engine')>();
  return { ...real, useClient: () => client.current as TrainingClient };
});

const LIMITS = memoryLimits(null, null);
function views(): CuratedModelView[] {
  return CURATED_MODELS.map((m) => {
    const f = curatedModelFacts(m);
    const rest: Partial<typeof m> = { ...m };
    delete rest.config;
    const memory = f.config ? checkJobMemory(f.config, { batch: 1, seq: 1024, rank: 8, dtype: 'f32', targetModules: ['q_proj', 'v_proj'] }, LIMITS) : null;
    return { ...(rest as Omit<typeof m, 'config'>), parameters: f.parameters, downloadBytes: f.downloadBytes, unsupported: f.unsupported, memory };
  });
}

const FILES = [
  { name: 'config.json', bytes: 800 },
  { name: 'tokenizer.json', bytes: 2_000_000 },
  { name: 'model.safetensors', bytes: 269_000_000 },
];

function fake(onProgress: { emit: ((p: DownloadProgress) => void) | null; finish: (() => void) | null }) {
  const calls: { resolve: [string, unknown][]; inspect: ModelSource[] } = { resolve: [], inspect: [] };
  client.current = {
    curatedModels: () => Promise.resolve(views()),
    resolveHubRepo: (repo: string, options: { accessToken?: string | null }) => {
      calls.resolve.push([repo, options]);
      if (repo.startsWith('meta-llama/') && !options.accessToken) return Promise.reject(new Error(`${repo} is gated or private (HTTP 401): accept its licence on huggingface.co/${repo}, then give a Hugging Face access token.`));
      const view: HubRepoView = { listing: { repo, revision: 'main', commit: 'abcdef1234567', files: FILES, bytes: FILES.reduce((n, f) => n + f.bytes, 0), shards: 0 }, parameters: 1, unsupported: null, memory: views()[0]!.memory };
      return Promise.resolve(view);
    },
    inspectModel: (source: ModelSource, progress: (p: DownloadProgress) => void) => {
      calls.inspect.push(source);
      onProgress.emit = progress;
      return new Promise<ModelInfo>((resolve) => {
        onProgress.finish = () => resolve({ source, summary: {} as ModelInfo['summary'], hasChatTemplate: true });
      });
    },
  };
  return calls;
}

afterEach(cleanup);

describe('HubModels', () => {
  it('lists the curated models with size, licence, languages and memory fit; Qwen3 cannot be downloaded', async () => {
    fake({ emit: null, finish: null });
    render(<HubModels onChoose={() => {}} />);
    await waitFor(() => expect(screen.getAllByTestId('curated-model')).toHaveLength(6));
    const qwen = screen.getAllByTestId('curated-model').find((el) => el.dataset.repo === 'Qwen/Qwen2.5-0.5B-Instruct')!;
    expect(qwen.textContent).toContain('494M');
    expect(qwen.textContent).toContain(formatBytes(curatedModelFacts(CURATED_MODELS[2]!).downloadBytes));
    expect(qwen.textContent).toContain('Apache-2.0');
    expect(qwen.textContent).toMatch(/Chinese, English/);
    // 494M parameters in f32 (no GPU, so no f16) are over the default 2 GiB budget; SmolLM2-135M fits.
    expect(within(qwen).getByText(/^Over: \d/).dataset.fit).toBe('over');
    const smol = screen.getAllByTestId('curated-model').find((el) => el.dataset.repo === 'HuggingFaceTB/SmolLM2-135M-Instruct')!;
    expect(within(smol).getByText(/^Fits: [\d.]+ (MiB|GiB) of 2 GiB$/).dataset.fit).toBe('ok');
    const qwen3 = screen.getAllByTestId('curated-model').find((el) => el.dataset.repo === 'Qwen/Qwen3-0.6B')!;
    expect(qwen3.textContent).toContain('Not supported yet: needs per-head q/k norms');
    expect((within(qwen3).getByRole('button', { name: 'Download' }) as HTMLButtonElement).disabled).toBe(true);
    const llama = screen.getAllByTestId('curated-model').find((el) => el.dataset.repo === 'meta-llama/Llama-3.2-1B-Instruct')!;
    expect(llama.textContent).toContain('gated: needs a token');
    // f32 TinyLlama is over the default 2 GiB budget.
    const tiny = screen.getAllByTestId('curated-model').find((el) => el.dataset.repo === 'TinyLlama/TinyLlama-1.1B-Chat-v1.0')!;
    expect(within(tiny).getByText(/^Over: /)).toBeTruthy();
  });

  it('downloads a curated model in one click with per-file and total progress, then chooses it', async () => {
    const hooks = { emit: null as ((p: DownloadProgress) => void) | null, finish: null as (() => void) | null };
    const calls = fake(hooks);
    const chosen: ModelInfo[] = [];
    const user = userEvent.setup({ delay: null });
    render(<HubModels onChoose={(i) => chosen.push(i)} />);
    await waitFor(() => expect(screen.getAllByTestId('curated-model')).toHaveLength(6));
    const smol = screen.getAllByTestId('curated-model').find((el) => el.dataset.repo === 'HuggingFaceTB/SmolLM2-135M-Instruct')!;
    await user.click(within(smol).getByRole('button', { name: 'Download' }));
    await waitFor(() => expect(calls.inspect).toHaveLength(1));
    expect(calls.inspect[0]).toEqual({ kind: 'hub', name: 'HuggingFaceTB/SmolLM2-135M-Instruct', revision: 'main', files: ['config.json', 'tokenizer.json', 'model.safetensors'] });
    act(() => hooks.emit!({ file: 'model.safetensors', loaded: 100_000_000, total: 269_000_000, filesDone: 2, files: 3 }));
    const total = screen.getByTestId('download-total').textContent!;
    expect(total).toBe(`${formatBytes(800 + 2_000_000 + 100_000_000)} of ${formatBytes(FILES.reduce((n, f) => n + f.bytes, 0))} · file 3 of 3`);
    const rows = within(screen.getByTestId('download-progress')).getAllByRole('listitem');
    expect(rows.map((r) => r.dataset.state)).toEqual(['done', 'done', 'active']);
    expect(rows[2]!.textContent).toContain(`${formatBytes(100_000_000)} of ${formatBytes(269_000_000)}`);
    await act(async () => hooks.finish!());
    expect(chosen.map((c) => c.source.name)).toEqual(['HuggingFaceTB/SmolLM2-135M-Instruct']);
  });

  it('a gated repo says why it failed; with a token it is looked up, shown with its files and size, then downloaded', async () => {
    const hooks = { emit: null as ((p: DownloadProgress) => void) | null, finish: null as (() => void) | null };
    const calls = fake(hooks);
    const user = userEvent.setup({ delay: null });
    render(<HubModels onChoose={() => {}} />);
    await waitFor(() => expect(screen.getAllByTestId('curated-model')).toHaveLength(6));
    const llama = screen.getAllByTestId('curated-model').find((el) => el.dataset.repo === 'meta-llama/Llama-3.2-1B-Instruct')!;
    await user.click(within(llama).getByRole('button', { name: 'Download' }));
    await waitFor(() => expect(screen.getByRole('alert').textContent).toMatch(/gated or private \(HTTP 401\).*access token/));
    expect(calls.inspect).toHaveLength(0);
    await user.type(screen.getByPlaceholderText('hf_…'), 'hf_secret');
    await user.click(screen.getByRole('button', { name: 'Look up files' }));
    await waitFor(() => expect(screen.getByTestId('hub-listing').textContent).toContain('3 files'));
    expect(calls.resolve.at(-1)).toEqual(['meta-llama/Llama-3.2-1B-Instruct', { revision: 'main', accessToken: 'hf_secret' }]);
    expect(screen.getByTestId('hub-listing').textContent).toContain('(abcdef1)');
    await user.click(within(screen.getByTestId('hub-listing')).getByRole('button', { name: /^Download / }));
    await waitFor(() => expect(calls.inspect).toHaveLength(1));
  });
});
