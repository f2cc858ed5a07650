// Benchmarks in the tab: the kernels suite of `npm run bench` (src/bench/kernels.ts) run by a worker
// with its own GPU device, shown as a table, and downloadable as the same JSON the CLI writes.
import { useEffect, useRef, useState } from 'react';
import type { BenchEvent, BenchRequest, BenchRow, KernelPreset } from '../../../worker/benchProtocol';
import { saveBlob } from '../../download';
import { TableHead } from '../../components/TableHead';
import { savedKernelChoice } from '../../kernelPlan';
import { ScrollTable } from '../../components/ScrollTable';

/** The part of a Worker the panel uses, so tests can hand in a fake. */
export interface BenchWorkerLike {
  postMessage(message: BenchRequest): void;
  onmessage: ((ev: MessageEvent<BenchEvent>) => void) | null;
  onerror: ((ev: ErrorEvent) => void) | null;
  terminate(): void;
}

function defaultWorker(): BenchWorkerLike {
  return new Worker(new URL('../../../worker/bench.worker.ts', import.meta.url), { type: 'module', name: 'whittle-bench' }) as unknown as BenchWorkerLike;
}

const PRESET_LABELS: Record<KernelPreset, string> = {
  tiny: 'Tiny shapes (seconds, any device)',
  small: 'SmolLM2-135M widths, 128 tokens',
  full: 'SmolLM2-135M widths, 512 tokens (as the CLI)',
};
// From the labels, not src/bench/kernels.ts: importing its values would pull every kernel into the page's bundle.
const PRESETS = Object.keys(PRESET_LABELS) as KernelPreset[];

export type BenchState =
  | { status: 'idle' }
  | { status: 'running'; progress: string }
  | { status: 'done'; rows: BenchRow[]; json: string; adapter: string; seconds: number; kernels: string; preset: KernelPreset }
  | { status: 'error'; message: string };

/** The download's file name, as the CLI names its files: kernels-<preset>-<YYYY-MM-DD>.json. */
export function benchFileName(preset: KernelPreset, date: Date): string {
  return `kernels-${preset}-${date.toISOString().slice(0, 10)}.json`;
}

function fmt(v: number | undefined, digits: number): string {
  return v === undefined || !Number.isFinite(v) ? '' : v.toFixed(digits);
}

export function BenchPanel({ createWorker = defaultWorker }: { createWorker?: () => BenchWorkerLike }) {
  const [preset, setPreset] = useState<KernelPreset>('tiny');
  const [state, setState] = useState<BenchState>({ status: 'idle' });
  const worker = useRef<BenchWorkerLike | null>(null);
  const runPreset = useRef<KernelPreset>('tiny');

  useEffect(
    () => () => {
      worker.current?.terminate();
      worker.current = null;
    },
    [],
  );

  const run = () => {
    if (!worker.current) {
      const w = createWorker();
      w.onmessage = (ev) => {
        const e = ev.data;
        if (e.type === 'progress') setState({ status: 'running', progress: e.message });
        else if (e.type === 'done') setState({ status: 'done', rows: e.rows, json: e.json, adapter: e.adapter, seconds: e.seconds, kernels: e.kernels, preset: runPreset.current });
        else setState({ status: 'error', message: e.message });
      };
      w.onerror = (ev) => setState({ status: 'error', message: ev.message || 'the benchmark worker failed to start' });
      worker.current = w;
    }
    runPreset.current = preset;
    setState({ status: 'running', progress: 'Starting…' });
    worker.current.postMessage({ type: 'run-kernels', preset, kernels: savedKernelChoice() });
  };

  const running = state.status === 'running';
  const summary =
    state.status === 'idle'
      ? (
          <>
            Times matmul, attention and the LoRA linear layer (fused and unfused) on this GPU, as <code>npm run bench -- kernels</code> does.
          </>
        )
      : state.status === 'running'
        ? state.progress
        : state.status === 'error'
          ? `The benchmark stopped: ${state.message}`
          : `${state.rows.length} cases in ${state.seconds.toFixed(1)} s on ${state.adapter}, ${state.kernels} kernels.`;

  return (
    <section className="card wide" aria-labelledby="bench-title" data-testid="bench">
      <div className="card-head">
        <div>
          <h2 id="bench-title">Benchmarks</h2>
          <p className="summary" role="status" aria-live="polite" data-testid="bench-summary" data-state={state.status}>
            {summary}
          </p>
        </div>
        {/* Buttons on the select's baseline, not its label's. */}
        <div className="button-row" style={{ alignItems: 'flex-end' }}>
          <label className="field">
            <span className="label">Shapes</span>
            <select value={preset} onChange={(e) => setPreset(e.target.value as KernelPreset)} disabled={running} data-testid="bench-preset">
              {PRESETS.map((p) => (
                <option key={p} value={p}>
                  {PRESET_LABELS[p]}
                </option>
              ))}
            </select>
          </label>
          <button type="button" className="button primary" onClick={run} disabled={running} aria-busy={running}>
            {running ? 'Running…' : 'Run benchmarks'}
          </button>
          {state.status === 'done' && (
            <button
              type="button"
              className="button"
              onClick={() => saveBlob(new Blob([state.json], { type: 'application/json' }), benchFileName(state.preset, new Date()))}
            >
              Download JSON
            </button>
          )}
        </div>
      </div>
      {state.status === 'done' && (
        <ScrollTable className="results" testId="bench-table">
          <caption className="visually-hidden">Kernel benchmark results: median GPU time per case</caption>
          <TableHead columns={['Case', { num: 'ms' }, { num: 'GFLOP/s' }, { num: 'of FMA peak', title: "GFLOP/s over the FMA probe's: the share of this device's peak f32 arithmetic a kernel uses" }, 'Note']} />
          <tbody>
            {state.rows.map((r) => (
              <tr key={r.name} data-testid="bench-row">
                <th scope="row" className="case-name">
                  {r.name}
                </th>
                <td className="num mono">{fmt(r.ms, 3)}</td>
                <td className="num mono">{fmt(r.gflops, 2)}</td>
                <td className="num mono">{r.peakShare === undefined ? '' : `${(100 * r.peakShare).toFixed(1)}%`}</td>
                <td className="muted">{r.note ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </ScrollTable>
      )}
    </section>
  );
}
