// "Take it to a cluster": the same LoRA job as an Axolotl config and as a TRL SFTTrainer script,
// so a run that outgrows the browser continues on GPUs with the same data, settings and loss
// (assistant tokens only, averaged over the trained tokens of each optimizer step). The adapter
// either tool saves is a PEFT adapter that Whittle imports back. No Node imports.

import { stringify, type ScalarTag } from 'yaml';

import type { Hyperparameters } from '../train/hyperparameters';

export class ClusterHandoffError extends Error {
  override name = 'ClusterHandoffError';
}

export interface ClusterJob {
  /** Hugging Face repo id (or a path on the cluster) of the base model. */
  baseModel: string;
  /** Training JSONL as it will sit next to the configs, e.g. `train.jsonl`. */
  trainFileName: string;
  validationFileName?: string | null;
  /**
   * 'chat': OpenAI messages lines ({"messages": [{role, content, weight?}]}), trained on the
   * assistant turns through the chat template. 'text': {"text": ...} lines, every token trained.
   * Prompt/completion files must be converted first (promptCompletionToMessages).
   */
  datasetFormat?: 'chat' | 'text';
  /** The resolved hyperparameters of the Whittle job (LoRA settings included). */
  hyperparameters: Hyperparameters;
  /** A Jinja chat template to use instead of the tokenizer's own. */
  chatTemplate?: string | null;
  /** Where the tools write the adapter. Default `./whittle-lora-out`. */
  outputDir?: string;
  /** Shown in the README. */
  jobName?: string;
}

export interface ClusterHandoff {
  axolotlYaml: string;
  trlScript: string;
  readme: string;
}

// ---------------------------------------------------------------------------------------------
// The Axolotl config schema

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

// ---------------------------------------------------------------------------------------------
// Generation

/** transformers' scheduler name for a Whittle schedule ('constant' with warmup is constant_with_warmup). */
export function hfSchedulerName(h: Hyperparameters): string {
  if (h.schedule === 'constant') return h.warmupSteps > 0 || (h.warmupRatio ?? 0) > 0 ? 'constant_with_warmup' : 'constant';
  return h.schedule;
}

function datasetEntry(path: string, format: 'chat' | 'text'): Record<string, unknown> {
  if (format === 'text') return { path, ds_type: 'json', split: 'train', type: 'completion', field: 'text' };
  return {
    path,
    ds_type: 'json',
    split: 'train',
    type: 'chat_template',
    field_messages: 'messages',
    message_property_mappings: { role: 'role', content: 'content' },
    roles: { system: ['system'], user: ['user'], assistant: ['assistant'] },
    roles_to_train: ['assistant'],
    train_on_eos: 'turn',
    // OpenAI's per-message `weight` (0 = do not train on this assistant turn).
    message_field_training: 'weight',
  };
}

function checkJob(job: ClusterJob): void {
  const h = job.hyperparameters;
  if (!job.baseModel) throw new ClusterHandoffError('baseModel is empty');
  if (!job.trainFileName) throw new ClusterHandoffError('trainFileName is empty');
  if (!Number.isInteger(h.lora.alpha)) {
    throw new ClusterHandoffError(`Axolotl takes an integer lora_alpha; this job's alpha is ${h.lora.alpha}`);
  }
  if ((job.datasetFormat as string | undefined) === 'prompt_completion') {
    throw new ClusterHandoffError('convert prompt/completion files to messages first (promptCompletionToMessages)');
  }
}

