// "Try it with the built-in model and a sample dataset": one click uploads a shipped sample
// (same-origin fetch, so it works offline from the service worker's cache) and creates a job on
// the embedded model, then opens the job.
import { useEffect, useId, useState } from 'react';
import { useEmbeddedModel } from '../embeddedModel';
import { errorText, useClient, useEngine, useEngineStore } from '../engine';
import { formatBytes, formatCompact, formatCount } from '../format';
import { hrefFor, navigate } from '../router';
import { EMBEDDED_MODEL_NAME, tryItExamples, tryItHyperparameters, tryItSteps, type SampleDataset, type TryItLength } from '../../jobs/samples';
import { fetchSampleBytes, fetchSampleFiles, fetchSampleIndex, firstSentence } from '../samples';
import { modelResolveContext } from '../../train/hyperparameters';
import { TINY_MODEL_EXPECTATION } from '../tinyModel';
import { FormError } from './FormError';
import './TryItCard.css';

type IndexState = { state: 'loading' } | { state: 'ready'; samples: SampleDataset[]; bytes: Record<string, number | null> } | { state: 'failed'; message: string };

function useSampleIndex(): IndexState {
  const [index, setIndex] = useState<IndexState>({ state: 'loading' });
  useEffect(() => {
    let live = true;
    const base = document.baseURI;
    fetchSampleIndex(base)
      .then(async (samples) => {
        // Sizes are a nicety: a failed HEAD leaves the size out, not the sample.
        const sizes = await Promise.all(samples.map((s) => fetchSampleBytes(s, base).catch(() => null)));
        if (live) setIndex({ state: 'ready', samples, bytes: Object.fromEntries(samples.map((s, i) => [s.id, sizes[i] ?? null])) });
      })
      .catch((e: unknown) => live && setIndex({ state: 'failed', message: errorText(e) }));
    return () => {
      live = false;
    };
  }, []);
  return index;
}

export function TryItCard({ onClose }: { onClose?: () => void }) {
  const client = useClient();
  const store = useEngineStore();
  const ready = useEngine().status.state === 'ready';
  const embedded = useEmbeddedModel();
  const index = useSampleIndex();
  const [picked, setPicked] = useState<string | null>(null);
  const [length, setLength] = useState<TryItLength>('suggested');
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const id = useId();

  const samples = index.state === 'ready' ? index.samples : [];
  // The steps the job will take: the same auto rules the worker resolves, on the built-in model.
  const model = embedded ? modelResolveContext(embedded.summary, embedded.finetune ?? null) : undefined;
  const sample = samples.find((s) => s.id === picked) ?? samples[0] ?? null;

  const start = async () => {
    if (!sample || !embedded) return;
    setError(null);
    try {
      setBusy('Reading the sample…');
      const files = await fetchSampleFiles(sample, document.baseURI, { firstExamples: tryItExamples(sample, length) });
      setBusy('Storing the files…');
      const train = await client.uploadFile(files.train.name, files.train, embedded.source);
      const valid = await client.uploadFile(files.valid.name, files.valid, embedded.source);
      setBusy('Creating the job…');
      const job = await client.createJob({
        model: embedded.source,
        trainingFileId: train.file.id,
        validationFileId: valid.file.id,
        hyperparameters: tryItHyperparameters(sample, length),
        suffix: sample.id,
        dtype: 'auto',
      });
      store.upsertJob(job);
      navigate({ page: 'jobs', jobId: job.id, compare: [] });
      onClose?.();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(null);
    }
  };

  // What keeps the button disabled, said next to it.
  const waiting = !ready ? 'Starting the training worker…' : !embedded ? 'Loading the built-in model…' : index.state === 'loading' ? 'Reading the sample list…' : null;

  return (
    <section className="card try-it" aria-labelledby={`${id}-title`} data-testid="try-it">
      <div className="card-head">
        <div>
          <p className="eyebrow">No download needed</p>
          <h2 id={`${id}-title`}>Try it with the built-in model and a sample dataset</h2>
          <p className="muted">
            <span className="mono">{embedded?.source.name ?? EMBEDDED_MODEL_NAME}</span>, a {embedded ? `${formatCompact(embedded.summary.parameters)}-parameter` : 'small'} English and Chinese model that ships with the
            app, learns a sample&rsquo;s style with LoRA on this device&rsquo;s GPU. It works offline; nothing leaves the browser.
          </p>
          <p className="muted small try-it-expect" data-testid="try-it-expect">
            <strong>What to expect:</strong> {TINY_MODEL_EXPECTATION}
          </p>
        </div>
        {onClose && (
          <button type="button" className="button ghost small" onClick={onClose}>
            Hide
          </button>
        )}
      </div>

      {index.state === 'failed' && (
        <p className="form-error" role="alert">
          {index.message}
        </p>
      )}
      {samples.length > 0 && sample && (
        <fieldset className="try-it-samples">
          <legend className="label">Sample dataset</legend>
          {samples.map((s) => {
            const bytes = index.state === 'ready' ? index.bytes[s.id] : null;
            return (
              <label key={s.id} className={`try-it-sample${s.id === sample.id ? ' on' : ''}`} data-testid="try-it-sample" data-sample-id={s.id}>
                <input type="radio" name={`${id}-sample`} value={s.id} checked={s.id === sample.id} onChange={() => setPicked(s.id)} />
                <span className="try-it-sample-text">
                  <span className="strong">{s.title}</span>
                  <span className="muted small">{firstSentence(s.description)}</span>
                  <span className="muted small mono">
                    {formatCount(s.trainExamples)} training + {formatCount(s.validExamples)} validation examples
                    {bytes ? ` · ${formatBytes(bytes)}` : ''}
                  </span>
                </span>
              </label>
            );
          })}
        </fieldset>
      )}

      {sample && (
        <fieldset className="try-it-length">
          <legend className="label">Length</legend>
          <div className="segmented">
            {(['suggested', 'quick'] as const).map((l) => (
              <label key={l} className={`segment${length === l ? ' on' : ''}`}>
                <input type="radio" name={`${id}-length`} value={l} checked={length === l} onChange={() => setLength(l)} data-testid={`try-it-length-${l}`} />
                {l === 'suggested' ? `Full: ${sample.suggestedEpochs} epochs` : `Quick check: ${tryItExamples(sample, l)} examples`}
                {model && <span className="tag">{tryItSteps(sample, l, model)} steps</span>}
              </label>
            ))}
          </div>
        </fieldset>
      )}

      <div className="button-row try-it-actions">
        <button type="button" className="button primary" disabled={busy !== null || waiting !== null || !sample} onClick={() => void start()} data-testid="try-it-start">
          {busy ?? (sample ? `Train on “${sample.title}”` : 'Train on a sample')}
        </button>
        {sample && (
          <a className="button ghost" href={hrefFor({ page: 'new-job', from: null, sample: sample.id })} data-testid="try-it-form">
            Open in the full form…
          </a>
        )}
        <span className="muted small" aria-live="polite">
          {waiting ?? ''}
        </span>
      </div>
      <FormError message={error} />
    </section>
  );
}
