// The flags the train and generate suites read, their defaults and their parsing: one home for
// `npm run bench` (run.ts) and the PEFT peer's cases (report.ts), which must build the same cases.
import type { WeightDtype } from '../src/model/weights';
import { parseModelSpec, type ModelSpec } from './train';

/** parseArgs options of the train and generate suites. */
export const SUITE_OPTIONS = {
  models: { type: 'string' },
  layers: { type: 'string' },
  shapes: { type: 'string', default: '1x128' },
  dtype: { type: 'string', default: 'f16' },
  rank: { type: 'string', default: '16' },
  steps: { type: 'string', default: '3' },
  prompt: { type: 'string', default: '64' },
  'new-tokens': { type: 'string', default: '32' },
  reps: { type: 'string', default: '3' },
} as const;

/** The models each suite runs when --models is not given. */
export const DEFAULT_MODELS = { train: 'tiny,smollm2-135m:2', generate: 'tiny,smollm2-135m' } as const;

export function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
}

export function weightDtype(v: string): WeightDtype {
  if (v !== 'f16' && v !== 'f32') throw new Error(`--dtype must be f16 or f32, got '${v}'`);
  return v;
}

/** --layers: every model cut to this many blocks, or undefined for the models' own. */
export function layersOption(v: string | undefined): number | undefined {
  return v === undefined ? undefined : positiveInt('layers', v);
}

/** A comma-separated model list, each model cut to `layers` blocks when given. */
export function modelList(list: string, layers: number | undefined): ModelSpec[] {
  return list.split(',').map((s) => {
    const spec = parseModelSpec(s.trim());
    return layers === undefined ? spec : { ...spec, layers };
  });
}