/** The Axolotl config as a plain object (before YAML). */
export function axolotlConfig(job: ClusterJob): Record<string, unknown> {
  checkJob(job);
  const h = job.hyperparameters;
  const format = job.datasetFormat ?? 'chat';
  const cfg: Record<string, unknown> = { base_model: job.baseModel };
  if (format === 'chat') {
    if (job.chatTemplate) {
      cfg.chat_template = 'jinja';
      cfg.chat_template_jinja = job.chatTemplate;
    } else {
      cfg.chat_template = 'tokenizer_default';
    }
  }
  cfg.datasets = [datasetEntry(job.trainFileName, format)];
  if (job.validationFileName) {
    cfg.test_datasets = [datasetEntry(job.validationFileName, format)];
  } else {
    cfg.val_set_size = 0;
  }
  Object.assign(cfg, {
    dataset_prepared_path: './last_run_prepared',
    output_dir: job.outputDir ?? './whittle-lora-out',
    sequence_len: h.maxSeqLen,
    // Whittle trains one example per row, without packing.
    sample_packing: false,
    train_on_inputs: false,
    adapter: 'lora',
    lora_r: h.lora.r,
    lora_alpha: h.lora.alpha,
    lora_dropout: h.lora.dropout,
    lora_target_modules: [...h.lora.targetModules],
    ...(h.lora.useRslora ? { peft_use_rslora: true } : {}),
    micro_batch_size: h.batchSize,
    gradient_accumulation_steps: h.gradientAccumulation,
    num_epochs: h.epochs,
    learning_rate: h.learningRate,
    lr_scheduler: hfSchedulerName(h),
    ...(h.warmupRatio !== null ? { warmup_ratio: h.warmupRatio } : { warmup_steps: h.warmupSteps }),
    weight_decay: h.weightDecay,
    max_grad_norm: h.maxGradNorm,
    optimizer: 'adamw_torch',
    adam_beta1: h.beta1,
    adam_beta2: h.beta2,
    adam_epsilon: h.eps,
    seed: h.seed,
    bf16: 'auto',
    gradient_checkpointing: true,
    logging_steps: 1,
    ...(job.validationFileName ? { eval_steps: h.evalEvery } : {}),
    save_strategy: 'epoch',
  });
  return cfg;
}

const TRL_SCRIPT = String.raw`#!/usr/bin/env python3
"""LoRA fine-tuning of Whittle job %JOB_NAME% with TRL's SFTTrainer and PEFT.

Same data, settings and loss as the job in Whittle: chat examples are rendered with the model's
chat template and only the assistant turns are trained (up to and including each turn's
end-of-turn marker; messages with "weight": 0 are not trained); text examples train every token.
The loss of an optimizer step is the mean over all its trained tokens.

    pip install "trl>=0.20" "peft>=0.13" transformers datasets accelerate
    python train_trl.py            # writes a PEFT adapter to SETTINGS["output_dir"]
"""
import json

SETTINGS = json.loads(r"""%SETTINGS%""")


def assistant_pieces(render, messages):
    """Splits a conversation's rendered text into (text, trained) pieces.

    render(messages, add_generation_prompt) returns the template's text. The text a model writes
    for assistant turn k is what follows render(messages[:k], True) in the full rendering, up to
    the end of render(messages[:k + 1], False) without trailing whitespace (the template's
    separator after the end-of-turn token is not generated).
    """
    full = render(messages, False)
    pieces = []
    at = 0
    for k, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        prompt = render(messages[:k], True)
        upto = render(messages[: k + 1], False).rstrip()
        if not full.startswith(prompt) or not full.startswith(upto) or len(upto) < len(prompt):
            raise ValueError(f"the chat template renders message {k} differently once later messages follow")
        if len(prompt) < at:
            raise ValueError(f"the chat template's prompt for message {k} overlaps the previous turn")
        trained = message.get("weight", 1) != 0
        pieces.append((full[at:len(prompt)], False))
        pieces.append((full[len(prompt):len(upto)], trained))
        at = len(upto)
    pieces.append((full[at:], False))
    return [(text, trained) for text, trained in pieces if text]


def tokenize_pieces(encode, pieces, max_length):
    """Token ids and the 0/1 assistant mask, each piece tokenised on its own (as at inference),
    truncated from the end to max_length."""
    ids, mask = [], []
    for text, trained in pieces:
        piece = encode(text)
        ids.extend(piece)
        mask.extend([1 if trained else 0] * len(piece))
    return ids[:max_length], mask[:max_length]


def main():
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    s = SETTINGS
    tokenizer = AutoTokenizer.from_pretrained(s["base_model"])
    if s["chat_template"]:
        tokenizer.chat_template = s["chat_template"]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    def encode(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def render(messages, add_generation_prompt):
        plain = [{k: v for k, v in m.items() if k != "weight"} for m in messages]
        return tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=add_generation_prompt)

    def prepare(example):
        if s["dataset_format"] == "text":
            pieces = [(example["text"], True)]
        else:
            pieces = assistant_pieces(render, example["messages"])
        ids, mask = tokenize_pieces(encode, pieces, s["max_length"])
        # SFTTrainer's collator sets the labels of tokens whose assistant_masks is 0 to -100.
        return {"input_ids": ids, "assistant_masks": mask}

    files = {"train": s["train_file"]}
    if s["validation_file"]:
        files["validation"] = s["validation_file"]
    raw = load_dataset("json", data_files=files)
    data = raw.map(prepare, remove_columns=raw["train"].column_names)
    data = data.filter(lambda e: sum(e["assistant_masks"]) > 0)

    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    model = AutoModelForCausalLM.from_pretrained(s["base_model"], torch_dtype=torch.bfloat16 if bf16 else torch.float32)
    lora = LoraConfig(
        r=s["lora_r"],
        lora_alpha=s["lora_alpha"],
        lora_dropout=s["lora_dropout"],
        target_modules=s["target_modules"],
        use_rslora=s["use_rslora"],
        bias="none",
        task_type="CAUSAL_LM",
    )
    warmup = {"warmup_ratio": s["warmup_ratio"]} if s["warmup_ratio"] is not None else {"warmup_steps": s["warmup_steps"]}
    evaluation = {"eval_strategy": "steps", "eval_steps": s["eval_steps"]} if s["validation_file"] else {"eval_strategy": "no"}
    args = SFTConfig(
        output_dir=s["output_dir"],
        num_train_epochs=s["num_epochs"],
        per_device_train_batch_size=s["micro_batch_size"],
        per_device_eval_batch_size=s["micro_batch_size"],
        gradient_accumulation_steps=s["gradient_accumulation_steps"],
        learning_rate=s["learning_rate"],
        lr_scheduler_type=s["lr_scheduler"],
        weight_decay=s["weight_decay"],
        max_grad_norm=s["max_grad_norm"],
        adam_beta1=s["adam_beta1"],
        adam_beta2=s["adam_beta2"],
        adam_epsilon=s["adam_epsilon"],
        optim="adamw_torch",
        seed=s["seed"],
        max_length=s["max_length"],
        packing=False,
        bf16=bf16,
        gradient_checkpointing=True,
        logging_steps=1,
        save_strategy="epoch",
        report_to="none",
        **warmup,
        **evaluation,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"] if s["validation_file"] else None,
        processing_class=tokenizer,
        peft_config=lora,
    )
    trainer.train()
    trainer.save_model(s["output_dir"])


if __name__ == "__main__":
    main()
`;

