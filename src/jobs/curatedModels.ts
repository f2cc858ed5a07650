/**
 * The base models the picker and the Models page offer by name: small instruction-tuned models
 * from the Hugging Face Hub with what a user wants to know before downloading one (size,
 * licence, languages, whether the engine runs it, the memory of a default job). Each carries
 * the fields of its real config.json the engine reads, so support and memory are worked out
 * from the config alone, before any download. No GPU, no Node: the worker and the UI share it.
 */
import { ModelConfigError, parseModelConfig, countParameters, type ModelConfig } from '../model/config';

export interface CuratedModel {
  /** Hub repo id. */
  repo: string;
  /** Short display name. */
  name: string;
  /** SPDX id or the licence's name. */
  licence: string;
  licenceUrl: string;
  /** Languages the model card names, the most relevant first. */
  languages: string[];
  /** Gated on the Hub: the user accepts the licence there and gives an access token. */
  gated: boolean;
  /** The config.json of the repo (the fields the engine reads). */
  config: Record<string, unknown>;
  /**
   * Bytes of the safetensors weights as the repo stores them. Computed as parameters x bytes of
   * the checkpoint dtype unless the repo stores more (weightsBytes overrides it then).
   */
  weightsBytes?: number;
  /** Bytes of tokenizer.json (the rest of the small files are a few KiB). */
  tokenizerBytes: number;
  /** One line: what it is good for. */
  note: string;
}

const MB = 1_000_000;

const APACHE_2 = { licence: 'Apache-2.0', licenceUrl: 'https://www.apache.org/licenses/LICENSE-2.0' };

/** The entry's own fields; an entry is open (not gated) and Apache-2.0 licensed unless it says otherwise. */
type CuratedEntry = Omit<CuratedModel, 'repo' | 'name' | 'licence' | 'licenceUrl' | 'gated'> & Partial<Pick<CuratedModel, 'licence' | 'licenceUrl' | 'gated'>>;

function curated(repo: string, name: string, entry: CuratedEntry): CuratedModel {
  return { repo, name, ...APACHE_2, gated: false, ...entry };
}

/** The config.json fields the two SmolLM2 Instruct sizes share; each adds its own widths and depth. */
const SMOLLM2_CONFIG = {
  model_type: 'llama', vocab_size: 49152, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true,
  bos_token_id: 1, eos_token_id: 2, pad_token_id: 2, torch_dtype: 'bfloat16',
};

