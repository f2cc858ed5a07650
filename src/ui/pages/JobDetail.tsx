// One job: status and progress, live charts, checkpoints, events, hyperparameters and files,
// with the actions its status allows.
import { useEffect, useRef, useState } from 'react';
import { smoothedEtaMs } from '../../jobs/eta';
import { NO_STEP_TOKENS, NO_VALIDATION_TOKENS, resultsCsv, trainedStep } from '../../train/metrics';
import type { JobEvent, JobRecord } from '../../worker/trainingProtocol';
import { FormError } from '../components/FormError';
import { ChartToolbar, JobCharts, type ChartControls } from '../components/JobCharts';
import { HyperparameterList } from '../components/Hyperparameters';
import { StatusBadge } from '../components/StatusBadge';
import { ValidationInsights } from '../components/ValidationInsights';
import { peftZip, saveBlob } from '../download';
import { errorText, useClient, useEngine, useEngineStore, useJob, type JobTrace } from '../engine';
import { formatBytes, formatClock, formatCompact, formatCount, formatDateTime, formatDuration, formatPercent, formatReal } from '../format';
import { hrefFor, navigate } from '../router';
import { isSmallModel, TINY_MODEL_EXPECTATION } from '../tinyModel';
import { ACTIONS, TableHead } from '../components/TableHead';
import { ScrollTable } from '../components/ScrollTable';

/**
 * A job's name as lists show it: its training file (or sample) without the .jsonl, then the
 * suffix the user gave, e.g. "pirate-style · v2"; the id where there is no file name.
 */
export function jobTitle(job: Pick<JobRecord, 'suffix' | 'id'> & { trainingFile?: Pick<JobRecord['trainingFile'], 'name'> }): string {
  // `X.train.first-32.jsonl` is the first screen's quick check on sample X (firstExamplesFileName).
  const parts = /^(.*?)(?:\.train)?(?:\.first-(\d+))?(?:\.jsonl?)?$/i.exec(job.trainingFile?.name.trim() ?? '');
  const file = parts?.[1] || null;
  if (!file) return job.suffix ?? job.id;
  const named = job.suffix && job.suffix !== file ? `${file} · ${job.suffix}` : file;
  return parts?.[2] ? `${named} · quick check` : named;
}

/**
 * Why a queued job has not started: jobs train one at a time, so it waits for the one training
 * now, else for the queued job ahead of it (the queue runs the oldest first). Null when not queued
 * or when nothing is ahead (it starts next).
 */
export function queueReason(job: JobRecord, jobs: readonly JobRecord[] | null): string | null {
  if (job.status !== 'queued' || !jobs) return null;
  const running = jobs.find((j) => j.status === 'running' && j.id !== job.id);
  if (running) return `Waiting for job ${jobTitle(running)} to finish: jobs train one at a time on this GPU.`;
  const before = (a: JobRecord, b: JobRecord) => a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.id < b.id);
  const ahead = jobs.filter((j) => j.status === 'queued' && before(j, job)).sort((a, b) => (before(a, b) ? -1 : 1))[0];
  return ahead ? `Waiting for job ${jobTitle(ahead)}, queued before it.` : null;
}

function useAction(): { busy: string | null; error: string | null; run: (name: string, fn: () => Promise<unknown>) => void } {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = (name: string, fn: () => Promise<unknown>) => {
    setBusy(name);
    setError(null);
    fn()
      .catch((e: unknown) => setError(errorText(e)))
      .finally(() => setBusy(null));
  };
  return { busy, error, run };
}

type Action = ReturnType<typeof useAction>;

/**
 * A button that runs one action: disabled while any action runs, showing busyLabel while it is
 * its own; with confirmText, only once the user confirms.
 */
function ActionButton(props: {
  action: Action;
  name: string;
  label: string;
  busyLabel?: string;
  className?: string;
  testId?: string;
  ariaLabel?: string;
  confirmText?: string;
  onRun: () => Promise<unknown>;
}) {
  const { busy, run } = props.action;
  return (
    <button
      type="button"
      className={props.className ?? 'button'}
      disabled={busy !== null}
      onClick={() => {
        if (props.confirmText !== undefined && !confirm(props.confirmText)) return;
        run(props.name, props.onRun);
      }}
      aria-label={props.ariaLabel}
      data-testid={props.testId}
    >
      {busy === props.name && props.busyLabel !== undefined ? props.busyLabel : props.label}
    </button>
  );
}

