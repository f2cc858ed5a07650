/**
 * Model shapes the benchmarks know by name (`tiny`, or a config.json in test/fixtures/hf-configs),
 * optionally cut to fewer layers; the random weights themselves come from src/model/randomModel.ts.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseModelConfig, type ModelConfig } from '../src/model/config';
import { layerLinears, modelLayout } from '../src/model/layout';
import gpt2 from '../test/fixtures/hf-configs/gpt2.json' with { type: 'json' };
import llama32 from '../test/fixtures/hf-configs/llama-3.2-1b-instruct.json' with { type: 'json' };
import qwen25 from '../test/fixtures/hf-configs/qwen2.5-0.5b.json' with { type: 'json' };
import smollm2 from '../test/fixtures/hf-configs/smollm2-135m.json' with { type: 'json' };
import tinyllama from '../test/fixtures/hf-configs/tinyllama-1.1b-chat.json' with { type: 'json' };

const CONFIG_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'hf-configs');

/**
 * A small Llama-style shape (GQA, untied head) that trains in well under a second per step on a
 * CPU adapter, so it can be compared with the PyTorch peer on every machine.
 */
export const TINY_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 4096,
  hidden_size: 256,
  intermediate_size: 688,
  num_hidden_layers: 4,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
  hidden_act: 'silu',
};

/** Model shapes the benchmarks know by name: `tiny` or a config in test/fixtures/hf-configs. */
export const MODEL_NAMES = ['tiny', 'smollm2-135m', 'qwen2.5-0.5b', 'gpt2', 'llama-3.2-1b-instruct', 'tinyllama-1.1b-chat'] as const;

/**
 * The named configs, imported rather than read at run time so that the one-file benchmark bundle
 * (scripts/build-bench-bundle.mjs) carries them; other configs in the folder are read from disk.
 */
const BUILT_IN: Record<string, Record<string, unknown>> = {
  'smollm2-135m': smollm2,
  'qwen2.5-0.5b': qwen25,
  gpt2,
  'llama-3.2-1b-instruct': llama32,
  'tinyllama-1.1b-chat': tinyllama,
};

export interface NamedModel {
  /** Label for tables: the name, plus the layer cut when one applies. */
  label: string;
  /** The config.json the shape comes from (with the layer count overridden, if asked). */
  json: Record<string, unknown>;
  config: ModelConfig;
}

/**
 * The shape of a named model. `layers` cuts the layer count (all per-layer shapes, the vocabulary
 * and the head stay real), so that real widths can be timed on slow adapters; the label says so.
 */
export function namedModel(name: string, layers?: number): NamedModel {
  let json: Record<string, unknown>;
  if (name === 'tiny') {
    json = { ...TINY_CONFIG };
  } else if (BUILT_IN[name]) {
    json = { ...BUILT_IN[name] };
  } else {
    let text: string;
    try {
      text = readFileSync(join(CONFIG_DIR, `${name}.json`), 'utf8');
    } catch {
      throw new Error(`unknown model '${name}' (known: ${MODEL_NAMES.join(', ')})`);
    }
    json = JSON.parse(text) as Record<string, unknown>;
  }
  const field = json.model_type === 'gpt2' ? 'n_layer' : 'num_hidden_layers';
  const full = json[field] as number;
  let label = name;
  if (layers !== undefined && layers < full) {
    json = { ...json, [field]: layers };
    label = `${name} (${layers} of ${full} layers)`;
  }
  return { label, json, config: parseModelConfig(json) };
}

/** Parameter count of the linear layers and the LM head: what the matmuls of a step multiply by. */
export function matmulParameters(config: ModelConfig): number {
  let total = config.vocabSize * config.hidden;
  for (const layer of modelLayout(config).layers) for (const l of layerLinears(layer)) total += l.out[0] * l.in[0];
  return total;
}
