// Fine-tuning: the jobs list beside the selected job, or several jobs compared.
import { useEffect, useMemo, useState } from 'react';
import { trainedStep } from '../../train/metrics';
import type { JobRecord } from '../../worker/trainingProtocol';
import { ChartToolbar, CompareCharts, type ChartControls, type OverlayJob } from '../components/JobCharts';
import { HP_ROWS, hpCell } from '../components/Hyperparameters';
import { StatusBadge } from '../components/StatusBadge';
import { TryItCard } from '../components/TryItCard';
import { useEngine, useEngineStore } from '../engine';
import { formatCompact, formatDateTime, formatRelativeTime } from '../format';
import { hrefFor, navigate } from '../router';
import { JobDetail, jobTitle, queueReason } from './JobDetail';
import { ScrollTable } from '../components/ScrollTable';

const CONTROLS_KEY = 'whittle.chartControls';

function useChartControls(): [ChartControls, (c: ChartControls) => void] {
  const [c, setC] = useState<ChartControls>(() => {
    try {
      const v = JSON.parse(localStorage.getItem(CONTROLS_KEY) ?? 'null') as Partial<ChartControls> | null;
      return { smoothing: typeof v?.smoothing === 'number' ? v.smoothing : 0.6, logScale: v?.logScale === true };
    } catch {
      return { smoothing: 0.6, logScale: false };
    }
  });
  const set = (next: ChartControls) => {
    setC(next);
    try {
      localStorage.setItem(CONTROLS_KEY, JSON.stringify(next));
    } catch {
      // no storage: the setting lasts for this page
    }
  };
  return [c, set];
}

function JobList({ jobs, current, checked, onCheck }: { jobs: JobRecord[]; current: string | null; checked: string[]; onCheck: (ids: string[]) => void }) {
  return (
    <ul className="job-list" aria-label="Fine-tuning jobs" data-testid="job-list">
      {jobs.map((j) => {
        const on = checked.includes(j.id);
        const waiting = queueReason(j, jobs);
        return (
          <li key={j.id} className={j.id === current ? 'job-item current' : 'job-item'} data-testid="job-item" data-job-id={j.id}>
            <input
              type="checkbox"
              className="job-check"
              checked={on}
              onChange={() => onCheck(on ? checked.filter((x) => x !== j.id) : [...checked, j.id])}
              aria-label={`Select ${jobTitle(j)} to compare`}
            />
            <a href={hrefFor({ page: 'jobs', jobId: j.id, compare: [] })} aria-current={j.id === current ? 'page' : undefined} className="job-link">
              <span className="job-line">
                <span className="job-name">{jobTitle(j)}</span>
                <StatusBadge status={j.status} />
              </span>
              <span className="job-meta">
                <span className="job-model">{j.baseModel.source.name}</span>
                <span>
                  <time dateTime={new Date(j.createdAt).toISOString()} title={formatDateTime(j.createdAt)}>
                    {formatRelativeTime(j.createdAt)}
                  </time>
                  {' · '}
                  {formatCompact(j.trainedTokens)} tokens
                </span>
                {waiting && (
                  <span className="job-wait" data-testid="job-queue-reason">
                    {waiting}
                  </span>
                )}
              </span>
            </a>
          </li>
        );
      })}
    </ul>
  );
}

function EmptyJobs() {
  return (
    <div className="card empty" data-testid="no-jobs">
      <h2>No fine-tuning jobs yet</h2>
      <p className="muted">
        Or bring your own: pick a model, drop in a JSONL file of examples and start a job. Training runs on this device&rsquo;s
        GPU; the curves appear here as it goes.
      </p>
      <a className="button" href={hrefFor({ page: 'new-job', from: null })}>
        Create a job
      </a>
    </div>
  );
}

