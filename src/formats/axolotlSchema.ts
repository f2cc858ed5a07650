// The Axolotl config schema (the fields Whittle writes or a user is likely to add, with their
// types and allowed values) and a validator for configs against it, so a config Whittle hands to a
// cluster is checked before it leaves. No Node imports.

type FieldType =
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'any'
  | { enum: readonly (string | boolean)[] }
  | { pattern: RegExp }
  | { arrayOf: FieldType; minItems?: number }
  | { mapOf: FieldType }
  | { object: Readonly<Record<string, FieldSpec>> };

export interface FieldSpec {
  /** Accepted types (a union); null is accepted unless `required`. */
  type: FieldType | readonly FieldType[];
  required?: boolean;
}

const str: FieldSpec = { type: 'string' };
const int: FieldSpec = { type: 'integer' };
const num: FieldSpec = { type: 'number' };
const bool: FieldSpec = { type: 'boolean' };
const strList: FieldSpec = { type: { arrayOf: 'string' } };

/** transformers' SchedulerType values, plus Axolotl's own one_cycle and rex (training.py). */
const LR_SCHEDULERS = [
  'linear',
  'cosine',
  'cosine_with_restarts',
  'polynomial',
  'constant',
  'constant_with_warmup',
  'inverse_sqrt',
  'reduce_lr_on_plateau',
  'cosine_with_min_lr',
  'warmup_stable_decay',
  'one_cycle',
  'rex',
] as const;

/** ChatTemplate enum names documented in config.qmd, and `jinja`. */
const CHAT_TEMPLATES = ['tokenizer_default', 'alpaca', 'inst', 'chatml', 'gemma', 'cohere', 'llama3', 'phi_3', 'deepseek_v2', 'jamba', 'jinja'] as const;
const chatTemplateField: FieldSpec = { type: [{ enum: CHAT_TEMPLATES }, { pattern: /^tokenizer_default_fallback_/ }] };

/** SFTDataset (src/axolotl/utils/schemas/datasets.py). */
const SFT_DATASET: Readonly<Record<string, FieldSpec>> = {
  path: str,
  split: str,
  type: { type: ['string', { object: { system_prompt: str, system_format: str, field_system: str, field_instruction: str, field_input: str, field_output: str, format: str, no_input_format: str } }] },
  input_transform: str,
  shards: int,
  shards_idx: int,
  preprocess_shards: int,
  conversation: str,
  chat_template: { type: 'string' },
  chat_template_jinja: str,
  data_files: { type: ['string', { arrayOf: 'string' }] },
  input_format: str,
  name: str,
  ds_type: str,
  field: str,
  field_human: str,
  field_model: str,
  field_messages: str,
  field_tools: str,
  field_thinking: str,
  template_thinking_key: str,
  message_field_role: str,
  message_field_content: str,
  message_property_mappings: { type: { mapOf: 'string' } },
  message_field_training: str,
  message_field_training_detail: str,
  split_thinking: bool,
  logprobs_field: str,
  temperature: num,
  roles_to_train: strList,
  train_on_eos: { type: { enum: ['all', 'turn', 'last'] } },
  roles: { type: { mapOf: { arrayOf: 'string' } } },
  drop_system_message: bool,
  trust_remote_code: bool,
  revision: str,
};

/**
 * The Axolotl config fields Whittle writes or a user is likely to add, with their types and
 * allowed values, transcribed from Axolotl's Pydantic input schema and config reference:
 * axolotl-ai-cloud/axolotl at commit 002a637c (src/axolotl/utils/schemas/config.py,
 * training.py, docs/config.qmd), with peft.py and datasets.py as stored at 00564c8f / 07e83ab8
 * (the LoRA and dataset fields used here are the same in both). Fields outside this list are
 * reported as unknown: in a config Whittle wrote, that is a typo.
 */
