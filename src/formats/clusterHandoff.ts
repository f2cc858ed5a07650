// "Take it to a cluster": the same LoRA job as an Axolotl config and as a TRL SFTTrainer script,
// so a run that outgrows the browser continues on GPUs with the same data, settings and loss
// (assistant tokens only, averaged over the trained tokens of each optimizer step). The adapter
// either tool saves is a PEFT adapter that Whittle imports back. The TRL script is train_trl.py
// (imported as text; its placeholders are filled here); the Axolotl schema is axolotlSchema.ts.
// No Node imports.

import { stringify, type ScalarTag } from 'yaml';

import type { Hyperparameters } from '../train/hyperparameters';
import { AXOLOTL_SCHEMA, validateAxolotlConfig } from './axolotlSchema';
import TRL_SCRIPT from './train_trl.py?raw';

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

/**
 * The settings the TRL script reads (embedded in it as JSON): the data, and the arguments of
 * PEFT's LoraConfig and TRL's SFTConfig under their own names, so the script passes them on as
 * they are and the job's settings are translated here once.
 */
export function trlSettings(job: ClusterJob): Record<string, unknown> {
  checkJob(job);
  const h = job.hyperparameters;
  return {
    base_model: job.baseModel,
    train_file: job.trainFileName,
    validation_file: job.validationFileName ?? null,
    dataset_format: job.datasetFormat ?? 'chat',
    chat_template: job.chatTemplate ?? null,
    lora: {
      r: h.lora.r,
      lora_alpha: h.lora.alpha,
      lora_dropout: h.lora.dropout,
      target_modules: [...h.lora.targetModules],
      use_rslora: h.lora.useRslora,
    },
    trainer: {
      output_dir: job.outputDir ?? './whittle-lora-out',
      max_length: h.maxSeqLen,
      num_train_epochs: h.epochs,
      per_device_train_batch_size: h.batchSize,
      per_device_eval_batch_size: h.batchSize,
      gradient_accumulation_steps: h.gradientAccumulation,
      learning_rate: h.learningRate,
      lr_scheduler_type: hfSchedulerName(h),
      ...(h.warmupRatio !== null ? { warmup_ratio: h.warmupRatio } : { warmup_steps: h.warmupSteps }),
      weight_decay: h.weightDecay,
      max_grad_norm: h.maxGradNorm,
      adam_beta1: h.beta1,
      adam_beta2: h.beta2,
      adam_epsilon: h.eps,
      seed: h.seed,
      ...(job.validationFileName ? { eval_strategy: 'steps', eval_steps: h.evalEvery } : { eval_strategy: 'no' }),
    },
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
