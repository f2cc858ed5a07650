// The job page's "Validation insights": the validation examples with the highest and the lowest
// loss under the fine-tuned model, each with its prompt, reference, both losses and both models'
// greedy answers side by side. Computed by the engine once after training and stored in the job
// record (src/jobs/validationInsights.ts); everything from the dataset is rendered as text.
import { useState } from 'react';
import type { InsightExample, ValidationInsights as Insights, ValidationInsightsState } from '../../jobs/validationInsights';
import type { JobRecord } from '../../worker/trainingProtocol';
import { errorText, useClient } from '../engine';
import { formatCount } from '../format';
import { FormError } from './FormError';
import './ValidationInsights.css';

/** A loss as the dashboard shows losses: 4 decimals, '–' when there is none. */
export function formatLoss(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : '–';
}

/** The fine-tuned loss relative to the base loss, e.g. "−37.5%" (lower is better). */
export function formatLossChange(base: number, tuned: number): string {
  if (!Number.isFinite(base) || !Number.isFinite(tuned) || base === 0) return '–';
  const pct = ((tuned - base) / base) * 100;
  const sign = pct > 0 ? '+' : pct < 0 ? '\u2212' : '±';
  return `${sign}${Math.abs(pct).toFixed(1)}%`;
}

/** What the section says, for a job and its stored state (null: show nothing). */
export function insightsView(job: Pick<JobRecord, 'status'>, state: ValidationInsightsState | null | undefined):
  | { kind: 'computing'; label: string; done: number; total: number }
  | { kind: 'ready'; insights: Insights }
  | { kind: 'none'; reason: string }
  | { kind: 'failed'; message: string }
  | { kind: 'missing' }
  | null {
  if (state?.state === 'computing' && (job.status === 'running' || job.status === 'succeeded')) {
    const label = state.phase === 'scoring' ? 'Scoring validation examples with both models' : 'Generating both models\u2019 answers';
    return { kind: 'computing', label, done: state.done, total: state.total };
  }
  if (job.status !== 'succeeded') return null;
  if (!state || state.state === 'computing') return { kind: 'missing' };
  if (state.state === 'ready') return { kind: 'ready', insights: state.insights };
  if (state.state === 'none') return { kind: 'none', reason: state.reason };
  return { kind: 'failed', message: state.message };
}

function Answer({ title, text, finish, maxNewTokens }: { title: string; text: string | null; finish: InsightExample['baseFinish']; maxNewTokens: number }) {
  return (
    <figure className="insight-answer">
      <figcaption className="insight-label">{title}</figcaption>
      {text === null ? (
        <p className="muted small">No answer generated (the example has no prompt, or the prompt fills the model&rsquo;s context).</p>
      ) : (
        <>
          <p className="insight-text">{text === '' ? <span className="muted">(empty answer)</span> : text}</p>
          {finish === 'length' && <p className="hint">stopped at the {maxNewTokens}-token limit</p>}
        </>
      )}
    </figure>
  );
}

function ExampleCard({ example, rank, end }: { example: InsightExample; rank: number; end: 'highest' | 'lowest' }) {
  const id = `insight-${end}-${rank}`;
  return (
    <article className="insight-card" aria-labelledby={id} data-testid="insight-example" data-end={end}>
      <header className="insight-card-head">
        <h5 id={id}>
          Example {formatCount(example.index + 1)}
          <span className="visually-hidden"> ({end === 'highest' ? 'high' : 'low'} loss, rank {rank})</span>
        </h5>
        <dl className="insight-losses">
          <div>
            <dt>Base loss</dt>
            <dd className="mono">{formatLoss(example.baseLoss)}</dd>
          </div>
          <div>
            <dt>Fine-tuned loss</dt>
            <dd className="mono" data-testid="insight-fine-tuned-loss">
              {formatLoss(example.fineTunedLoss)}
            </dd>
          </div>
          <div>
            <dt>Change</dt>
            <dd className="mono">{formatLossChange(example.baseLoss, example.fineTunedLoss)}</dd>
          </div>
        </dl>
      </header>
      <div className="insight-prompt">
        <p className="insight-label">Prompt</p>
        {example.prompt.length === 0 ? (
          <p className="muted small">Plain-text example: no prompt.</p>
        ) : (
          example.prompt.map((m, i) => (
            <div key={i} className="msg">
              <span className="msg-role">{m.role}</span>
              <span className="msg-content">{m.content}</span>
            </div>
          ))
        )}
      </div>
      <div className="insight-reference">
        <p className="insight-label">Reference answer</p>
        <p className="insight-text">{example.reference}</p>
      </div>
      <div className="insight-answers">
        <Answer title="Base model" text={example.baseAnswer} finish={example.baseFinish} maxNewTokens={example.maxNewTokens} />
        <Answer title="Fine-tuned model" text={example.fineTunedAnswer} finish={example.fineTunedFinish} maxNewTokens={example.maxNewTokens} />
      </div>
      {example.truncated && <p className="hint">Long text is shortened here.</p>}
    </article>
  );
}

