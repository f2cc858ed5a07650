// How many layers of a job keep their activations for the backward: read from a checkpoint, said in words.
import type { LoraAdapter } from '../model/lora';
import type { RecomputePolicy } from '../model/memoryEstimate';
import type { CausalLM } from '../model/transformer';
import type { TrainerState } from './checkpoint';

/**
 * A job's kept-layer count, resolved once: a count its first run recorded wins, then a fixed
 * policy ('never': every layer, 'always': none), else ('auto') as many as the model's memory
 * budget holds at B x T.
 */
export function resolveKeptLayers(
  model: CausalLM,
  options: { recompute?: RecomputePolicy; keptLayers?: number },
  B: number,
  T: number,
  adapter: LoraAdapter,
): number {
  const layers = model.config.layers;
  const policy = options.recompute ?? 'auto';
  if (options.keptLayers !== undefined) return Math.min(options.keptLayers, layers);
  if (policy !== 'auto') return policy === 'never' ? layers : 0;
  const modelPolicy = model.recompute;
  model.recompute = 'auto';
  try {
    return model.keptLayers(B, T, adapter);
  } finally {
    model.recompute = modelPolicy;
  }
}

/** The state fields of a kept-layer count; `recompute` says whether any layer is recomputed. */
export function activationState(kept: number, layers: number): { recompute: 'always' | 'never'; keptLayers: number } {
  return { recompute: kept >= layers ? 'never' : 'always', keptLayers: kept };
}

/**
 * The kept-layer count a checkpoint's state records; checkpoints from before it was recorded
 * give it by their policy ('never': every layer, 'always': none); null when neither is there.
 */
export function keptLayersOf(state: Pick<TrainerState, 'recompute' | 'keptLayers'>, layers: number): number | null {
  if (state.keptLayers !== undefined) return Math.min(state.keptLayers, layers);
  if (state.recompute) return state.recompute === 'never' ? layers : 0;
  return null;
}

/** The activation line `train` prints and the job log shows. */
export function describeKeptLayers(kept: number, layers: number): string {
  if (kept >= layers) return 'kept for every layer (they fit the memory budget)';
  if (kept === 0) return 'recomputed in the backward for every layer (the memory budget holds none)';
  return `kept for ${kept} of ${layers} layers (what the memory budget holds), the other ${layers - kept} recomputed in the backward`;
}
