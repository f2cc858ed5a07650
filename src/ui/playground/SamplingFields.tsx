// The playground's sampling settings (shared by all panes, or one set per pane), and the hint
// that explains why a small model's sampled text is noisy.
import { SMALL_MODEL_TEMPERATURE_HINT } from '../tinyModel';

export interface Sampling {
  temperature: number;
  topP: number;
  maxTokens: number;
  /** null: a new random seed per run. */
  seed: number | null;
}

export function SamplingFields({
  value,
  onChange,
  idPrefix,
  disabled,
  smallModel,
}: {
  value: Sampling;
  onChange: (s: Sampling) => void;
  idPrefix: string;
  disabled?: boolean;
  /** A small model: greedy decoding shows its fine-tune; a temperature above 0 gets a hint why not. */
  smallModel?: boolean;
}) {
  return (
    <div className="sampling" role="group" aria-label="Sampling settings">
      <label className="field tiny" htmlFor={`${idPrefix}-t`}>
        <span className="label">Temperature</span>
        <input id={`${idPrefix}-t`} type="number" min={0} max={2} step={0.05} value={value.temperature} disabled={disabled} onChange={(e) => onChange({ ...value, temperature: Math.max(0, Number(e.target.value)) })} />
      </label>
      <label className="field tiny" htmlFor={`${idPrefix}-p`}>
        <span className="label">Top-p</span>
        <input id={`${idPrefix}-p`} type="number" min={0.01} max={1} step={0.01} value={value.topP} disabled={disabled} onChange={(e) => onChange({ ...value, topP: Math.min(1, Math.max(0.01, Number(e.target.value))) })} />
      </label>
      <label className="field tiny" htmlFor={`${idPrefix}-m`}>
        <span className="label">Max tokens</span>
        <input id={`${idPrefix}-m`} type="number" min={1} max={4096} step={1} value={value.maxTokens} disabled={disabled} onChange={(e) => onChange({ ...value, maxTokens: Math.max(1, Math.round(Number(e.target.value))) })} />
      </label>
      <label className="field tiny" htmlFor={`${idPrefix}-s`}>
        <span className="label">Seed</span>
        <input
          id={`${idPrefix}-s`}
          type="text"
          inputMode="numeric"
          placeholder="random"
          value={value.seed ?? ''}
          disabled={disabled}
          onChange={(e) => {
            const t = e.target.value.trim();
            const n = Number(t);
            onChange({ ...value, seed: t === '' || !Number.isInteger(n) || n < 0 ? null : n });
          }}
        />
      </label>
      {smallModel && value.temperature > 0 && (
        <p className="hint sampling-hint" data-testid="temperature-hint">
          {SMALL_MODEL_TEMPERATURE_HINT}
        </p>
      )}
    </div>
  );
}
