// The Hugging Face side of the model picker: the curated base models with size, licence,
// languages and whether a default job fits this GPU (before any download), any other repo looked
// up through the Hub API, an access token for gated repos, and the download with per-file and
// total progress.
import { useEffect, useState } from 'react';
import type { CuratedModelView, DownloadProgress, HubRepoFile, HubRepoView, JobMemoryCheck, ModelInfo, ModelSource } from '../../worker/trainingProtocol';
import { errorText, useClient } from '../engine';
import { formatBytes, formatCompact } from '../format';
import { FormError } from './FormError';
import './HubModels.css';

/** A default job's memory in one line: fits or not, against what. */
export function MemoryFit({ memory, unsupported }: { memory: JobMemoryCheck | null; unsupported: string | null }) {
  if (unsupported) {
    return (
      <span className="fit unsupported" data-fit="unsupported" title={unsupported}>
        Not supported yet{/per-head q\/k norms/.test(unsupported) ? ': needs per-head q/k norms' : ''}
      </span>
    );
  }
  if (!memory) return <span className="fit muted">–</span>;
  const over = memory.problems.length > 0;
  const what = `${formatBytes(memory.estimate.totalBytes)} of ${formatBytes(memory.limits.budgetBytes)}`;
  const shape = `default job: batch ${memory.batch} × ${memory.seq} tokens, rank ${memory.rank}, ${memory.dtype} weights`;
  return (
    <span className={`fit ${over ? 'over' : 'ok'}`} data-fit={over ? 'over' : 'ok'} title={[shape, ...memory.problems.map((p) => p.message)].join('\n')}>
      {over ? `Over: ${what}` : `Fits: ${what}`}
    </span>
  );
}

/** Per-file and total progress of a download whose files and sizes are known. */
export function DownloadProgressView({ files, progress }: { files: readonly HubRepoFile[]; progress: DownloadProgress | null }) {
  const total = files.reduce((n, f) => n + f.bytes, 0);
  const doneIndex = progress?.filesDone ?? 0;
  const done = files.slice(0, doneIndex).reduce((n, f) => n + f.bytes, 0) + (progress?.file ? progress.loaded : 0);
  const share = total > 0 ? Math.min(1, done / total) : 0;
  return (
    <div className="download" aria-live="polite" data-testid="download-progress">
      <div className="progress" role="progressbar" aria-label="Download progress" aria-valuemin={0} aria-valuemax={total} aria-valuenow={done}>
        <div className="progress-bar" style={{ width: `${100 * share}%` }} />
      </div>
      <p className="small" data-testid="download-total">
        {formatBytes(done)} of {formatBytes(total)} · file {Math.min(doneIndex + 1, files.length)} of {files.length}
      </p>
      <ul className="download-files small">
        {files.map((f, i) => {
          const state = i < doneIndex ? 'done' : i === doneIndex && progress?.file === f.name ? 'active' : 'waiting';
          return (
            <li key={f.name} data-state={state}>
              <span className="mono">{f.name}</span>
              <span className="muted">
                {state === 'done' ? `${formatBytes(f.bytes)} ✓` : state === 'active' ? `${formatBytes(progress!.loaded)} of ${formatBytes(f.bytes)}${progress!.resumedFrom ? ' (resumed)' : ''}` : formatBytes(f.bytes)}
              </span>
            </li>
          );
        })}
      </ul>
    </div>
  );
}

function CuratedRow({ m, busy, onDownload }: { m: CuratedModelView; busy: boolean; onDownload: () => void }) {
  const langs = m.languages.length > 4 ? [...m.languages.slice(0, 3), `+${m.languages.length - 3}`] : m.languages;
  return (
    <li className="curated" data-testid="curated-model" data-repo={m.repo}>
      <div className="curated-head">
        <strong>{m.name}</strong>
        {m.gated && <span className="tag">gated: needs a token</span>}
      </div>
      <span className="mono small muted">{m.repo}</span>
      <dl className="curated-facts small">
        <div>
          <dt>Parameters</dt>
          <dd>{formatCompact(m.parameters)}</dd>
        </div>
        <div>
          <dt>Download</dt>
          <dd>≈ {formatBytes(m.downloadBytes)}</dd>
        </div>
        <div>
          <dt>Licence</dt>
          <dd>
            <a href={m.licenceUrl} target="_blank" rel="noreferrer">
              {m.licence}
            </a>
          </dd>
        </div>
        <div>
          <dt>Languages</dt>
          <dd title={m.languages.join(', ')}>{langs.join(', ')}</dd>
        </div>
        <div>
          <dt>GPU memory</dt>
          <dd>
            <MemoryFit memory={m.memory} unsupported={m.unsupported} />
          </dd>
        </div>
      </dl>
      <p className="small muted curated-note">{m.note}</p>
      <button type="button" className="button small" disabled={busy || m.unsupported !== null} onClick={onDownload}>
        Download
      </button>
    </li>
  );
}