function Actions({ job }: { job: JobRecord }) {
  const client = useClient();
  const store = useEngineStore();
  const action = useAction();
  const { error } = action;
  const s = job.status;
  const canPause = s === 'running' || s === 'queued';
  const canResume = s === 'paused';
  const canCancel = s === 'running' || s === 'queued' || s === 'paused' || s === 'validating_files';
  const terminal = s === 'succeeded' || s === 'failed' || s === 'cancelled';
  return (
    <div className="job-actions">
      <div className="button-row" role="group" aria-label="Job actions">
        {canPause && <ActionButton action={action} name="pause" label="Pause" busyLabel="Pausing…" testId="pause" onRun={() => client.pause(job.id)} />}
        {canResume && <ActionButton action={action} name="resume" className="button primary" label="Resume" busyLabel="Resuming…" testId="resume" onRun={() => client.resume(job.id)} />}
        {canCancel && (
          <ActionButton
            action={action}
            name="cancel"
            className="button danger"
            label="Cancel"
            busyLabel="Cancelling…"
            testId="cancel"
            confirmText={`Cancel job ${jobTitle(job)}? It cannot be resumed afterwards.`}
            onRun={() => client.cancel(job.id)}
          />
        )}
        <a className="button" href={hrefFor({ page: 'new-job', from: job.id })} data-testid="rerun">
          Rerun with these settings
        </a>
        {(job.adapterKey || job.checkpoints.length > 0) && (
          <a className="button" href={hrefFor({ page: 'playground', job: job.id, checkpoint: null })}>
            Open in playground
          </a>
        )}
        {job.adapterKey && (
          <ActionButton
            action={action}
            name="adapter"
            label="Download adapter"
            busyLabel="Preparing…"
            testId="download-adapter"
            onRun={async () => saveBlob(peftZip(await client.getAdapter(job.id)), `${jobTitle(job)}-adapter.zip`)}
          />
        )}
        {terminal && (
          <ActionButton
            action={action}
            name="delete"
            className="button ghost danger-text"
            label="Delete"
            confirmText={`Delete job ${jobTitle(job)} with its checkpoints, metrics and adapter?`}
            onRun={async () => {
              await client.deleteJob(job.id);
              store.removeJob(job.id);
              navigate({ page: 'jobs', jobId: null, compare: [] });
            }}
          />
        )}
      </div>
      <FormError message={error} />
    </div>
  );
}

function Stat({ label, value, hint, testId }: { label: string; value: string; hint?: string; testId?: string }) {
  return (
    <div className="stat">
      <dt>{label}</dt>
      <dd data-testid={testId}>
        {value}
        {hint && <span className="hint">{hint}</span>}
      </dd>
    </div>
  );
}

function Progress({ job, trace }: { job: JobRecord; trace: JobTrace | null }) {
  const metrics = trace?.metrics ?? [];
  const last = metrics.at(-1);
  // Loss and accuracy come from the last step that trained a token: a step without one measured nothing.
  const lastTrained = metrics.findLast((m) => trainedStep(m) !== null);
  const untrained = metrics.filter((m) => trainedStep(m) === null).length;
  const lastFull = metrics.findLast((m) => m.fullValidLoss !== undefined);
  const total = job.totalSteps ?? job.hyperparameters.resolved?.totalSteps ?? null;
  // Smoothed over recent steps (a resumed run's first step is slow); the trainer's until two steps exist.
  const eta = (trace ? smoothedEtaMs(trace.metrics, total) : null) ?? last?.etaMs ?? null;
  const frac = total ? Math.min(1, job.step / total) : 0;
  const epochs = job.hyperparameters.resolved?.epochs;
  const live = job.status === 'running';
  return (
    <section className="card" aria-labelledby="progress-title">
      <div className="card-head">
        <h3 id="progress-title">Progress</h3>
        <span className="mono small muted" data-testid="step-count">
          step {formatCount(job.step)}
          {total ? ` of ${formatCount(total)}` : ''}
          {last && epochs ? ` · epoch ${last.epoch} of ${epochs}` : ''}
        </span>
      </div>
      <div className="progress" role="progressbar" aria-label="Training progress" aria-valuemin={0} aria-valuemax={total ?? 1} aria-valuenow={job.step}>
        <div className={`progress-bar ${job.status === 'succeeded' ? 'pass' : job.status === 'failed' ? 'fail' : ''}`} style={{ width: `${frac * 100}%` }} />
      </div>
      <dl className="stats">
        <Stat label="Trained tokens" value={formatCompact(job.trainedTokens)} testId="trained-tokens" />
        <Stat label="Tokens / s" value={last ? formatCompact(last.tokensPerSecond) : '–'} />
        <Stat label="ETA" value={live && eta != null ? formatDuration(eta) : job.status === 'succeeded' ? 'done' : '–'} testId="eta" />
        <Stat label="Elapsed" value={last ? formatDuration(last.elapsedMs) : '–'} />
        <Stat label="GPU memory" value={last ? formatBytes(last.gpuBytes) : '–'} />
        <Stat
          label="Train loss"
          value={lastTrained ? formatReal(Number(lastTrained.trainLoss.toPrecision(4))) : last ? 'none' : '–'}
          hint={lastTrained ? `accuracy ${formatPercent(lastTrained.trainAccuracy)}` : last ? NO_STEP_TOKENS : undefined}
          testId="train-loss"
        />
      </dl>
      {untrained > 0 && (
        <p className="hint job-note" data-testid="untrained-steps">
          {formatCount(untrained)} of {formatCount(metrics.length)} steps had no trained tokens: their examples are longer than the maximum sequence length, so truncation cut
          every reply token. Those steps are left out of the charts; shorten the examples or raise the maximum sequence length.
        </p>
      )}
      {lastFull && !Number.isFinite(lastFull.fullValidLoss) && (
        <p className="hint job-note" data-testid="untrained-validation">
          Validation loss: none, {NO_VALIDATION_TOKENS} ({formatCount(job.hyperparameters.resolved?.maxSeqLen ?? 0)} tokens).
        </p>
      )}
      {isSmallModel(job.baseModel.summary.parameters) && (
        <p className="hint job-note" data-testid="tiny-model-expectation">
          <strong>What to expect:</strong> {TINY_MODEL_EXPECTATION}
        </p>
      )}
    </section>
  );
}

