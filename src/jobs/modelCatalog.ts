/**
 * What the worker says about a model before anything is downloaded: the curated list and any
 * Hub repo, each with its size and the memory a default job on it would need on this device.
 */
import { countParameters, ModelConfigError, parseModelConfig } from '../model/config';
import type { WeightDtype } from '../model/weights';
import { CURATED_MODELS, curatedModelFacts, type CuratedModel } from './curatedModels';
import { resolveHubRepo, type HubRepoListing, type ResolveHubRepoOptions } from './hubRepo';
import { defaultJobMemory, type JobMemoryCheck, type MemoryLimits } from './jobMemory';

export interface CuratedModelView extends Omit<CuratedModel, 'config'> {
  parameters: number;
  /** Weights and tokenizer, estimated from the config (the Hub listing gives exact bytes). */
  downloadBytes: number;
  /** Why the engine cannot run it, or null. */
  unsupported: string | null;
  /** A default job's memory against this device's limits; null when unsupported. */
  memory: JobMemoryCheck | null;
}

export function curatedModelViews(limits: MemoryLimits, dtype: WeightDtype): CuratedModelView[] {
  return CURATED_MODELS.map((m) => {
    const facts = curatedModelFacts(m);
    const rest: Omit<CuratedModel, 'config'> & { config?: unknown } = { ...m };
    delete rest.config;
    return { ...rest, parameters: facts.parameters, downloadBytes: facts.downloadBytes, unsupported: facts.unsupported, memory: facts.config ? defaultJobMemory(facts.config, dtype, limits) : null };
  });
}

export interface HubRepoView {
  listing: Omit<HubRepoListing, 'config'>;
  parameters: number | null;
  unsupported: string | null;
  memory: JobMemoryCheck | null;
}

/** Lists a Hub repo's model files and checks its config, before downloading the rest. */
export async function inspectHubRepo(repo: string, options: ResolveHubRepoOptions, limits: MemoryLimits, dtype: WeightDtype): Promise<HubRepoView> {
  const { config: json, ...listing } = await resolveHubRepo(repo, options);
  try {
    const config = parseModelConfig(json);
    return { listing, parameters: countParameters(config), unsupported: null, memory: defaultJobMemory(config, dtype, limits) };
  } catch (e) {
    if (!(e instanceof ModelConfigError)) throw e;
    return { listing, parameters: null, unsupported: e.message, memory: null };
  }
}