export const CURATED_MODELS: readonly CuratedModel[] = [
  curated('HuggingFaceTB/SmolLM2-135M-Instruct', 'SmolLM2 135M Instruct', {
    languages: ['English'],
    config: { ...SMOLLM2_CONFIG, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3 },
    tokenizerBytes: 2.1 * MB,
    note: 'The smallest: quick experiments, fits almost any GPU.',
  }),
  curated('HuggingFaceTB/SmolLM2-360M-Instruct', 'SmolLM2 360M Instruct', {
    languages: ['English'],
    config: { ...SMOLLM2_CONFIG, hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15, num_key_value_heads: 5 },
    tokenizerBytes: 2.1 * MB,
    note: 'Better English answers at three times the size.',
  }),
  curated('Qwen/Qwen2.5-0.5B-Instruct', 'Qwen2.5 0.5B Instruct', {
    licenceUrl: 'https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/blob/main/LICENSE',
    languages: ['Chinese', 'English', 'French', 'Spanish', 'Portuguese', 'German', 'Italian', 'Russian', 'Japanese', 'Korean', 'Vietnamese', 'Thai', 'Arabic', '16 more'],
    config: {
      model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14,
      num_key_value_heads: 2, max_position_embeddings: 32768, max_window_layers: 21, sliding_window: 32768, use_sliding_window: false,
      rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, bos_token_id: 151643, eos_token_id: 151645, torch_dtype: 'bfloat16',
    },
    tokenizerBytes: 7.0 * MB,
    note: 'The pick for Chinese (and 28 other languages).',
  }),
  curated('Qwen/Qwen3-0.6B', 'Qwen3 0.6B', {
    licenceUrl: 'https://huggingface.co/Qwen/Qwen3-0.6B/blob/main/LICENSE',
    languages: ['Chinese', 'English', '117 more'],
    config: {
      model_type: 'qwen3', vocab_size: 151936, hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28, num_attention_heads: 16,
      num_key_value_heads: 8, head_dim: 128, max_position_embeddings: 40960, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true,
      bos_token_id: 151643, eos_token_id: 151645, torch_dtype: 'bfloat16',
    },
    // The repo's model.safetensors also stores lm_head (tied, so not counted in the parameters).
    weightsBytes: 1503 * MB,
    tokenizerBytes: 11.4 * MB,
    note: 'Newer Qwen with a thinking mode.',
  }),
  curated('meta-llama/Llama-3.2-1B-Instruct', 'Llama 3.2 1B Instruct', {
    licence: 'Llama 3.2 Community License',
    licenceUrl: 'https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct/blob/main/LICENSE.txt',
    languages: ['English', 'German', 'French', 'Italian', 'Portuguese', 'Hindi', 'Spanish', 'Thai'],
    gated: true,
    config: {
      model_type: 'llama', vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32,
      num_key_value_heads: 8, head_dim: 64, max_position_embeddings: 131072, rms_norm_eps: 1e-5, rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
      tie_word_embeddings: true, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009], torch_dtype: 'bfloat16',
    },
    tokenizerBytes: 9.1 * MB,
    note: 'Gated: accept Meta\u2019s licence on huggingface.co, then give an access token.',
  }),
  curated('TinyLlama/TinyLlama-1.1B-Chat-v1.0', 'TinyLlama 1.1B Chat', {
    languages: ['English'],
    config: {
      model_type: 'llama', vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32,
      num_key_value_heads: 4, max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false,
      bos_token_id: 1, eos_token_id: 2, torch_dtype: 'bfloat16',
    },
    tokenizerBytes: 1.8 * MB,
    note: 'The largest here; a 2048-token context.',
  }),
];

/** A curated model with what follows from its config: whether the engine runs it, and its sizes. */
export interface CuratedModelFacts {
  model: CuratedModel;
  /** The parsed config; null when the engine does not support the architecture (see unsupported). */
  config: ModelConfig | null;
  /** Why the engine cannot run it, or null. */
  unsupported: string | null;
  parameters: number;
  /** Weights plus tokenizer, before any download (the Hub's listing gives the exact bytes). */
  downloadBytes: number;
}

const DTYPE_BYTES: Record<string, number> = { bfloat16: 2, float16: 2, float32: 4 };

/** Qwen3's parameters: a qwen2-style block without biases, plus per-head q/k norm weights. */
function qwen3Parameters(c: Record<string, unknown>): number {
  const n = (k: string) => c[k] as number;
  const [h, i, l, q, kv, d, v] = [n('hidden_size'), n('intermediate_size'), n('num_hidden_layers'), n('num_attention_heads'), n('num_key_value_heads'), n('head_dim'), n('vocab_size')];
  const block = h * q * d * 2 + h * kv * d * 2 + 3 * h * i + 2 * h + 2 * d;
  return v * h + l * block + h + (c.tie_word_embeddings ? 0 : v * h);
}

export function curatedModelFacts(model: CuratedModel): CuratedModelFacts {
  let config: ModelConfig | null = null;
  let unsupported: string | null = null;
  try {
    config = parseModelConfig(model.config);
  } catch (e) {
    if (!(e instanceof ModelConfigError)) throw e;
    unsupported = e.message;
  }
  const parameters = config ? countParameters(config) : qwen3Parameters(model.config);
  const dtypeBytes = DTYPE_BYTES[String(model.config.torch_dtype)] ?? 4;
  return { model, config, unsupported, parameters, downloadBytes: (model.weightsBytes ?? parameters * dtypeBytes) + model.tokenizerBytes };
}

export function findCuratedModel(repo: string): CuratedModel | null {
  return CURATED_MODELS.find((m) => m.repo.toLowerCase() === repo.toLowerCase()) ?? null;
}
