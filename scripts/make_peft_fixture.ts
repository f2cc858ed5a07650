/**
 * Writes PEFT adapters exported by Whittle for the tiny test models into
 * test/fixtures/adapters/<model>/ (adapter_model.safetensors + adapter_config.json), so that an
 * independent implementation (scripts/check_adapter_torch.py, PyTorch) can apply them and record
 * the logits it gets. B is random rather than PEFT's zeros, so the adapter changes the output.
 *
 *   npx tsx --import ./scripts/register-wgsl.mjs scripts/make_peft_fixture.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeModelDir } from '../src/formats/nodeByteSource';
import { ADAPTER_CONFIG_FILE, ADAPTER_MODEL_FILE, exportPeftAdapter } from '../src/formats/peft';
import { acquireGpu } from '../src/gpu';
import { loadCausalLM } from '../src/model/load';
import { defaultLoraConfig, LoraAdapter } from '../src/model/lora';
import { Rng } from '../src/util/random';

const ROOT = join(import.meta.dirname, '..');

export const PEFT_FIXTURE_MODELS = ['tiny-llama', 'tiny-gpt2'] as const;

const gpu = await acquireGpu();
for (const name of PEFT_FIXTURE_MODELS) {
  const dir = await nodeModelDir(join(ROOT, 'test/fixtures/models', name));
  const { model, config } = await loadCausalLM(gpu, dir, { dtype: 'f32' });
  await dir.close?.();
  const adapter = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: 4, alpha: 12, useRslora: name === 'tiny-llama' }));
  adapter.initialize(11);
  const rng = new Rng(12);
  const tensors = await adapter.readTensors();
  for (const [key, t] of tensors) if (key.endsWith('lora_B.weight')) t.data.set(rng.f32(t.data.length, -0.2, 0.2));
  adapter.loadTensors((k) => tensors.get(k));
  const files = await exportPeftAdapter(adapter, { baseModelNameOrPath: `test/fixtures/models/${name}` });
  const out = join(ROOT, 'test/fixtures/adapters', name);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, ADAPTER_MODEL_FILE), files.adapterModel);
  writeFileSync(join(out, ADAPTER_CONFIG_FILE), JSON.stringify(files.adapterConfig, null, 2) + '\n');
  console.log(`${name}: ${out}`);
  adapter.destroy();
  model.destroy();
}
gpu.destroy();
process.exit(0);
