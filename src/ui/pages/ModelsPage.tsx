// Models: the local cache the worker keeps (the embedded model served with the app, imported
// folders, Hugging Face downloads, finished or not), each with its files and sizes and a Remove
// button that deletes its files; and adding a new one from Hugging Face or a local folder.
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { CachedModel, ModelInfo, ModelSource } from '../../worker/trainingProtocol';
import { ModelPicker } from '../components/ModelPicker';
import { embeddedModelSource, useEmbeddedModel } from '../embeddedModel';
import { errorText, useClient, useEngine } from '../engine';
import { formatBytes, formatCompact, formatCount, formatRelativeTime } from '../format';
import { forgetModel, modelId, useKnownModels } from '../modelRegistry';
import { hrefFor } from '../router';
import './ModelsPage.css';
import { ACTIONS, TableHead } from '../components/TableHead';
import { ScrollTable } from '../components/ScrollTable';

function useStorageEstimate(refresh: unknown): { usage: number; quota: number } | null {
  const [est, setEst] = useState<{ usage: number; quota: number } | null>(null);
  useEffect(() => {
    let live = true;
    void navigator.storage
      ?.estimate?.()
      .then((e) => live && setEst({ usage: e.usage ?? 0, quota: e.quota ?? 0 }))
      .catch(() => {});
    return () => {
      live = false;
    };
  }, [refresh]);
  return est;
}

function sourceLabel(m: CachedModel): string {
  if (m.kind === 'embedded') return 'embedded, served with the app';
  if (m.kind === 'local') return 'local folder';
  return `Hugging Face @ ${m.revision ?? '?'}`;
}

/** A stable id for a cached model row. */
function rowId(m: CachedModel): string {
  return m.source ? modelId(m.source) : `key:${m.key ?? ''}`;
}

function FilesList({ model }: { model: CachedModel }) {
  return (
    <details className="model-files">
      <summary>
        {model.files.length} {model.files.length === 1 ? 'file' : 'files'}
        {model.missingFiles.length > 0 && <span className="model-incomplete"> · download not finished</span>}
      </summary>
      <ul>
        {model.files.map((f) => (
          <li key={f.name}>
            <span className="mono">{f.name}</span>
            <span className="num">{f.bytes === null ? 'size unknown' : formatBytes(f.bytes)}</span>
            {f.partial && <span className="hint">downloaded so far; resumes from here</span>}
          </li>
        ))}
        {model.missingFiles
          .filter((n) => !model.files.some((f) => f.name === n))
          .map((n) => (
            <li key={n} className="muted">
              <span className="mono">{n}</span>
              <span className="num">not downloaded yet</span>
            </li>
          ))}
      </ul>
    </details>
  );
}