/** The settings the TRL script reads (embedded in it as JSON). */
export function trlSettings(job: ClusterJob): Record<string, unknown> {
  checkJob(job);
  const h = job.hyperparameters;
  return {
    base_model: job.baseModel,
    train_file: job.trainFileName,
    validation_file: job.validationFileName ?? null,
    dataset_format: job.datasetFormat ?? 'chat',
    chat_template: job.chatTemplate ?? null,
    output_dir: job.outputDir ?? './whittle-lora-out',
    max_length: h.maxSeqLen,
    lora_r: h.lora.r,
    lora_alpha: h.lora.alpha,
    lora_dropout: h.lora.dropout,
    target_modules: [...h.lora.targetModules],
    use_rslora: h.lora.useRslora,
    micro_batch_size: h.batchSize,
    gradient_accumulation_steps: h.gradientAccumulation,
    num_epochs: h.epochs,
    learning_rate: h.learningRate,
    lr_scheduler: hfSchedulerName(h),
    warmup_steps: h.warmupSteps,
    warmup_ratio: h.warmupRatio,
    weight_decay: h.weightDecay,
    max_grad_norm: h.maxGradNorm,
    adam_beta1: h.beta1,
    adam_beta2: h.beta2,
    adam_epsilon: h.eps,
    seed: h.seed,
    eval_steps: h.evalEvery,
  };
}