export const AXOLOTL_SCHEMA = {
  source: 'axolotl-ai-cloud/axolotl@002a637c: src/axolotl/utils/schemas/{config,training,peft,datasets}.py, docs/config.qmd',
  fields: {
    // model (ModelInputConfig / ModelOutputConfig)
    base_model: { type: 'string', required: true },
    base_model_config: str,
    revision_of_model: str,
    tokenizer_config: str,
    tokenizer_type: str,
    tokenizer_use_fast: bool,
    tokenizer_legacy: bool,
    model_type: str,
    trust_remote_code: bool,
    output_dir: str,
    hub_model_id: str,
    hub_strategy: str,
    // data
    datasets: { type: { arrayOf: { object: SFT_DATASET }, minItems: 1 } },
    test_datasets: { type: { arrayOf: { object: SFT_DATASET }, minItems: 1 } },
    val_set_size: num,
    dataset_prepared_path: str,
    shuffle_merged_datasets: bool,
    dataset_processes: int,
    sequence_len: int,
    sample_packing: bool,
    eval_sample_packing: bool,
    pad_to_sequence_len: bool,
    train_on_inputs: bool,
    group_by_length: bool,
    chat_template: chatTemplateField,
    chat_template_jinja: str,
    eot_tokens: strList,
    default_system_message: str,
    special_tokens: { type: { mapOf: 'string' } },
    tokens: strList,
    // LoRA (peft.py LoraConfig)
    adapter: { type: { enum: ['lora', 'qlora', 'llama-adapter'] } },
    lora_model_dir: str,
    lora_r: int,
    lora_alpha: int,
    lora_dropout: num,
    lora_target_modules: { type: ['string', { arrayOf: 'string' }] },
    lora_target_linear: bool,
    lora_fan_in_fan_out: bool,
    lora_modules_to_save: strList,
    peft_use_rslora: bool,
    peft_use_dora: bool,
    peft_init_lora_weights: { type: ['boolean', 'string'] },
    load_in_8bit: bool,
    load_in_4bit: bool,
    merge_lora: bool,
    // hyperparameters (training.py HyperparametersConfig, config.py)
    gradient_accumulation_steps: int,
    micro_batch_size: int,
    batch_size: int,
    eval_batch_size: int,
    num_epochs: num,
    max_steps: int,
    learning_rate: { type: ['number', 'string'], required: true },
    lr_scheduler: { type: { enum: LR_SCHEDULERS } },
    lr_scheduler_kwargs: { type: { mapOf: 'any' } },
    cosine_min_lr_ratio: num,
    warmup_steps: int,
    warmup_ratio: num,
    weight_decay: num,
    max_grad_norm: num,
    optimizer: str,
    adam_beta1: num,
    adam_beta2: num,
    adam_epsilon: num,
    seed: int,
    // precision, memory
    bf16: { type: [{ enum: ['auto'] }, 'boolean'] },
    fp16: bool,
    tf32: bool,
    gradient_checkpointing: { type: [{ enum: ['offload', 'offload_disk'] }, 'boolean'] },
    flash_attention: bool,
    sdp_attention: bool,
    // evaluation, saving, logging
    eval_steps: num,
    evals_per_epoch: int,
    eval_strategy: str,
    save_steps: num,
    saves_per_epoch: int,
    save_strategy: str,
    save_total_limit: int,
    save_safetensors: bool,
    logging_steps: int,
    early_stopping_patience: int,
    wandb_project: str,
    wandb_entity: str,
    wandb_name: str,
    strict: bool,
  } satisfies Record<string, FieldSpec>,
} as const;

