/**
 * The tensors of a decoder-only transformer, written down once per family: their Hugging Face
 * names, shapes and the config fields each dimension comes from. Loading and checking a
 * checkpoint, building a random model of the same shapes and the module paths PEFT adapters use
 * all read this table, so a new family or bias flag is one edit here.
 */
import type { ModelConfig } from './config';

/** A dimension and the config.json field(s) it comes from (for error messages). */
export type Dim = readonly [size: number, field: string];

/**
 * What a linear layer does inside its block. Llama-family layers: q, k, v, o, gate, up, down;
 * GPT-2: qkv (c_attn, q|k|v packed in one matrix), o (attn.c_proj), fc (mlp.c_fc), down (mlp.c_proj).
 */
export type LinearRole = 'q' | 'k' | 'v' | 'qkv' | 'o' | 'gate' | 'up' | 'fc' | 'down';

/**
 * A fixed small integer per role, mixed into LoRA dropout seeds: q, k, v, o, gate, up, down are
 * 0..6, and GPT-2's roles reuse the slot of the Llama layer in the same place (c_attn where q_proj
 * is, c_fc where gate_proj is), so masks do not change when code around them moves.
 */
export const ROLE_SEED_INDEX: Readonly<Record<LinearRole, number>> = { q: 0, k: 1, v: 2, qkv: 0, o: 3, gate: 4, up: 5, fc: 4, down: 6 };
/** Regions of a layer's dL/du scratch: one per role, at its ROLE_SEED_INDEX (a group's members follow its first). */
export const LORA_DU_REGIONS = 7;

/**
 * Llama-family linear layers that read the same input: when every member is adapted, their LoRA
 * runs as one group (`linearGroup.ts`), and their activations sit in regions of one buffer.
 */
export const SHARED_INPUT_GROUPS: readonly (readonly LinearRole[])[] = [
  ['q', 'k', 'v'],
  ['gate', 'up'],
];

export interface LinearSpec {
  role: LinearRole;
  /** Module path, e.g. `model.layers.0.self_attn.q_proj` or `h.0.attn.c_attn`. */
  module: string;
  out: Dim;
  in: Dim;
  bias: boolean;
  /** GPT-2's Conv1D stores the weight [in, out]; nn.Linear stores [out, in]. */
  conv1d: boolean;
}

export interface NormSpec {
  module: string;
  bias: boolean;
}

/** One block: pre-attention norm, attention input and output projections, pre-MLP norm, MLP. */
export interface LayerLayout {
  norm1: NormSpec;
  /** Llama family: q, k, v; GPT-2: qkv. */
  attnIn: LinearSpec[];
  attnOut: LinearSpec;
  norm2: NormSpec;
  /** Llama family: gate, up; GPT-2: fc. */
  mlpIn: LinearSpec[];
  mlpOut: LinearSpec;
}

export interface ModelLayout {
  /** Token embedding [vocab, hidden]. */
  embed: string;
  /** GPT-2's learned positions [maxPositions, hidden]; null with RoPE. */
  positions: string | null;
  layers: LayerLayout[];
  finalNorm: NormSpec;
  /** The untied LM head [vocab, hidden] (nn.Linear in both families); null when tied to the embedding. */
  head: string | null;
}

export interface LayoutOptions {
  /** GPT-2 only: checkpoints saved from GPT2LMHeadModel prefix the body with "transformer.". */
  gpt2Prefix?: '' | 'transformer.';
}

/** The model's tensors in checkpoint order. */
export function modelLayout(config: ModelConfig, options: LayoutOptions = {}): ModelLayout {
  const { hidden, intermediate, heads, kvHeads, headDim, layers: L } = config;
  if (config.family === 'llama') {
    const C: Dim = [hidden, 'hidden_size'];
    const I: Dim = [intermediate, 'intermediate_size'];
    const Q: Dim = [heads * headDim, 'num_attention_heads×head_dim'];
    const KV: Dim = [kvHeads * headDim, 'num_key_value_heads×head_dim'];
    const linear = (role: LinearRole, module: string, out: Dim, inp: Dim, bias: boolean): LinearSpec => ({ role, module, out, in: inp, bias, conv1d: false });
    const layers = Array.from({ length: L }, (_, i): LayerLayout => {
      const p = `model.layers.${i}.`;
      return {
        norm1: { module: `${p}input_layernorm`, bias: false },
        attnIn: [
          linear('q', `${p}self_attn.q_proj`, Q, C, config.attentionBias),
          linear('k', `${p}self_attn.k_proj`, KV, C, config.attentionBias),
          linear('v', `${p}self_attn.v_proj`, KV, C, config.attentionBias),
        ],
        attnOut: linear('o', `${p}self_attn.o_proj`, C, Q, config.attentionOutBias),
        norm2: { module: `${p}post_attention_layernorm`, bias: false },
        mlpIn: [linear('gate', `${p}mlp.gate_proj`, I, C, config.mlpBias), linear('up', `${p}mlp.up_proj`, I, C, config.mlpBias)],
        mlpOut: linear('down', `${p}mlp.down_proj`, C, I, config.mlpBias),
      };
    });
    return {
      embed: 'model.embed_tokens.weight',
      positions: null,
      layers,
      finalNorm: { module: 'model.norm', bias: false },
      head: config.tieWordEmbeddings ? null : 'lm_head.weight',
    };
  }
  const pre = options.gpt2Prefix ?? '';
  const E: Dim = [hidden, 'n_embd'];
  const E3: Dim = [3 * hidden, '3×n_embd'];
  const F: Dim = [intermediate, 'n_inner'];
  const conv = (role: LinearRole, module: string, out: Dim, inp: Dim): LinearSpec => ({ role, module, out, in: inp, bias: true, conv1d: true });
  const layers = Array.from({ length: L }, (_, i): LayerLayout => {
    const p = `${pre}h.${i}.`;
    return {
      norm1: { module: `${p}ln_1`, bias: true },
      attnIn: [conv('qkv', `${p}attn.c_attn`, E3, E)],
      attnOut: conv('o', `${p}attn.c_proj`, E, E),
      norm2: { module: `${p}ln_2`, bias: true },
      mlpIn: [conv('fc', `${p}mlp.c_fc`, F, E)],
      mlpOut: conv('down', `${p}mlp.c_proj`, E, F),
    };
  });
  return {
    embed: `${pre}wte.weight`,
    positions: `${pre}wpe.weight`,
    layers,
    finalNorm: { module: `${pre}ln_f`, bias: true },
    head: config.tieWordEmbeddings ? null : 'lm_head.weight',
  };
}

/** The linear layers of a block in order: attention inputs, attention output, MLP inputs, MLP output. */
export function layerLinears<T>(layer: { attnIn: readonly T[]; attnOut: T; mlpIn: readonly T[]; mlpOut: T }): T[] {
  return [...layer.attnIn, layer.attnOut, ...layer.mlpIn, layer.mlpOut];
}