export function ModelsPage() {
  const client = useClient();
  const snap = useEngine();
  const known = useKnownModels();
  const [added, setAdded] = useState<ModelInfo | null>(null);
  const embedded = useEmbeddedModel();
  const ready = snap.status.state === 'ready';
  const [cached, setCached] = useState<CachedModel[] | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const [version, setVersion] = useState(0);
  const storage = useStorageEstimate(version);

  // Jobs starting or ending change which models may be removed.
  const jobsKey = (snap.jobs ?? []).map((j) => `${j.id}:${j.status}`).join(',');
  const refresh = useCallback(() => setVersion((v) => v + 1), []);
  useEffect(() => {
    if (!ready) return;
    let live = true;
    let embeddedSource: ModelSource | null = null;
    try {
      embeddedSource = embeddedModelSource();
    } catch {
      embeddedSource = null;
    }
    client.listModels(embeddedSource).then(
      (list) => {
        if (!live) return;
        setCached(list);
        setListError(null);
      },
      (e: unknown) => live && setListError(errorText(e)),
    );
    return () => {
      live = false;
    };
  }, [client, ready, version, jobsKey, added]);

  const infoOf = useMemo(() => {
    const map = new Map<string, ModelInfo>();
    for (const k of known) map.set(modelId(k.info.source), k.info);
    for (const j of snap.jobs ?? []) {
      const id = modelId(j.baseModel.source);
      if (!map.has(id)) map.set(id, { source: j.baseModel.source, summary: j.baseModel.summary, hasChatTemplate: true });
    }
    if (embedded) map.set(modelId(embedded.source), embedded);
    return map;
  }, [known, snap.jobs, embedded]);

  const stored = (cached ?? []).filter((m) => m.key !== null);
  const storedBytes = stored.reduce((n, m) => n + m.bytes, 0);

  const remove = async (m: CachedModel) => {
    if (!confirm(`Remove ${m.name} from this browser? Its ${formatBytes(m.bytes)} of files are deleted; using it again downloads or imports it again.`)) return;
    setRemoving(rowId(m));
    setMessage(null);
    try {
      const done = await client.deleteModel(m.key);
      if (m.source) forgetModel(m.source);
      setMessage({ kind: 'ok', text: `Removed ${m.name}: ${formatBytes(done.bytes)} in ${done.files} ${done.files === 1 ? 'file' : 'files'} deleted.` });
    } catch (e) {
      setMessage({ kind: 'error', text: errorText(e) });
    } finally {
      setRemoving(null);
      refresh();
    }
  };

  return (
    <div className="models-page" data-testid="models-page">
      <div className="page-head">
        <div>
          <h1>Models</h1>
          <p className="muted">Base models in this browser&rsquo;s storage, so jobs and the playground work offline. Remove one to free its space.</p>
        </div>
        {storage && storage.quota > 0 && (
          <p className="storage-note small muted" data-testid="storage-estimate">
            Browser storage: {formatBytes(storage.usage)} used of {formatBytes(storage.quota)}
          </p>
        )}
      </div>

      <section className="card" aria-labelledby="models-title">
        <h2 id="models-title">Cached models</h2>
        {cached && (
          <p className="muted small" data-testid={stored.length === 0 ? 'no-models' : 'cache-total'}>
            {stored.length === 0
              ? cached.length > 0
                ? 'Only the embedded model, served with the app: nothing downloaded or imported yet. Add a model below.'
                : 'No downloaded or imported models yet.'
              : `${stored.length} ${stored.length === 1 ? 'model' : 'models'} stored here, ${formatBytes(storedBytes)} in all.`}
          </p>
        )}
        {listError && (
          <p className="form-error" role="alert">
            The cache could not be listed: {listError}
          </p>
        )}
        {message && (
          <p className={message.kind === 'error' ? 'form-error' : 'form-ok'} role={message.kind === 'error' ? 'alert' : 'status'} data-testid="models-message">
            {message.text}
          </p>
        )}
        {cached === null && !listError ? (
          <p className="muted">
            <span className="spinner inline" aria-hidden="true" /> Reading the cache…
          </p>
        ) : (
          cached &&
          cached.length > 0 && (
            <ScrollTable className="models-table" testId="models-table">
              <TableHead columns={['Model', 'Source', 'Architecture', { num: 'Parameters' }, { num: 'Size' }, 'Files', { num: 'Jobs' }, ACTIONS]} />
              <tbody>
                {cached.map((m) => {
                  const info = m.source ? infoOf.get(modelId(m.source)) : undefined;
                  const id = rowId(m);
                  const reasonId = `remove-reason-${id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
                  return (
                    <tr key={id} data-testid="cached-model" data-kind={m.kind}>
                      <th scope="row">
                        {m.name}
                        {m.addedAt !== null && <span className="hint">added {formatRelativeTime(m.addedAt)}</span>}
                      </th>
                      <td>{sourceLabel(m)}</td>
                      <td>
                        {info ? (
                          <>
                            {info.summary.architecture}
                            <span className="hint">
                              {info.summary.layers} layers · {formatCount(info.summary.maxPositions)} context
                            </span>
                          </>
                        ) : (
                          '–'
                        )}
                      </td>
                      <td className="num">{info ? formatCompact(info.summary.parameters) : '–'}</td>
                      <td className="num" data-testid="model-bytes">
                        {formatBytes(m.bytes)}
                      </td>
                      <td>
                        <FilesList model={m} />
                      </td>
                      <td className="num">{m.jobs.length}</td>
                      <td>
                        <div className="row-actions">
                          {m.source && m.missingFiles.length === 0 && (
                            <a className="button small" href={hrefFor({ page: 'new-job', from: null })}>
                              Fine-tune
                            </a>
                          )}
                          {m.key !== null && (
                            <button
                              type="button"
                              className="button ghost small"
                              disabled={m.cannotRemove !== null || removing !== null}
                              aria-describedby={m.cannotRemove ? reasonId : undefined}
                              onClick={() => void remove(m)}
                              data-testid="remove-model"
                            >
                              {removing === id ? 'Removing…' : 'Remove'}
                            </button>
                          )}
                        </div>
                        {m.cannotRemove && (
                          <span className="hint model-remove-reason" id={reasonId}>
                            {m.cannotRemove}
                          </span>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </ScrollTable>
          )
        )}
      </section>

      <section className="card" aria-labelledby="add-title">
        <h2 id="add-title">Add a model</h2>
        <p className="muted small">A Hugging Face download that stops (closed tab, lost network) resumes where it stopped when you add the model again.</p>
        <ModelPicker value={added} onChange={setAdded} embedded={embedded} showRecent={false} />
      </section>
    </div>
  );
}
