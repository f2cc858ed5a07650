// Models: the ones this browser has used or added, with their sizes, and adding a new one from
// Hugging Face (downloaded with progress) or a local folder.
import { useEffect, useMemo, useState } from 'react';
import type { ModelInfo } from '../../worker/trainingProtocol';
import { ModelPicker } from '../components/ModelPicker';
import { useEmbeddedModel } from '../embeddedModel';
import { useEngine } from '../engine';
import { formatBytes, formatCompact, formatCount, formatRelativeTime } from '../format';
import { forgetModel, modelId, useKnownModels } from '../modelRegistry';
import { hrefFor } from '../router';

const DTYPE_BYTES: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2, float64: 8 };

/** Weight bytes from the parameter count and the checkpoint dtype (config.json torch_dtype). */
function weightBytes(info: ModelInfo): number | null {
  const b = info.summary.torchDtype ? DTYPE_BYTES[info.summary.torchDtype] : undefined;
  return b ? info.summary.parameters * b : null;
}

function useStorageEstimate(): { usage: number; quota: number } | null {
  const [est, setEst] = useState<{ usage: number; quota: number } | null>(null);
  const known = useKnownModels();
  useEffect(() => {
    let live = true;
    void navigator.storage
      ?.estimate?.()
      .then((e) => live && setEst({ usage: e.usage ?? 0, quota: e.quota ?? 0 }))
      .catch(() => {});
    return () => {
      live = false;
    };
  }, [known]);
  return est;
}

export function ModelsPage() {
  const snap = useEngine();
  const known = useKnownModels();
  const [added, setAdded] = useState<ModelInfo | null>(null);
  const embedded = useEmbeddedModel();
  const storage = useStorageEstimate();

  const rows = useMemo(() => {
    const list = known.map((k) => ({ info: k.info, addedAt: k.addedAt as number | null }));
    for (const j of snap.jobs ?? []) {
      if (!list.some((r) => modelId(r.info.source) === modelId(j.baseModel.source))) {
        list.push({ info: { source: j.baseModel.source, summary: j.baseModel.summary, hasChatTemplate: true }, addedAt: null });
      }
    }
    return list;
  }, [known, snap.jobs]);

  const jobsOn = (info: ModelInfo) => (snap.jobs ?? []).filter((j) => modelId(j.baseModel.source) === modelId(info.source)).length;

  return (
    <div className="models-page" data-testid="models-page">
      <div className="page-head">
        <div>
          <h1>Models</h1>
          <p className="muted">Base models this browser has used. Their files live in this browser&rsquo;s storage, so jobs and the playground work offline.</p>
        </div>
        {storage && storage.quota > 0 && (
          <p className="storage-note small muted" data-testid="storage-estimate">
            Browser storage: {formatBytes(storage.usage)} used of {formatBytes(storage.quota)}
          </p>
        )}
      </div>

      <section className="card" aria-labelledby="models-title">
        <h2 id="models-title">Cached models</h2>
        {rows.length === 0 ? (
          <p className="muted" data-testid="no-models">
            No models yet. Add one below: a Hugging Face repo or a folder in Hugging Face layout.
          </p>
        ) : (
          <div className="table-scroll">
            <table className="table" data-testid="models-table">
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Source</th>
                  <th scope="col">Architecture</th>
                  <th scope="col" className="num">
                    Parameters
                  </th>
                  <th scope="col" className="num">
                    Weights
                  </th>
                  <th scope="col" className="num">
                    Jobs
                  </th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map(({ info, addedAt }) => {
                  const bytes = weightBytes(info);
                  const n = jobsOn(info);
                  return (
                    <tr key={modelId(info.source)}>
                      <th scope="row">
                        {info.source.name}
                        {addedAt !== null && <span className="hint">added {formatRelativeTime(addedAt)}</span>}
                      </th>
                      <td>{info.source.kind === 'hub' ? `Hugging Face @ ${info.source.revision}` : info.source.kind === 'local' ? 'local folder' : 'embedded'}</td>
                      <td>
                        {info.summary.architecture}
                        <span className="hint">
                          {info.summary.layers} layers · {formatCount(info.summary.maxPositions)} context
                        </span>
                      </td>
                      <td className="num">{formatCompact(info.summary.parameters)}</td>
                      <td className="num" title="Parameter count × checkpoint dtype">
                        {bytes === null ? '–' : `≈ ${formatBytes(bytes)}`}
                        {info.summary.torchDtype && <span className="hint">{info.summary.torchDtype}</span>}
                      </td>
                      <td className="num">{n}</td>
                      <td>
                        <div className="row-actions">
                          <a className="button small" href={hrefFor({ page: 'new-job', from: null })}>
                            Fine-tune
                          </a>
                          {addedAt !== null && (
                            <button
                              type="button"
                              className="button ghost small"
                              onClick={() => {
                                if (confirm(`Remove ${info.source.name} from this list?`)) forgetModel(info.source);
                              }}
                              title="Removes the model from these lists"
                            >
                              Remove
                            </button>
                          )}
                        </div>
  </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
          <p className="muted small">
            Remove takes a model off these lists. Its cached files stay in browser storage for now: the worker protocol has no request to delete them yet (clearing site data removes them).
          </p>
        </section>

        <section className="card" aria-labelledby="add-title">
          <h2 id="add-title">Add a model</h2>
          <ModelPicker value={added} onChange={setAdded} embedded={embedded} showRecent={false} />
        </section>
      </div>
    );
  }
