// Hyperparameters as the job page and the comparison show them: resolved values, marked when an
// auto rule chose them.
import type { HyperparameterRequest, Hyperparameters } from '../../train/hyperparameters';
import type { JobRecord } from '../../worker/trainingProtocol';
import { formatCount, formatReal } from '../format';

export interface HpRow {
  key: string;
  label: string;
  /** Field names of the request the row comes from (for the auto mark). */
  fields: (keyof HyperparameterRequest)[];
  value: (h: Hyperparameters) => string;
  requested: (r: HyperparameterRequest) => string | null;
}

const given = (v: unknown): string | null => (v === undefined || v === 'auto' ? null : Array.isArray(v) ? v.join(', ') : typeof v === 'number' ? formatReal(v) : String(v));

export const HP_ROWS: HpRow[] = [
  { key: 'epochs', label: 'Epochs', fields: ['epochs'], value: (h) => String(h.epochs), requested: (r) => given(r.epochs) },
  { key: 'batch', label: 'Batch size', fields: ['batchSize'], value: (h) => String(h.batchSize), requested: (r) => given(r.batchSize) },
  { key: 'accum', label: 'Gradient accumulation', fields: ['gradientAccumulation'], value: (h) => String(h.gradientAccumulation), requested: (r) => given(r.gradientAccumulation) },
  { key: 'lr', label: 'Learning rate', fields: ['learningRate', 'learningRateMultiplier'], value: (h) => `${formatReal(h.learningRate)} (×${formatReal(h.learningRateMultiplier)})`, requested: (r) => given(r.learningRate) ?? (given(r.learningRateMultiplier) ? `×${given(r.learningRateMultiplier)}` : null) },
  { key: 'schedule', label: 'Schedule', fields: ['schedule'], value: (h) => h.schedule, requested: (r) => given(r.schedule) },
  { key: 'warmup', label: 'Warmup steps', fields: ['warmupSteps', 'warmupRatio'], value: (h) => `${h.warmupSteps}${h.warmupRatio !== null ? ` (${formatReal(h.warmupRatio)} of steps)` : ''}`, requested: (r) => given(r.warmupSteps) ?? given(r.warmupRatio) },
  { key: 'wd', label: 'Weight decay', fields: ['weightDecay'], value: (h) => formatReal(h.weightDecay), requested: (r) => given(r.weightDecay) },
  { key: 'clip', label: 'Max grad norm', fields: ['maxGradNorm'], value: (h) => (h.maxGradNorm === 0 ? 'off' : formatReal(h.maxGradNorm)), requested: (r) => given(r.maxGradNorm) },
  { key: 'seq', label: 'Max sequence length', fields: ['maxSeqLen'], value: (h) => formatCount(h.maxSeqLen), requested: (r) => given(r.maxSeqLen) },
  { key: 'seed', label: 'Seed', fields: ['seed'], value: (h) => String(h.seed), requested: (r) => given(r.seed) },
  { key: 'r', label: 'LoRA rank', fields: ['loraR'], value: (h) => String(h.lora.r), requested: (r) => given(r.loraR) },
  { key: 'alpha', label: 'LoRA alpha', fields: ['loraAlpha'], value: (h) => formatReal(h.lora.alpha), requested: (r) => given(r.loraAlpha) },
  { key: 'dropout', label: 'LoRA dropout', fields: ['loraDropout'], value: (h) => formatReal(h.lora.dropout), requested: (r) => given(r.loraDropout) },
  { key: 'targets', label: 'Target modules', fields: ['targetModules'], value: (h) => h.lora.targetModules.join(', '), requested: (r) => given(r.targetModules) },
  { key: 'rslora', label: 'rsLoRA', fields: ['useRslora'], value: (h) => (h.lora.useRslora ? 'on' : 'off'), requested: (r) => (r.useRslora === undefined || r.useRslora === 'auto' ? null : r.useRslora ? 'on' : 'off') },
  { key: 'eval', label: 'Validation every', fields: ['evalEvery'], value: (h) => (h.evalEvery === 1 ? 'every step' : `${h.evalEvery} steps`), requested: (r) => given(r.evalEvery) },
  { key: 'steps', label: 'Total steps', fields: [], value: (h) => `${formatCount(h.totalSteps)} (${formatCount(h.stepsPerEpoch)} per epoch)`, requested: () => null },
];

/** The value shown for a row: resolved when known, else what was asked ('auto' when nothing). */
export function hpCell(row: HpRow, job: Pick<JobRecord, 'hyperparameters'>): { text: string; auto: boolean } {
  const { requested, resolved } = job.hyperparameters;
  if (resolved) return { text: row.value(resolved), auto: row.fields.length > 0 && row.fields.every((f) => resolved.auto.includes(f)) };
  const r = row.requested(requested);
  return { text: r ?? (row.fields.length ? 'auto' : '–'), auto: r === null && row.fields.length > 0 };
}

/** How often a job saves a checkpoint besides each epoch's end. */
function checkpointCadence(job: Pick<JobRecord, 'checkpointEvery'>): string {
  return job.checkpointEvery ? `every ${formatCount(job.checkpointEvery)} steps and each epoch` : 'each epoch';
}

export function HyperparameterList({ job }: { job: JobRecord }) {
  return (
    <dl className="kv hp-list" data-testid="hyperparameters">
      {HP_ROWS.map((row) => {
        const c = hpCell(row, job);
        return (
          <div className="kv-row" key={row.key}>
            <dt>{row.label}</dt>
            <dd>
              <span className="mono">{c.text}</span>
              {c.auto && <span className="tag">auto</span>}
            </dd>
          </div>
        );
      })}
      <div className="kv-row">
        <dt>Checkpoints</dt>
        <dd>
          <span className="mono" data-testid="checkpoint-cadence">
            {checkpointCadence(job)}
          </span>
        </dd>
      </div>
    </dl>
  );
}
