// The model the app ships in public/models/ (trained by scripts/pretrain): offered first when a
// job is created, so a first fine-tune needs no download and works offline.
import { useEffect, useState } from 'react';
import type { ModelInfo, ModelSource } from '../worker/trainingProtocol';
import { useClient, useEngine } from './engine';

export const EMBEDDED_MODEL_NAME = 'whittle-bilingual-small';

export function embeddedModelSource(): ModelSource {
  return {
    kind: 'embedded',
    name: EMBEDDED_MODEL_NAME,
    // Absolute, because the worker resolves URLs against its own script's location.
    url: new URL(`models/${EMBEDDED_MODEL_NAME}/`, document.baseURI).href,
    files: ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'],
  };
}

export interface EmbeddedModelState {
  /** The embedded model's info, or null while it loads or when it could not be read. */
  info: ModelInfo | null;
  /** Why the worker could not read it (a build without public/models, a broken file), else null. */
  error: string | null;
}

/** Asks the worker for the embedded model once the engine is ready. */
export function useEmbeddedModelState(): EmbeddedModelState {
  const client = useClient();
  const ready = useEngine().status.state === 'ready';
  const [state, setState] = useState<EmbeddedModelState>({ info: null, error: null });
  useEffect(() => {
    if (!ready) return;
    let live = true;
    client.inspectModel(embeddedModelSource()).then(
      (info) => live && setState({ info, error: null }),
      (e: unknown) => live && setState({ info: null, error: e instanceof Error ? e.message : String(e) }),
    );
    return () => {
      live = false;
    };
  }, [client, ready]);
  return state;
}

/** The embedded model's info, or null while it loads or when it could not be read. */
export function useEmbeddedModel(): ModelInfo | null {
  return useEmbeddedModelState().info;
}
