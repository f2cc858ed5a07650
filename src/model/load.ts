import { loadHfModelDir, type HfModelFiles, type ModelDir } from '../formats/hfModelDir';
import type { Gpu } from '../gpu';
import { parseModelConfig, type ModelConfig } from './config';
import { CausalLM } from './transformer';
import { loadModelWeights, type WeightDtype } from './weights';

export interface LoadedModel {
  model: CausalLM;
  config: ModelConfig;
  files: HfModelFiles;
}

export interface LoadModelOptions {
  dtype?: WeightDtype;
  onProgress?: (done: number, total: number) => void;
}

/** Reads a Hugging Face model folder and puts its weights on the GPU. */
export async function loadCausalLM(gpu: Gpu, dir: ModelDir, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const files = await loadHfModelDir(dir);
  const config = parseModelConfig(files.config);
  const weights = await loadModelWeights(gpu, config, files.weights, options);
  return { model: new CausalLM(gpu, config, weights), config, files };
}
