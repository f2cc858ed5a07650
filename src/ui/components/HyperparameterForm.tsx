// Hyperparameter inputs: empty means 'auto' (the worker's rules choose, and the preview shows
// what they chose). Values are checked here as they are typed, so the form explains a bad value
// before Create is enabled; the worker checks them again.
import { useId } from 'react';
import type { HyperparameterRequest, Hyperparameters } from '../../train/hyperparameters';
import { formatReal } from '../format';

type NumericKey = Exclude<keyof HyperparameterRequest, 'schedule' | 'targetModules' | 'useRslora'>;

export interface NumericField {
  key: NumericKey;
  label: string;
  kind: 'int' | 'real';
  check: (v: number) => boolean;
  rule: string;
  help: string;
  shown: (h: Hyperparameters) => string;
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => (v: number) => Number.isInteger(v) && v >= min && v <= max;

export const BASIC_FIELDS: NumericField[] = [
  { key: 'epochs', label: 'Epochs', kind: 'int', check: int(1, 1000), rule: 'a whole number from 1 to 1000', help: 'Passes over the training set. Auto: 3, more for small sets, fewer for large ones.', shown: (h) => String(h.epochs) },
  { key: 'batchSize', label: 'Batch size', kind: 'int', check: int(1, 4096), rule: 'a whole number from 1 to 4096', help: 'Examples per forward/backward pass. Auto: about 0.2% of the examples, 1 to 8.', shown: (h) => String(h.batchSize) },
  { key: 'learningRateMultiplier', label: 'Learning-rate multiplier', kind: 'real', check: (v) => v > 0, rule: 'a number above 0', help: 'Scales the auto learning rate (the model\u2019s recommendation, else 2e-4 x 4096 / hidden size), as OpenAI\u2019s learning_rate_multiplier does.', shown: (h) => formatReal(h.learningRateMultiplier) },
];

export const ADVANCED_FIELDS: NumericField[] = [
  { key: 'learningRate', label: 'Learning rate', kind: 'real', check: (v) => v > 0, rule: 'a number above 0', help: 'Peak learning rate; replaces the multiplier when set.', shown: (h) => formatReal(h.learningRate) },
  { key: 'gradientAccumulation', label: 'Gradient accumulation', kind: 'int', check: int(1, 4096), rule: 'a whole number from 1 to 4096', help: 'Passes per optimizer step (effective batch = batch × this).', shown: (h) => String(h.gradientAccumulation) },
  { key: 'warmupRatio', label: 'Warmup ratio', kind: 'real', check: (v) => v >= 0 && v < 1, rule: 'a number from 0 up to (not including) 1', help: 'Share of steps spent warming up. Auto: 0.03.', shown: (h) => (h.warmupRatio === null ? '–' : formatReal(h.warmupRatio)) },
  { key: 'warmupSteps', label: 'Warmup steps', kind: 'int', check: int(0), rule: 'a whole number, 0 or more', help: 'Warmup in steps; wins over the ratio.', shown: (h) => String(h.warmupSteps) },
  { key: 'weightDecay', label: 'Weight decay', kind: 'real', check: (v) => v >= 0, rule: '0 or more', help: 'AdamW decoupled weight decay. Auto: 0.', shown: (h) => formatReal(h.weightDecay) },
  { key: 'maxGradNorm', label: 'Max grad norm', kind: 'real', check: (v) => v >= 0, rule: '0 or more (0 turns clipping off)', help: 'Clip gradients to this global norm. Auto: 1.', shown: (h) => formatReal(h.maxGradNorm) },
  { key: 'maxSeqLen', label: 'Max sequence length', kind: 'int', check: int(2), rule: 'a whole number, 2 or more', help: 'Longer examples are cut from the end. Auto: the longest example, at most 1024 and the context.', shown: (h) => String(h.maxSeqLen) },
  { key: 'seed', label: 'Seed', kind: 'int', check: int(0, 2 ** 31 - 1), rule: 'a whole number from 0 to 2147483647', help: 'Fixes LoRA initialisation, data order and dropout. Auto: random, recorded with the job.', shown: (h) => (h.auto.includes('seed') ? 'random' : String(h.seed)) },
  { key: 'evalEvery', label: 'Validation every (steps)', kind: 'int', check: int(1), rule: 'a whole number, 1 or more', help: 'A small validation batch this often; a full pass ends every epoch. Auto: about 20 per job.', shown: (h) => String(h.evalEvery) },
];

export const LORA_FIELDS: NumericField[] = [
  { key: 'loraR', label: 'Rank r', kind: 'int', check: int(1, 1024), rule: 'a whole number from 1 to 1024', help: 'Rank of the A and B matrices. Auto: 8.', shown: (h) => String(h.lora.r) },
  { key: 'loraAlpha', label: 'Alpha', kind: 'real', check: (v) => v > 0, rule: 'a number above 0', help: 'Scale alpha / r (alpha / √r with rsLoRA). Auto: 2 × r.', shown: (h) => formatReal(h.lora.alpha) },
  { key: 'loraDropout', label: 'Dropout', kind: 'real', check: (v) => v >= 0 && v < 1, rule: 'a number from 0 up to (not including) 1', help: 'Dropout on the LoRA input while training. Auto: 0.05.', shown: (h) => formatReal(h.lora.dropout) },
];

export const ALL_FIELDS = [...BASIC_FIELDS, ...ADVANCED_FIELDS, ...LORA_FIELDS];

export const TARGET_MODULES: Record<'llama' | 'gpt2', string[]> = {
  llama: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  gpt2: ['c_attn', 'c_proj', 'c_fc'],
};

export interface HpForm {
  numbers: Partial<Record<NumericKey, string>>;
  schedule: 'auto' | 'constant' | 'linear' | 'cosine';
  /** null: auto (all linear layers). */
  targetModules: string[] | null;
  useRslora: 'auto' | 'on' | 'off';
  dtype: 'auto' | 'f32' | 'f16';
  /** Steps between extra checkpoints, as typed (empty: at epoch ends only). A job setting, not a hyperparameter. */
  checkpointEvery?: string;
}

export const EMPTY_FORM: HpForm = { numbers: {}, schedule: 'auto', targetModules: null, useRslora: 'auto', dtype: 'auto' };

/** The request a form describes, and what is wrong with it, by field. */
export function parseForm(form: HpForm): { request: HyperparameterRequest; errors: Partial<Record<keyof HyperparameterRequest, string>> } {
  const request: HyperparameterRequest = {};
  const errors: Partial<Record<keyof HyperparameterRequest, string>> = {};
  for (const f of ALL_FIELDS) {
    const text = (form.numbers[f.key] ?? '').trim();
    if (text === '' || text.toLowerCase() === 'auto') continue;
    const v = Number(text);
    if (!Number.isFinite(v) || !f.check(v)) errors[f.key] = `${f.label} must be ${f.rule}.`;
    else request[f.key] = v;
  }
  if (form.schedule !== 'auto') request.schedule = form.schedule;
  if (form.targetModules !== null) {
    if (form.targetModules.length === 0) errors.targetModules = 'Pick at least one target module (or leave all for auto).';
    else request.targetModules = form.targetModules;
  }
  if (form.useRslora !== 'auto') request.useRslora = form.useRslora === 'on';
  return { request, errors };
}

/** The checkpoint cadence a form asks for: null for none (epoch ends only), or what is wrong with it. */
export function parseCheckpointEvery(form: HpForm): { value: number | null; error: string | null } {
  const text = (form.checkpointEvery ?? '').trim();
  if (text === '') return { value: null, error: null };
  const v = Number(text);
  return int(1)(v) ? { value: v, error: null } : { value: null, error: 'Checkpoint every must be a whole number of steps, 1 or more (or empty: each epoch).' };
}

/**
 * The form for a model of `family`: custom target modules named after another family's layers
 * (none of which it has) go back to auto, rather than staying picked but unticked.
 */
export function formForFamily(form: HpForm, family: 'llama' | 'gpt2'): HpForm {
  const names = TARGET_MODULES[family];
  return form.targetModules !== null && form.targetModules.some((m) => !names.includes(m)) ? { ...form, targetModules: null } : form;
}

/** A form showing a request again (rerun). */
export function formFromRequest(r: HyperparameterRequest, dtype: HpForm['dtype']): HpForm {
  const numbers: HpForm['numbers'] = {};
  for (const f of ALL_FIELDS) {
    const v = r[f.key];
    if (typeof v === 'number') numbers[f.key] = String(v);
  }
  return {
    numbers,
    schedule: r.schedule === undefined || r.schedule === 'auto' ? 'auto' : r.schedule,
    targetModules: Array.isArray(r.targetModules) ? r.targetModules : null,
    useRslora: r.useRslora === undefined || r.useRslora === 'auto' ? 'auto' : r.useRslora ? 'on' : 'off',
    dtype,
  };
}

interface Props {
  form: HpForm;
  onChange: (f: HpForm) => void;
  errors: Partial<Record<keyof HyperparameterRequest, string>>;
  preview: Hyperparameters | null;
  family: 'llama' | 'gpt2';
}

function NumberInput({ f, form, onChange, error, preview }: { f: NumericField; form: HpForm; onChange: (f: HpForm) => void; error?: string; preview: Hyperparameters | null }) {
  const id = useId();
  const value = form.numbers[f.key] ?? '';
  return (
    <div className="field">
      <label htmlFor={id} className="label">
        {f.label}
      </label>
      <input
        id={id}
        type="text"
        inputMode={f.kind === 'int' ? 'numeric' : 'decimal'}
        value={value}
        placeholder={preview ? `auto · ${f.shown(preview)}` : 'auto'}
        onChange={(e) => onChange({ ...form, numbers: { ...form.numbers, [f.key]: e.target.value } })}
        aria-invalid={error ? true : undefined}
        aria-describedby={`${id}-help${error ? ` ${id}-error` : ''}`}
        data-testid={`hp-${f.key}`}
        spellCheck={false}
        autoComplete="off"
      />
      <span id={`${id}-help`} className="hint">
        {f.help}
      </span>
      {error && (
        <span id={`${id}-error`} className="field-error">
          {error}
        </span>
      )}
    </div>
  );
}

export function HyperparameterForm({ form, onChange, errors, preview, family }: Props) {
  const modules = TARGET_MODULES[family];
  const targets = form.targetModules ?? modules;
  const scheduleId = useId();
  const rsId = useId();
  const dtypeId = useId();
  const checkpointId = useId();
  const checkpointError = parseCheckpointEvery(form).error;
  return (
    <div className="hp-form">
      <div className="field-grid">
        {BASIC_FIELDS.map((f) => (
          <NumberInput key={f.key} f={f} form={form} onChange={onChange} error={errors[f.key]} preview={preview} />
        ))}
      </div>
      <details className="advanced" data-testid="advanced-training">
        <summary>Advanced training settings</summary>
        <div className="field-grid">
          <div className="field">
            <label htmlFor={scheduleId} className="label">
              Schedule
            </label>
            <select id={scheduleId} value={form.schedule} onChange={(e) => onChange({ ...form, schedule: e.target.value as HpForm['schedule'] })}>
              <option value="auto">auto{preview ? ` · ${preview.schedule}` : ''}</option>
              <option value="constant">constant</option>
              <option value="linear">linear decay</option>
              <option value="cosine">cosine decay</option>
            </select>
            <span className="hint">Learning rate after warmup.</span>
          </div>
          {ADVANCED_FIELDS.map((f) => (
            <NumberInput key={f.key} f={f} form={form} onChange={onChange} error={errors[f.key]} preview={preview} />
          ))}
          <div className="field">
            <label htmlFor={dtypeId} className="label">
              Base weights
            </label>
            <select id={dtypeId} value={form.dtype} onChange={(e) => onChange({ ...form, dtype: e.target.value as HpForm['dtype'] })}>
              <option value="auto">auto (f16 when the GPU has shader-f16)</option>
              <option value="f16">f16</option>
              <option value="f32">f32</option>
            </select>
            <span className="hint">LoRA weights, gradients and optimizer state are always f32.</span>
          </div>
          <div className="field">
            <label htmlFor={checkpointId} className="label">
              Checkpoint every (steps)
            </label>
            <input
              id={checkpointId}
              type="text"
              inputMode="numeric"
              value={form.checkpointEvery ?? ''}
              placeholder="each epoch"
              onChange={(e) => onChange({ ...form, checkpointEvery: e.target.value })}
              aria-invalid={checkpointError ? true : undefined}
              aria-describedby={`${checkpointId}-help`}
              data-testid="checkpoint-every"
              spellCheck={false}
              autoComplete="off"
            />
            <span id={`${checkpointId}-help`} className="hint">
              A checkpoint this often as well as at each epoch&rsquo;s end, so a long epoch loses less when the tab closes; the last three are kept. Empty: each epoch.
            </span>
            {checkpointError && <span className="field-error">{checkpointError}</span>}
          </div>
        </div>
      </details>
      <details className="advanced" data-testid="advanced-lora">
        <summary>Advanced LoRA</summary>
        <div className="field-grid">
          {LORA_FIELDS.map((f) => (
            <NumberInput key={f.key} f={f} form={form} onChange={onChange} error={errors[f.key]} preview={preview} />
          ))}
          <div className="field">
            <label htmlFor={rsId} className="label">
              rsLoRA
            </label>
            <select id={rsId} value={form.useRslora} onChange={(e) => onChange({ ...form, useRslora: e.target.value as HpForm['useRslora'] })}>
              <option value="auto">auto · off</option>
              <option value="on">on (alpha / √r)</option>
              <option value="off">off (alpha / r)</option>
            </select>
            <span className="hint">Rank-stabilised scaling.</span>
          </div>
        </div>
        <fieldset className="modules">
          <legend className="label">Target modules {form.targetModules === null && <span className="tag">auto · all linear layers</span>}</legend>
          <div className="module-list">
            {modules.map((m) => (
              <label key={m} className="check">
                <input
                  type="checkbox"
                  checked={targets.includes(m)}
                  onChange={(e) => {
                    const next = e.target.checked ? [...targets, m] : targets.filter((x) => x !== m);
                    const all = modules.every((x) => next.includes(x)) && next.length === modules.length;
                    onChange({ ...form, targetModules: all ? null : modules.filter((x) => next.includes(x)) });
                  }}
                />
                <code>{m}</code>
              </label>
            ))}
          </div>
          {errors.targetModules && <span className="field-error">{errors.targetModules}</span>}
        </fieldset>
      </details>
    </div>
  );
}