function typeName(t: FieldType): string {
  if (typeof t === 'string') return t;
  if ('enum' in t) return `one of ${t.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  if ('pattern' in t) return `a string matching ${t.pattern}`;
  if ('arrayOf' in t) return `a list of ${typeName(t.arrayOf)}`;
  if ('mapOf' in t) return `a mapping of ${typeName(t.mapOf)}`;
  return 'a mapping';
}

function checkType(value: unknown, t: FieldType, where: string, errors: string[]): boolean {
  if (t === 'any') return true;
  if (t === 'string') return typeof value === 'string';
  if (t === 'integer') return typeof value === 'number' && Number.isInteger(value);
  if (t === 'number') return typeof value === 'number' && Number.isFinite(value);
  if (t === 'boolean') return typeof value === 'boolean';
  if ('enum' in t) return t.enum.includes(value as string | boolean);
  if ('pattern' in t) return typeof value === 'string' && t.pattern.test(value);
  if ('arrayOf' in t) {
    if (!Array.isArray(value)) return false;
    if (t.minItems !== undefined && value.length < t.minItems) {
      errors.push(`${where}: needs at least ${t.minItems} item(s)`);
      return true;
    }
    value.forEach((v, i) => {
      if (!checkType(v, t.arrayOf, `${where}[${i}]`, errors)) errors.push(`${where}[${i}]: expected ${typeName(t.arrayOf)}, got ${JSON.stringify(v)}`);
    });
    return true;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  if ('mapOf' in t) {
    for (const [k, v] of Object.entries(value)) {
      if (!checkType(v, t.mapOf, `${where}.${k}`, errors)) errors.push(`${where}.${k}: expected ${typeName(t.mapOf)}, got ${JSON.stringify(v)}`);
    }
    return true;
  }
  checkObject(value as Record<string, unknown>, t.object, where, errors);
  return true;
}

/** Closest known name within edit distance 2, for "did you mean". */
function suggest(name: string, known: readonly string[]): string | null {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) {
        d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      }
    }
    return d[a.length]![b.length]!;
  };
  let best: string | null = null;
  let bestD = 3;
  for (const k of known) {
    const d = dist(name, k);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

function checkObject(obj: Record<string, unknown>, fields: Readonly<Record<string, FieldSpec>>, where: string, errors: string[]): void {
  const prefix = where ? `${where}.` : '';
  for (const [name, spec] of Object.entries(fields)) {
    if (spec.required && (obj[name] === undefined || obj[name] === null)) errors.push(`${prefix}${name}: required`);
  }
  for (const [name, value] of Object.entries(obj)) {
    const spec = fields[name];
    if (!spec) {
      const near = suggest(name, Object.keys(fields));
      errors.push(`${prefix}${name}: unknown field${near ? ` (did you mean ${near}?)` : ''}`);
      continue;
    }
    if (value === null || value === undefined) continue;
    const types = Array.isArray(spec.type) ? (spec.type as readonly FieldType[]) : [spec.type as FieldType];
    const nested: string[] = [];
    if (!types.some((t) => checkType(value, t, `${prefix}${name}`, nested))) {
      errors.push(`${prefix}${name}: expected ${types.map(typeName).join(' or ')}, got ${JSON.stringify(value)}`);
    }
    errors.push(...nested);
  }
}

/**
 * Checks a parsed Axolotl config against AXOLOTL_SCHEMA and the cross-field rules Axolotl's
 * validators enforce. Returns the problems (empty when the config is valid).
 */
export function validateAxolotlConfig(config: unknown): string[] {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return ['the config is not a mapping'];
  const c = config as Record<string, unknown>;
  const errors: string[] = [];
  checkObject(c, AXOLOTL_SCHEMA.fields, '', errors);
  const set = (k: string) => c[k] !== undefined && c[k] !== null && c[k] !== false && c[k] !== 0;
  if (['micro_batch_size', 'gradient_accumulation_steps', 'batch_size'].filter(set).length < 2) {
    errors.push('at least two of micro_batch_size, gradient_accumulation_steps, batch_size must be set');
  }
  if (set('warmup_steps') && set('warmup_ratio')) errors.push('warmup_steps and warmup_ratio cannot both be set');
  if (set('test_datasets') && set('val_set_size')) errors.push('use either test_datasets or val_set_size, not both');
  if (c.chat_template === 'jinja' && !set('chat_template_jinja')) errors.push('chat_template_jinja is required when chat_template is jinja');
  if (c.adapter === 'lora' || c.adapter === 'qlora') {
    if (!set('lora_target_modules') && !set('lora_target_linear')) errors.push('a LoRA adapter needs lora_target_modules or lora_target_linear');
  }
  return errors;
}