function Ready({ insights }: { insights: Insights }) {
  const groups = [
    { end: 'highest' as const, title: 'Highest loss', hint: 'where the fine-tuned model is furthest from the reference', list: insights.highest },
    { end: 'lowest' as const, title: 'Lowest loss', hint: 'where it matches the reference best', list: insights.lowest },
  ].filter((g) => g.list.length > 0);
  return (
    <>
      <p className="muted small" data-testid="insights-summary">
        {formatCount(insights.scored)} of {formatCount(insights.validationExamples)} validation examples scored · mean loss{' '}
        <span className="mono">{formatLoss(insights.baseMeanLoss)}</span> base → <span className="mono">{formatLoss(insights.fineTunedMeanLoss)}</span> fine-tuned (
        {formatLossChange(insights.baseMeanLoss, insights.fineTunedMeanLoss)}) · greedy answers
      </p>
      {groups.map((g) => (
        <section key={g.end} className="insight-group" aria-labelledby={`insights-${g.end}`}>
          <h4 id={`insights-${g.end}`}>
            {g.title} <span className="muted small">{g.hint}</span>
          </h4>
          <div className="insight-list">
            {g.list.map((e, i) => (
              <ExampleCard key={e.index} example={e} rank={i + 1} end={g.end} />
            ))}
          </div>
        </section>
      ))}
    </>
  );
}

export function ValidationInsights({ job }: { job: JobRecord }) {
  const client = useClient();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const view = insightsView(job, job.validationInsights);
  if (!view) return null;
  const compute = (label: string) => (
    <button
      type="button"
      className="button small"
      disabled={busy}
      onClick={() => {
        setBusy(true);
        setError(null);
        client
          .computeInsights(job.id)
          .catch((e: unknown) => setError(errorText(e)))
          .finally(() => setBusy(false));
      }}
    >
      {busy ? 'Starting…' : label}
    </button>
  );
  return (
    <section className="card" aria-labelledby="insights-title" data-testid="validation-insights" data-state={view.kind}>
      <div className="card-head">
        <h3 id="insights-title">Validation insights</h3>
        {view.kind === 'ready' && <div className="card-tools">{compute('Compute again')}</div>}
      </div>
      {view.kind === 'computing' && (
        <div className="insight-computing" aria-live="polite">
          <p>
            <span className="spinner" aria-hidden="true" /> Computing validation insights: {view.label.toLowerCase()}
            {view.total > 0 ? ` (${view.done} of ${view.total})` : ''}
          </p>
          <div className="progress" role="progressbar" aria-label="Validation insights progress" aria-valuemin={0} aria-valuemax={Math.max(1, view.total)} aria-valuenow={view.done}>
            <div className="progress-bar" style={{ width: `${view.total > 0 ? (view.done / view.total) * 100 : 0}%` }} />
          </div>
        </div>
      )}
      {view.kind === 'ready' && <Ready insights={view.insights} />}
      {view.kind === 'none' && <p className="muted" data-testid="insights-none">{view.reason}</p>}
      {view.kind === 'failed' && (
        <>
          <p className="form-error">Validation insights could not be computed: {view.message}</p>
          {compute('Try again')}
        </>
      )}
      {view.kind === 'missing' && (
        <>
          <p className="muted">Not computed for this job yet: the validation examples with the highest and lowest loss, with both models&rsquo; answers.</p>
          {compute('Compute validation insights')}
        </>
      )}
      <FormError message={error} />
    </section>
  );
}
