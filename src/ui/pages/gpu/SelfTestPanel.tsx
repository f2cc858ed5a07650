import type { SelfTestState } from '../../useGpuWorker';
import { formatBound, formatError, formatMs, formatSeconds } from '../../format';
import { TableHead } from '../../components/TableHead';
import { ScrollTable } from '../../components/ScrollTable';

interface Props {
  state: SelfTestState;
  canRun: boolean;
  onRun: () => void;
}

function summaryText(s: SelfTestState): string {
  const finished = s.results.filter((r) => r !== undefined).length;
  if (s.status === 'idle') return 'Runs every kernel family on small random inputs and checks it against a plain TypeScript reference.';
  if (s.status === 'error') return `The self-test stopped: ${s.message ?? 'unknown error'}`;
  if (s.status === 'running') {
    if (s.cases.length === 0) return 'Preparing kernels…';
    return `Running case ${Math.min(finished + 1, s.cases.length)} of ${s.cases.length}…`;
  }
  const sum = s.summary!;
  if (sum.total === 0) return 'No self-test cases are registered.';
  if (sum.failed === 0) {
    return `${sum.total === 1 ? 'The 1 case' : `All ${sum.total} cases`} passed in ${formatSeconds(sum.ms)}.`;
  }
  return `${sum.failed} of ${sum.total} cases failed (${sum.passed} passed) in ${formatSeconds(sum.ms)}.`;
}

export function SelfTestPanel({ state, canRun, onRun }: Props) {
  const running = state.status === 'running';
  const finished = state.results.filter((r) => r !== undefined).length;
  const outcome =
    state.status === 'done' ? (state.summary!.failed === 0 && state.summary!.total > 0 ? 'pass' : 'fail') : state.status === 'error' ? 'fail' : 'none';
  return (
    <section className="card wide" aria-labelledby="selftest-title" data-testid="selftest">
      <div className="card-head">
        <div>
          <h2 id="selftest-title">Kernel self-test</h2>
          <p className={`summary ${outcome}`} role="status" aria-live="polite" data-testid="selftest-summary" data-state={state.status} data-outcome={outcome}>
            {summaryText(state)}
          </p>
        </div>
        <button type="button" className="button primary" onClick={onRun} disabled={!canRun || running} aria-busy={running}>
          {running ? 'Running…' : state.status === 'idle' ? 'Run kernel self-test' : 'Run again'}
        </button>
      </div>

      {state.cases.length > 0 && (
        <>
          <div
            className="progress"
            role="progressbar"
            aria-label="Self-test progress"
            aria-valuemin={0}
            aria-valuemax={state.cases.length}
            aria-valuenow={finished}
          >
            <div className={`progress-bar ${outcome}`} style={{ width: `${(100 * finished) / state.cases.length}%` }} />
          </div>
          <ScrollTable className="results" testId="selftest-table">
            <caption className="visually-hidden">Self-test results per kernel case</caption>
            <TableHead columns={['Family', 'Case', { num: 'Max rel. error' }, { num: 'Bound' }, 'Result', { num: 'ms' }]} />
            <tbody>
              {state.cases.map((c, i) => {
                const r = state.results[i];
                const status = r ? (r.passed ? 'pass' : 'fail') : state.current === i && running ? 'running' : 'queued';
                return (
                  <tr key={`${c.family}/${c.name}`} data-testid="selftest-row" data-status={status}>
                    <td className="family">{c.family}</td>
                    <th scope="row" className="case-name">
                      {c.name}
                      {r?.message && <span className="hint error-text">{r.message}</span>}
                    </th>
                    <td className={r && !r.passed ? 'num mono error-text' : 'num mono'}>{r ? formatError(r.error) : ''}</td>
                    <td className="num mono muted">{formatBound(c.tol)}</td>
                    <td>
                      <span className={`status ${status}`}>
                        {status === 'pass' ? 'Pass' : status === 'fail' ? 'Fail' : status === 'running' ? 'Running' : 'Queued'}
                      </span>
                    </td>
                    <td className="num mono">{r ? formatMs(r.ms) : ''}</td>
                  </tr>
                );
              })}
            </tbody>
          </ScrollTable>
        </>
      )}
    </section>
  );
}
