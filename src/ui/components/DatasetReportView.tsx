// The validation report of a JSONL file, as OpenAI's data checks show it: line-numbered errors,
// warnings, token statistics with a histogram, billed tokens and a time estimate.
import { useMemo } from 'react';
import type { DatasetReport } from '../../data/datasetTypes';
import { MetricChart, type ChartSeries } from '../charts/MetricChart';
import { formatCount, formatDuration } from '../format';
import { TableHead } from './TableHead';

const FORMAT_NAMES: Record<DatasetReport['format'], string> = { chat: 'chat messages', prompt_completion: 'prompt / completion', text: 'plain text' };

export interface Estimate {
  epochs: number | null;
  /** Measured tokens/s on this device for this model (a previous job), if any. */
  tokensPerSecond: number | null;
}

function Histogram({ report }: { report: DatasetReport }) {
  const stats = report.stats!;
  const x = useMemo(() => stats.histogram.map((b) => b.lo), [stats]);
  const series = useMemo<ChartSeries[]>(() => [{ label: 'Examples', color: 1, style: 'bars', values: stats.histogram.map((b) => b.count) }], [stats]);
  return <MetricChart title="Tokens per example" x={x} series={series} xLabel="tokens" height={160} format={(v) => formatCount(Math.round(v))} testId="token-histogram" />;
}

export function DatasetReportView({ report, estimate, testId }: { report: DatasetReport; estimate: Estimate; testId: string }) {
  const stats = report.stats;
  const epochs = estimate.epochs ?? report.epochs;
  const billed = stats ? epochs * stats.trainedTokensAfterTruncation : null;
  const seconds = stats && estimate.tokensPerSecond ? (epochs * stats.processedTokens) / estimate.tokensPerSecond : null;
  const bad = !report.ok;
  return (
    <div className="report" data-testid={testId} data-ok={report.ok}>
      <p className={bad ? 'report-summary fail' : 'report-summary pass'} role="status">
        {bad
          ? report.errorCount > 0
            ? `${formatCount(report.errorCount)} ${report.errorCount === 1 ? 'error' : 'errors'} in ${formatCount(report.invalidLines)} of ${formatCount(report.nonBlankLines)} lines. Fix them and pick the file again.`
            : 'No valid examples in this file.'
          : `${formatCount(report.examples)} valid ${report.examples === 1 ? 'example' : 'examples'} (${FORMAT_NAMES[report.format]}).`}
      </p>

      {report.errors.length > 0 && (
        <div className="table-scroll report-errors">
          <table className="table" data-testid="validation-errors">
            <caption className="visually-hidden">Errors by line</caption>
            <TableHead columns={[{ num: 'Line' }, 'Where', 'Problem']} />
            <tbody>
              {report.errors.map((e, i) => (
                <tr key={`${e.line}-${i}`} data-line={e.line} data-code={e.code}>
                  <th scope="row" className="num mono">
                    {e.line}
                  </th>
                  <td className="mono small">{e.path ?? '–'}</td>
                  <td>{e.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {report.errorsTruncated && <p className="muted small">Only the first {report.errors.length} errors are listed.</p>}
        </div>
      )}

      {report.warnings.length > 0 && (
        <ul className="warnings" aria-label="Warnings" data-testid="validation-warnings">
          {report.warnings.map((w, i) => (
            <li key={`${w.code}-${i}`}>
              <span className="level level-warning">warning</span> {w.message}
              {w.lines && w.lines.length > 0 && (
                <span className="muted small">
                  {' '}
                  (line{w.lines.length > 1 ? 's' : ''} {w.lines.join(', ')}
                  {w.count && w.count > w.lines.length ? ', …' : ''})
                </span>
              )}
            </li>
          ))}
        </ul>
      )}

      {stats && (
        <div className="report-stats">
          <dl className="stats compact">
            <div className="stat">
              <dt>Tokens</dt>
              <dd>{formatCount(stats.totalTokens)}</dd>
            </div>
            <div className="stat">
              <dt>Trained tokens / epoch</dt>
              <dd>{formatCount(stats.trainedTokensAfterTruncation)}</dd>
            </div>
            <div className="stat">
              <dt>Per example</dt>
              <dd className="small">
                min {stats.min} · median {stats.median} · p95 {stats.p95} · max {stats.max}
              </dd>
            </div>
            <div className="stat">
              <dt>Billed tokens</dt>
              <dd data-testid="billed-tokens">
                {billed === null ? '–' : formatCount(billed)}
                <span className="hint">
                  {epochs} {epochs === 1 ? 'epoch' : 'epochs'} × trained tokens
                </span>
              </dd>
            </div>
            <div className="stat">
              <dt>Time estimate</dt>
              <dd>
                {seconds === null ? 'after a first job' : `≈ ${formatDuration(seconds * 1000)}`}
                <span className="hint">{seconds === null ? 'needs a measured speed on this device' : `at ${formatCount(Math.round(estimate.tokensPerSecond!))} tokens/s measured here`}</span>
              </dd>
            </div>
          </dl>
          {stats.histogram.length > 0 && <Histogram report={report} />}
          {report.truncatedExamples > 0 && report.maxSeqLen !== null && (
            <p className="muted small">
              {formatCount(report.truncatedExamples)} examples are longer than {formatCount(report.maxSeqLen)} tokens and will be cut from the end.
            </p>
          )}
        </div>
      )}
      {!stats && report.ok && <p className="muted small">Pick a model to see token statistics (they need its tokenizer).</p>}
    </div>
  );
}
