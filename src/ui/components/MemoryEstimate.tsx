// The job form's memory line: the estimated peak GPU memory of the job (from the worker's
// preview) against the budget, its parts, and what does not fit. WebGPU does not report how much
// memory a GPU has, so the budget is labelled an estimate with where it came from.
import { useState } from 'react';
import type { JobMemoryCheck, MemoryProblem } from '../../worker/trainingProtocol';
import { formatBytes, formatCompact } from '../format';
import './MemoryEstimate.css';

export interface MemoryPart {
  label: string;
  bytes: number;
  detail: string;
}

/** The estimate in the parts the form lists: weights, adapter and optimizer, activations, the rest. */
export function memoryParts(m: JobMemoryCheck): MemoryPart[] {
  const e = m.estimate;
  return [
    { label: 'Base weights', bytes: e.weightsBytes, detail: `${m.dtype}, frozen` },
    { label: 'LoRA + optimizer', bytes: e.loraBytes, detail: `${formatCompact(e.loraParameters)} parameters: weights, gradients, AdamW moments (f32)` },
    {
      label: 'Activations',
      bytes: e.residualBytes + e.layerScratchBytes + e.keptActivationsBytes + e.logitsBytes,
      detail: `batch ${m.batch} × ${m.seq} tokens; ${e.recompute === 'never' ? 'kept for the backward' : e.keptLayers > 0 ? `${e.keptLayers} layers' kept, the others recomputed in the backward to fit the budget` : 'recomputed per layer in the backward to fit the budget'}`,
    },
    { label: 'Other', bytes: e.optimizerScratchBytes + e.kernelParamsBytes, detail: 'gradient-norm scratch and kernel parameters' },
  ];
}

/** Where the budget comes from, in words. */
export function budgetSource(m: JobMemoryCheck): string {
  const limits = m.limits.limitsFrom === 'device' ? "buffer limits from this GPU's adapter" : 'no GPU open: buffer limits are WebGPU defaults';
  const budget = m.limits.budgetFrom === 'device-memory' ? "budget is half this machine's memory (navigator.deviceMemory)" : 'budget is a default, as this browser does not say how much memory the machine has';
  return `Estimate: WebGPU does not report GPU memory; the ${budget}; ${limits}.`;
}

/** Short names of the problems; the full explanations are in the form's reasons list. */
export const PROBLEM_LABELS: Record<MemoryProblem['kind'], string> = {
  buffer: 'A buffer is over maxBufferSize',
  binding: 'A tensor is over maxStorageBufferBindingSize',
  total: 'Over the memory budget',
};

export function MemoryEstimate({ memory, pending = false }: { memory: JobMemoryCheck | null; pending?: boolean }) {
  // While a new preview is worked out the last one stays, dimmed, so the summary does not jump.
  const [last, setLast] = useState<JobMemoryCheck | null>(memory);
  if (memory !== null && memory !== last) setLast(memory);
  const shown = memory ?? (pending ? last : null);
  if (!shown) {
    return (
      <div className="memory-estimate" data-testid="memory-estimate" data-state="none">
        <div className="memory-head">
          <span className="label">Memory</span>
          <span className="muted">–</span>
        </div>
      </div>
    );
  }
  const over = shown.problems.length > 0;
  const { totalBytes, largestBufferBytes, largestBindingBytes } = shown.estimate;
  const { budgetBytes, maxBufferSize, maxStorageBufferBindingSize } = shown.limits;
  return (
    <div className={`memory-estimate${over ? ' over' : ''}${memory === null ? ' stale' : ''}`} data-testid="memory-estimate" data-state={over ? 'over' : 'ok'} aria-busy={memory === null ? true : undefined}>
      <div className="memory-head">
        <span className="label">Memory</span>
        <span data-testid="memory-total">
          ≈ {formatBytes(totalBytes)} <span className="muted">of ~{formatBytes(budgetBytes)}</span>
        </span>
      </div>
      <ul className="memory-parts" aria-label="Memory estimate by part">
        {memoryParts(shown).map((p) => (
          <li key={p.label} title={p.detail}>
            <span>{p.label}</span>
            <span className="mono">{formatBytes(p.bytes)}</span>
          </li>
        ))}
        {[
          { label: 'Largest buffer', bytes: largestBufferBytes, limit: maxBufferSize, limitName: 'maxBufferSize', testId: 'memory-largest-buffer', what: 'The largest single GPU buffer' },
          { label: 'Largest binding', bytes: largestBindingBytes, limit: maxStorageBufferBindingSize, limitName: 'maxStorageBufferBindingSize', testId: 'memory-largest-binding', what: 'The largest buffer a kernel binds whole' },
        ].map((l) => (
          <li key={l.label} title={`${l.what}, against the adapter's ${l.limitName}`}>
            <span>{l.label}</span>
            <span className="mono" data-testid={l.testId}>
              {formatBytes(l.bytes)} of {formatBytes(l.limit)}
            </span>
          </li>
        ))}
      </ul>
      {over && (
        <ul className="memory-problems" data-testid="memory-problems">
          {shown.problems.map((p) => (
            <li key={p.kind} title={p.message}>
              {PROBLEM_LABELS[p.kind]}
            </li>
          ))}
        </ul>
      )}
      <p className="muted small memory-note">{budgetSource(shown)}</p>
    </div>
  );
}