function readmeText(job: ClusterJob): string {
  const h = job.hyperparameters;
  const name = job.jobName ?? 'this job';
  const out = job.outputDir ?? './whittle-lora-out';
  const files = [job.trainFileName, ...(job.validationFileName ? [job.validationFileName] : [])].map((f) => '`' + f + '`').join(' and ');
  return `# Training ${name} on a cluster

This folder holds ${name} from Whittle in two forms that train the same LoRA adapter on GPUs:

- \`axolotl.yaml\`: an [Axolotl](https://github.com/axolotl-ai-cloud/axolotl) config
  (written against Axolotl's config schema at commit 002a637c).
- \`train_trl.py\`: a script for TRL's \`SFTTrainer\` with a PEFT \`LoraConfig\` (TRL 0.20 or newer).

Both read ${files} from this folder and write a PEFT adapter (\`adapter_config.json\` +
\`adapter_model.safetensors\`) to \`${out}\`, which Whittle imports back ("Load adapter").

## Axolotl

\`\`\`sh
pip install axolotl
axolotl train axolotl.yaml
\`\`\`

## TRL

\`\`\`sh
pip install "trl>=0.20" "peft>=0.13" transformers datasets accelerate
python train_trl.py
\`\`\`

## Settings

| | |
|---|---|
| Base model | \`${job.baseModel}\` |
| LoRA | r = ${h.lora.r}, alpha = ${h.lora.alpha}, dropout = ${h.lora.dropout}${h.lora.useRslora ? ', rsLoRA' : ''}; ${h.lora.targetModules.join(', ')} |
| Batch | ${h.batchSize} per device x ${h.gradientAccumulation} accumulation |
| Epochs | ${h.epochs} |
| Learning rate | ${h.learningRate}, ${hfSchedulerName(h)} schedule, ${h.warmupRatio !== null ? `warmup ratio ${h.warmupRatio}` : `${h.warmupSteps} warmup steps`} |
| AdamW | betas (${h.beta1}, ${h.beta2}), eps ${h.eps}, weight decay ${h.weightDecay}; gradients clipped to ${h.maxGradNorm} |
| Sequence length | ${h.maxSeqLen} tokens (longer examples truncated) |
| Seed | ${h.seed} |

## What matches Whittle, and what may differ

- Loss: only assistant turns (OpenAI \`weight: 0\` turns excluded), averaged over every trained
  token of an optimizer step, as Whittle does (transformers' Trainer does this across gradient
  accumulation since v4.46).
- Batch size is per device: on N GPUs the effective batch is N times larger than in Whittle;
  divide \`gradient_accumulation_steps\` by N to keep it.
- Precision: the cluster trains in bf16 where the GPU supports it; Whittle computes in f32
  (with f16 weights optionally), so losses agree closely but not bit for bit.
- Axolotl masks the assistant turns with its own chat-template logic; the TRL script uses
  Whittle's rule (text after the generation prompt up to the end-of-turn marker).
`;
}

/**
 * Floats as PyYAML (YAML 1.1, which Axolotl reads configs with) takes them: its float syntax
 * needs a dot, so JavaScript's `1e-8` would load as the string "1e-8"; write `1.0e-8`.
 */
const PYYAML_FLOAT: ScalarTag = {
  tag: 'tag:yaml.org,2002:float',
  default: true,
  identify: (value) => typeof value === 'number' && Number.isFinite(value) && !Number.isInteger(value),
  test: /^(?!)$/, // writing only: reading keeps the core schema's float tags
  resolve: (text) => parseFloat(text),
  stringify: ({ value }) => {
    const text = String(value);
    return /e/.test(text) && !text.includes('.') ? text.replace('e', '.0e') : text;
  },
};

/** The Axolotl YAML, the TRL script and a README for a Whittle job. */
export function exportClusterConfig(job: ClusterJob): ClusterHandoff {
  const cfg = axolotlConfig(job);
  const problems = validateAxolotlConfig(cfg);
  if (problems.length > 0) throw new ClusterHandoffError(`the Axolotl config does not validate: ${problems.join('; ')}`);
  const header = `# Axolotl config for ${job.jobName ?? 'a Whittle job'}, written by Whittle.\n# Schema: ${AXOLOTL_SCHEMA.source}\n`;
  const axolotlYaml = header + stringify(cfg, { lineWidth: 0, customTags: (tags) => [PYYAML_FLOAT, ...tags] });
  const settings = JSON.stringify(trlSettings(job), null, 2);
  const trlScript = TRL_SCRIPT.replace('%SETTINGS%', () => settings).replace('%JOB_NAME%', () => (job.jobName ?? '').replace(/["\\\n\r]/g, ''));
  return { axolotlYaml, trlScript, readme: readmeText(job) };
}

/**
 * Prompt/completion JSONL -> messages JSONL (a user and an assistant message per line), the
 * form Whittle trains prompt/completion files in, for the cluster tools' chat_template path.
 */
export function promptCompletionToMessages(jsonl: string): string {
  const out: string[] = [];
  jsonl.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new ClusterHandoffError(`line ${i + 1} is not JSON`);
    }
    const v = value as { prompt?: unknown; completion?: unknown };
    if (typeof v.prompt !== 'string' || typeof v.completion !== 'string') {
      throw new ClusterHandoffError(`line ${i + 1} lacks a string prompt and completion`);
    }
    out.push(JSON.stringify({ messages: [{ role: 'user', content: v.prompt }, { role: 'assistant', content: v.completion }] }));
  });
  return out.join('\n') + '\n';
}
