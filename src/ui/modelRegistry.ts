// Models this browser has used: the ones added on the Models page or picked for a job, kept in
// localStorage (the worker keeps the files; this is only the list the pickers show).
import { useSyncExternalStore } from 'react';
import type { ModelInfo, ModelSource } from '../worker/trainingProtocol';

const KEY = 'whittle.models';
const listeners = new Set<() => void>();
let cache: { raw: string | null; list: KnownModel[] } = { raw: null, list: [] };

export interface KnownModel {
  info: ModelInfo;
  addedAt: number;
}

/** Same model, whatever the summary: kind and name (and revision / folder key). */
export function modelId(source: ModelSource): string {
  switch (source.kind) {
    case 'hub':
      return `hub:${source.name}@${source.revision}`;
    case 'local':
      return `local:${source.modelKey}`;
    case 'embedded':
      return `embedded:${source.url}`;
  }
}

function read(): KnownModel[] {
  let raw: string | null = null;
  try {
    raw = localStorage.getItem(KEY);
  } catch {
    return cache.list;
  }
  if (raw === cache.raw) return cache.list;
  let list: KnownModel[] = [];
  try {
    const v = JSON.parse(raw ?? '[]') as unknown;
    if (Array.isArray(v)) list = v.filter((m): m is KnownModel => typeof m === 'object' && m !== null && 'info' in m);
  } catch {
    list = [];
  }
  cache = { raw, list };
  return list;
}

function write(list: KnownModel[]): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(list));
  } catch {
    cache = { raw: null, list };
  }
  for (const l of listeners) l();
}

export function rememberModel(info: ModelInfo): void {
  const id = modelId(info.source);
  write([{ info, addedAt: Date.now() }, ...read().filter((m) => modelId(m.info.source) !== id)]);
}

export function forgetModel(source: ModelSource): void {
  const id = modelId(source);
  write(read().filter((m) => modelId(m.info.source) !== id));
}

function subscribe(l: () => void): () => void {
  listeners.add(l);
  const onStorage = (e: StorageEvent) => e.key === KEY && l();
  window.addEventListener('storage', onStorage);
  return () => {
    listeners.delete(l);
    window.removeEventListener('storage', onStorage);
  };
}

export function useKnownModels(): KnownModel[] {
  return useSyncExternalStore(subscribe, read, () => []);
}