interface Props {
  onChoose: (info: ModelInfo) => void;
}

type Step = { kind: 'idle' } | { kind: 'looking'; repo: string } | { kind: 'found'; view: HubRepoView } | { kind: 'downloading'; view: HubRepoView; progress: DownloadProgress | null };

export function HubModels({ onChoose }: Props) {
  const client = useClient();
  const [curated, setCurated] = useState<CuratedModelView[] | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [repo, setRepo] = useState('');
  const [revision, setRevision] = useState('main');
  const [token, setToken] = useState('');
  const [step, setStep] = useState<Step>({ kind: 'idle' });
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    client.curatedModels().then(
      (list) => live && setCurated(list),
      (e: unknown) => live && setListError(errorText(e)),
    );
    return () => {
      live = false;
    };
  }, [client]);

  const busy = step.kind === 'looking' || step.kind === 'downloading';
  const lookUp = async (name: string, rev: string): Promise<HubRepoView | null> => {
    setError(null);
    setStep({ kind: 'looking', repo: name });
    try {
      const view = await client.resolveHubRepo(name, { revision: rev, accessToken: token || null });
      setStep({ kind: 'found', view });
      return view;
    } catch (e) {
      setError(errorText(e));
      setStep({ kind: 'idle' });
      return null;
    }
  };
  const download = async (view: HubRepoView) => {
    setError(null);
    setStep({ kind: 'downloading', view, progress: null });
    const source: ModelSource = { kind: 'hub', name: view.listing.repo, revision: view.listing.revision, files: view.listing.files.map((f) => f.name) };
    try {
      const info = await client.inspectModel(source, (progress) => setStep({ kind: 'downloading', view, progress }));
      setStep({ kind: 'idle' });
      onChoose(info);
    } catch (e) {
      setError(errorText(e));
      setStep({ kind: 'found', view });
    }
  };

  const repoOk = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/.test(repo.trim());
  const shown = step.kind === 'found' || step.kind === 'downloading' ? step.view : null;
  return (
    <div className="picker-body hub-models">
      {listError && <p className="form-error">The model list could not be read: {listError}</p>}
      {curated === null && !listError && (
        <p className="muted small">
          <span className="spinner inline" aria-hidden="true" /> Checking which models fit this GPU…
        </p>
      )}
      {curated && (
        <ul className="curated-list" aria-label="Suggested base models">
          {curated.map((m) => (
            <CuratedRow
              key={m.repo}
              m={m}
              busy={busy}
              onDownload={() => {
                setRepo(m.repo);
                setRevision('main');
                void lookUp(m.repo, 'main').then((view) => view && download(view));
              }}
            />
          ))}
        </ul>
      )}
      <p className="muted small">Sizes and memory come from each model&rsquo;s config before anything is downloaded; the download comes from huggingface.co once, then stays in this browser.</p>

      <form
        className="hub-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (repoOk && !busy) void lookUp(repo.trim(), revision.trim() || 'main');
        }}
      >
        <div className="field-row">
          <label className="field grow">
            <span className="label">Other repository</span>
            <input type="text" value={repo} onChange={(e) => setRepo(e.target.value)} placeholder="owner/model-name" spellCheck={false} autoComplete="off" aria-invalid={repo !== '' && !repoOk} />
          </label>
          <label className="field narrow">
            <span className="label">Revision</span>
            <input type="text" value={revision} onChange={(e) => setRevision(e.target.value)} spellCheck={false} />
          </label>
        </div>
        <label className="field">
          <span className="label">Access token (gated or private repos; kept in memory only)</span>
          <input type="password" value={token} onChange={(e) => setToken(e.target.value)} placeholder="hf_…" autoComplete="off" spellCheck={false} />
        </label>
        {repo !== '' && !repoOk && <p className="field-error">A repository id looks like owner/name.</p>}
        <div className="button-row">
          <button type="submit" className="button" disabled={!repoOk || busy}>
            {step.kind === 'looking' ? 'Looking up…' : 'Look up files'}
          </button>
        </div>
      </form>

      {shown && (
        <div className="hub-listing" data-testid="hub-listing">
          <p className="small">
            <strong>{shown.listing.repo}</strong> · revision {shown.listing.revision}
            {shown.listing.commit ? ` (${shown.listing.commit.slice(0, 7)})` : ''} · {shown.listing.files.length} files, {formatBytes(shown.listing.bytes)}
            {shown.listing.shards > 0 ? ` · ${shown.listing.shards} shards` : ''} · <MemoryFit memory={shown.memory} unsupported={shown.unsupported} />
          </p>
          {step.kind === 'downloading' ? (
            <DownloadProgressView files={shown.listing.files} progress={step.progress} />
          ) : (
            <button type="button" className="button" disabled={shown.unsupported !== null} onClick={() => void download(shown)}>
              Download {formatBytes(shown.listing.bytes)}
            </button>
          )}
        </div>
      )}
      <FormError message={error} />
    </div>
  );
}
