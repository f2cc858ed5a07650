// whittle_finetune.json: fine-tuning settings a model folder may recommend for itself (the
// settings its author measured to work), which the 'auto' hyperparameter rules then use in place
// of their generic defaults. Optional; when present it is checked field by field, so a typo is an
// error naming the file and the field, never a silently ignored setting.

export const FINETUNE_SETTINGS_FILE = 'whittle_finetune.json';

export interface FinetuneSettings {
  learningRate: number;
  loraR: number;
  loraAlpha: number;
  epochs?: number;
  batchSize?: number;
  targetModules?: string[];
}

export class FinetuneSettingsError extends Error {
  override name = 'FinetuneSettingsError';
  readonly file = FINETUNE_SETTINGS_FILE;
}

const KNOWN = ['learning_rate', 'lora_r', 'lora_alpha', 'epochs', 'batch_size', 'target_modules'];

function fail(message: string): never {
  throw new FinetuneSettingsError(`${FINETUNE_SETTINGS_FILE}: ${message}`);
}

function positive(o: Record<string, unknown>, key: string, integer: boolean): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    fail(`"${key}" must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Checks the parsed file; throws FinetuneSettingsError naming the field that is wrong. */
export function parseFinetuneSettings(json: unknown): FinetuneSettings {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('must be a JSON object');
  const o = json as Record<string, unknown>;
  const unknownKeys = Object.keys(o).filter((k) => !KNOWN.includes(k));
  if (unknownKeys.length) fail(`unknown field${unknownKeys.length > 1 ? 's' : ''} ${unknownKeys.map((k) => `"${k}"`).join(', ')} (known: ${KNOWN.join(', ')})`);
  for (const k of ['learning_rate', 'lora_r', 'lora_alpha']) if (!(k in o)) fail(`"${k}" is required`);
  const settings: FinetuneSettings = {
    learningRate: positive(o, 'learning_rate', false),
    loraR: positive(o, 'lora_r', true),
    loraAlpha: positive(o, 'lora_alpha', false),
  };
  if (settings.learningRate >= 1) fail(`"learning_rate" must be below 1, got ${settings.learningRate}`);
  if ('epochs' in o) settings.epochs = positive(o, 'epochs', true);
  if ('batch_size' in o) settings.batchSize = positive(o, 'batch_size', true);
  if ('target_modules' in o) {
    const t = o.target_modules;
    if (!Array.isArray(t) || t.length === 0 || !t.every((m) => typeof m === 'string' && m.length > 0)) {
      fail(`"target_modules" must be a non-empty list of module names, got ${JSON.stringify(t)}`);
    }
    settings.targetModules = [...(t as string[])];
  }
  return settings;
}