function Compare({ ids, controls, onControls }: { ids: string[]; controls: ChartControls; onControls: (c: ChartControls) => void }) {
  const store = useEngineStore();
  const snap = useEngine();
  useEffect(() => {
    if (snap.status.state === 'ready') for (const id of ids) void store.loadJob(id).catch(() => {});
  }, [ids, store, snap.status.state]);
  const jobs = ids.map((id) => snap.jobs?.find((j) => j.id === id)).filter((j): j is JobRecord => j !== undefined);
  const overlay = useMemo<OverlayJob[]>(() => jobs.map((j) => ({ label: jobTitle(j), metrics: snap.traces[j.id]?.metrics ?? [] })), [jobs, snap.traces]);
  return (
    <article className="compare" aria-labelledby="compare-title" data-testid="compare">
      <header className="job-head">
        <div>
          <h2 id="compare-title">Comparing {jobs.length} jobs</h2>
          <p className="muted small">Curves on shared axes; hyperparameters that differ are highlighted.</p>
        </div>
        <a className="button" href={hrefFor({ page: 'jobs', jobId: null, compare: [] })}>
          Done comparing
        </a>
      </header>
      <section className="card" aria-labelledby="compare-metrics">
        <div className="card-head">
          <h3 id="compare-metrics">Metrics</h3>
          <ChartToolbar value={controls} onChange={onControls} idPrefix="compare" />
        </div>
        <CompareCharts jobs={overlay} controls={controls} />
      </section>
      <section className="card" aria-labelledby="compare-hp">
        <h3 id="compare-hp">Hyperparameters</h3>
        <ScrollTable className="compare-table" testId="compare-table">
          <thead>
            <tr>
              <th scope="col">Setting</th>
              {jobs.map((j, k) => (
                <th scope="col" key={j.id}>
                  <span className={`swatch swatch-${k % 8}`} aria-hidden="true" />
                  <a href={hrefFor({ page: 'jobs', jobId: j.id, compare: [] })}>{jobTitle(j)}</a>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            <tr>
              <th scope="row">Status</th>
              {jobs.map((j) => (
                <td key={j.id}>
                  <StatusBadge status={j.status} />
                </td>
              ))}
            </tr>
            <tr className={new Set(jobs.map((j) => j.baseModel.source.name)).size > 1 ? 'differs' : ''}>
              <th scope="row">Base model</th>
              {jobs.map((j) => (
                <td key={j.id}>{j.baseModel.source.name}</td>
              ))}
            </tr>
            <tr className={new Set(jobs.map((j) => j.trainingFile.id)).size > 1 ? 'differs' : ''}>
              <th scope="row">Training file</th>
              {jobs.map((j) => (
                <td key={j.id}>{j.trainingFile.name}</td>
              ))}
            </tr>
            {HP_ROWS.map((row) => {
              const cells = jobs.map((j) => hpCell(row, j));
              const differs = new Set(cells.map((c) => c.text)).size > 1;
              return (
                <tr key={row.key} className={differs ? 'differs' : ''}>
                  <th scope="row">
                    {row.label}
                    {differs && <span className="visually-hidden"> (differs)</span>}
                  </th>
                  {cells.map((c, i) => (
                    <td key={jobs[i]!.id} className="mono">
                      {c.text}
                      {c.auto && <span className="tag">auto</span>}
                    </td>
                  ))}
                </tr>
              );
            })}
            <tr>
              <th scope="row">Final train loss</th>
              {jobs.map((j) => {
                const last = snap.traces[j.id]?.metrics.findLast((m) => trainedStep(m) !== null);
                return (
                  <td key={j.id} className="mono">
                    {last ? last.trainLoss.toFixed(4) : '–'}
                  </td>
                );
              })}
            </tr>
          </tbody>
        </ScrollTable>
      </section>
    </article>
  );
}

export function FineTuningPage({ jobId, compare }: { jobId: string | null; compare: string[] }) {
  const snap = useEngine();
  const [controls, setControls] = useChartControls();
  const [checked, setChecked] = useState<string[]>(compare);
  const jobs = snap.jobs;
  const shown = jobId ?? jobs?.[0]?.id ?? null;
  const comparing = compare.length >= 2;
  // With jobs listed, the Try-it card opens from the page head instead of taking the first screen.
  const [tryIt, setTryIt] = useState(false);

  return (
    <div className="ft-page">
      <div className="page-head">
        <div>
          <h1>Fine-tuning</h1>
          <p className="muted">Jobs train LoRA adapters on this device. They keep going across reloads, from their last checkpoint.</p>
        </div>
        <div className="button-row">
          {jobs !== null && jobs.length > 0 && !tryIt && (
            <button type="button" className="button" onClick={() => setTryIt(true)} data-testid="try-it-open">
              Try a sample
            </button>
          )}
          <a className="button primary" href={hrefFor({ page: 'new-job', from: null })} data-testid="create-job">
            + Create job
          </a>
        </div>
      </div>

      {snap.status.state === 'failed' && (
        <div className="callout danger" role="alert">
          <strong>The training worker failed to start.</strong> {snap.status.message}
        </div>
      )}
      {snap.deviceLost && (
        <div className="callout warn" role="status">
          <strong>The GPU device was lost.</strong> {snap.deviceLost} Running jobs were paused; resume them to continue from their last checkpoint.
        </div>
      )}

      {jobs === null && snap.status.state !== 'failed' && (
        <div className="card checking" aria-live="polite">
          <span className="spinner" aria-hidden="true" /> Opening the job store…
        </div>
      )}
      {jobs !== null && jobs.length === 0 && <TryItCard />}
      {jobs !== null && jobs.length > 0 && tryIt && <TryItCard onClose={() => setTryIt(false)} />}
      {jobs !== null && jobs.length === 0 && <EmptyJobs />}
      {jobs !== null && jobs.length > 0 && (
        <div className="ft-layout">
          <aside className="job-list-pane" aria-label="Jobs">
            <div className="list-head">
              <h2 className="list-title">
                Jobs <span className="count">{jobs.length}</span>
              </h2>
              <button
                type="button"
                className="button small"
                disabled={checked.length < 2}
                onClick={() => navigate({ page: 'jobs', jobId: null, compare: checked })}
                data-testid="compare-button"
                title={checked.length < 2 ? 'Tick two or more jobs to compare them' : undefined}
              >
                Compare{checked.length ? ` (${checked.length})` : ''}
              </button>
            </div>
            <JobList jobs={jobs} current={comparing ? null : shown} checked={checked} onCheck={setChecked} />
          </aside>
          <section className="job-detail-pane">
            {comparing ? (
              <Compare ids={compare} controls={controls} onControls={setControls} />
            ) : (
              shown && <JobDetail key={shown} jobId={shown} controls={controls} onControls={setControls} />
            )}
          </section>
        </div>
      )}
    </div>
  );
}