function EventsLog({ events }: { events: readonly JobEvent[] }) {
  const box = useRef<HTMLOListElement>(null);
  const stick = useRef(true);
  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [events.length]);
  return (
    <ol
      className="events-log"
      ref={box}
      role="log"
      aria-label="Job events"
      tabIndex={0}
      onScroll={(e) => {
        const el = e.currentTarget;
        // Follow new lines only while the reader is at the bottom.
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
      }}
      data-testid="events-log"
    >
      {events.length === 0 && <li className="muted">No events yet.</li>}
      {events.map((e) => (
        <li key={e.seq} className={`event level-${e.level}`}>
          <time dateTime={new Date(e.time).toISOString()} title={formatDateTime(e.time)}>
            {formatClock(e.time)}
          </time>
          <span className={`level level-${e.level}`}>{e.level}</span>
          <span className="event-message">
            {e.message}
            {e.step !== null && <span className="muted"> (step {e.step})</span>}
          </span>
        </li>
      ))}
    </ol>
  );
}

function Checkpoints({ job }: { job: JobRecord }) {
  const client = useClient();
  const action = useAction();
  const { error } = action;
  if (job.checkpoints.length === 0) {
    const every = job.checkpointEvery ? `every ${formatCount(job.checkpointEvery)} steps, ` : '';
    return <p className="muted">Checkpoints are saved {every}at the end of each epoch and when a job pauses.</p>;
  }
  return (
    <>
      <ScrollTable testId="checkpoints">
        <TableHead columns={['Checkpoint', { num: 'Epoch' }, { num: 'Step' }, { num: 'Train loss' }, { num: 'Size' }, ACTIONS]} />
        <tbody>
          {[...job.checkpoints].reverse().map((c) => (
            <tr key={c.name}>
              <th scope="row" className="mono small nowrap">
                {c.name}
                <span className="hint">{formatDateTime(c.createdAt)}</span>
              </th>
              <td className="num">{c.epoch}</td>
              <td className="num">{formatCount(c.step)}</td>
              <td className="num mono">{c.trainLoss === null ? '–' : c.trainLoss.toFixed(4)}</td>
              <td className="num">{formatBytes(c.bytes)}</td>
              <td>
                <div className="row-actions">
                  <a className="button small" href={hrefFor({ page: 'playground', job: job.id, checkpoint: c.name })} aria-label={`Open checkpoint ${c.name} in the playground`}>
                    Playground
                  </a>
                  <ActionButton
                    action={action}
                    name={c.name}
                    className="button small"
                    label="Download adapter"
                    busyLabel="Preparing…"
                    ariaLabel={`Download the adapter of checkpoint ${c.name} (PEFT zip)`}
                    onRun={async () => saveBlob(peftZip(await client.getAdapter(job.id, c.name)), `${jobTitle(job)}-${c.name}-adapter.zip`)}
                  />
                </div>
  </td>
              </tr>
            ))}
          </tbody>
      </ScrollTable>
        <FormError message={error} />
      </>
    );
  }

  export function JobDetail({ jobId, controls, onControls }: { jobId: string; controls: ChartControls; onControls: (c: ChartControls) => void }) {
    const { job, trace, missing } = useJob(jobId);
    const { jobs } = useEngine();
    if (missing) {
      return (
        <div className="card empty" data-testid="job-missing">
          <h2>No job {jobId}</h2>
          <p className="muted">It may have been deleted, or browser storage was cleared.</p>
        </div>
      );
    }
    if (!job) {
      return (
        <div className="card checking">
          <span className="spinner" aria-hidden="true" /> Loading job…
        </div>
      );
    }
    const model = job.baseModel.summary;
    const waiting = queueReason(job, jobs);
    return (
      <article className="job-detail" aria-labelledby="job-title" data-testid="job-detail" data-job-id={job.id} data-status={job.status}>
        <header className="job-head">
          <div className="job-head-text">
            <div className="title-row">
              <h2 id="job-title">{jobTitle(job)}</h2>
              <StatusBadge status={job.status} />
            </div>
            <p className="mono small muted">
              {job.fineTunedModel ?? job.id} · created {formatDateTime(job.createdAt)}
            </p>
            {job.statusMessage && <p className="status-message">{job.statusMessage}</p>}
            {waiting && (
              <p className="queue-reason" data-testid="queue-reason">
                {waiting}
              </p>
            )}
          </div>
          <Actions job={job} />
        </header>

        {job.error && (
          <div className="callout danger" role="alert">
            <strong>{job.error.code}:</strong> {job.error.message}
          </div>
        )}

        <Progress job={job} trace={trace} />

        <section className="card" aria-labelledby="metrics-title">
          <div className="card-head">
            <h3 id="metrics-title">Metrics</h3>
            <div className="card-tools">
              <ChartToolbar value={controls} onChange={onControls} idPrefix="job" />
              <button
                type="button"
                className="button small"
                disabled={!trace || trace.metrics.length === 0}
                onClick={() => trace && saveBlob(new Blob([resultsCsv(trace.metrics)], { type: 'text/csv' }), `${jobTitle(job)}-results.csv`)}
              >
                results.csv
              </button>
            </div>
          </div>
          {trace ? <JobCharts metrics={trace.metrics} controls={controls} /> : <div className="chart-grid placeholder" aria-busy="true" />}
        </section>

        <ValidationInsights job={job} />

        <section className="card" aria-labelledby="checkpoints-title">
          <h3 id="checkpoints-title">Checkpoints</h3>
          <Checkpoints job={job} />
        </section>

        <div className="detail-columns">
          <div className="detail-main">
            <section className="card" aria-labelledby="events-title">
              <h3 id="events-title">Events</h3>
              <EventsLog events={trace?.events ?? []} />
            </section>
          </div>
          <div className="detail-side">
            <section className="card" aria-labelledby="hp-title">
              <h3 id="hp-title">Hyperparameters</h3>
              <HyperparameterList job={job} />
            </section>
            <section className="card" aria-labelledby="files-title">
              <h3 id="files-title">Model and files</h3>
              <dl className="kv">
                <dt>Base model</dt>
                <dd>
                  {job.baseModel.source.name}
                  <span className="hint">
                    {job.baseModel.source.kind === 'hub' ? 'Hugging Face' : job.baseModel.source.kind === 'local' ? 'local folder' : 'embedded'} · {model.architecture} ·{' '}
                    {formatCompact(model.parameters)} parameters
                  </span>
                </dd>
                <dt>Weights</dt>
                <dd>{job.weightDtype ?? (job.dtype === 'auto' ? 'auto (f16 when the GPU has it)' : job.dtype)}</dd>
                <dt>Training file</dt>
                <dd>
                  {job.trainingFile.name}
                  <span className="hint">
                    {formatBytes(job.trainingFile.bytes)} · {job.trainingFile.id}
                  </span>
                </dd>
                <dt>Validation file</dt>
                <dd>
                  {job.validationFile ? (
                    <>
                      {job.validationFile.name}
                      <span className="hint">
                        {formatBytes(job.validationFile.bytes)} · {job.validationFile.id}
                      </span>
                    </>
                  ) : (
                    'none'
                  )}
                </dd>
                {job.kernelPlan && (
                  <>
                    <dt>Kernels</dt>
                    <dd data-testid="job-kernel-plan">{job.kernelPlan}</dd>
                  </>
                )}
                {job.resumes > 0 && (
                  <>
                    <dt>Resumed</dt>
                    <dd>{job.resumes} ×</dd>
                  </>
                )}
              </dl>
            </section>
          </div>
        </div>
      </article>
    );
  }
