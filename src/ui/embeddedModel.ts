// The model the app ships in public/models/ (trained by scripts/pretrain): offered first when a
// job is created, so a first fine-tune needs no download and works offline.
import { useEffect, useState } from 'react';
import type { ModelInfo, ModelSource } from '../worker/trainingProtocol';
import { useClient, useEngine } from './engine';

export const EMBEDDED_MODEL_NAME = 'whittle-wordnet-tiny';

export function embeddedModelSource(): ModelSource {
  return {
    kind: 'embedded',
    name: EMBEDDED_MODEL_NAME,
    // Absolute, because the worker resolves URLs against its own script's location.
    url: new URL(`models/${EMBEDDED_MODEL_NAME}/`, document.baseURI).href,
    files: ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'],
  };
}

/** The embedded model's info, or null while it loads or when this build ships none. */
export function useEmbeddedModel(): ModelInfo | null {
  const client = useClient();
  const ready = useEngine().status.state === 'ready';
  const [info, setInfo] = useState<ModelInfo | null>(null);
  useEffect(() => {
    if (!ready) return;
    let live = true;
    client.inspectModel(embeddedModelSource()).then(
      (i) => live && setInfo(i),
      () => live && setInfo(null),
    );
    return () => {
      live = false;
    };
  }, [client, ready]);
  return info;
}
