/**
 * Dispatches of one LoRA training step (forwardBackward + AdamW), by kernel, counted as the step
 * is recorded; nothing is submitted, so full-size models are counted in seconds on any adapter:
 *
 *   npx tsx --import ./scripts/register-wgsl.mjs bench/dispatchCount.mts MODEL LAYERS|all BxT fused|unfused [always|never|auto]
 *
 * e.g. `smollm2-135m all 4x512 fused never`. Prints one JSON line (r = 16 on all linear layers).
 */
import { acquireGpu, Recorder, type DispatchArgs, type KernelSpec } from '../src/gpu';
import { LoraAdapter, defaultLoraConfig } from '../src/model/lora';
import { CausalLM, type LoraLinearPath } from '../src/model/transformer';
import { DEFAULT_OPTIMIZER, LoraOptimizer } from '../src/train/optimizer';
import { buildRandomModel, randomBatch } from '../src/model/randomModel';
import { namedModel } from './synthetic';

const counts = new Map<string, number>();
let phase = 'fb';
const proto = Recorder.prototype as unknown as { dispatch(s: KernelSpec, a: DispatchArgs): Recorder };
const { dispatch } = proto;
proto.dispatch = function (this: Recorder, spec: KernelSpec, args: DispatchArgs) {
  const k = `${phase}:${spec.name}`;
  counts.set(k, (counts.get(k) ?? 0) + 1);
  return dispatch.call(this, spec, args);
};

const [name, layersArg, shape, path, recompute] = process.argv.slice(2);
const gpu = await acquireGpu();
// Recorded work is encoded, never submitted: only the count matters here.
gpu.dryRun = true;
const named = namedModel(name!, layersArg === 'all' ? undefined : Number(layersArg));
const [B, T] = shape!.split('x').map(Number);
const weights = await buildRandomModel(gpu, named.config, { dtype: 'f16' });
const model = new CausalLM(gpu, named.config, weights, { loraLinearPath: path as LoraLinearPath, recompute: (recompute ?? 'auto') as 'auto' });
const adapter = new LoraAdapter(gpu, named.config, weights, defaultLoraConfig(named.config, { r: 16, alpha: 32 }));
adapter.initialize(1);
const optimizer = new LoraOptimizer(gpu, adapter);
const batch = randomBatch(named.config, B!, T!);
await model.forwardBackward(batch, adapter, { gradScale: 1 / (B! * T!), accumulate: false }, false);
phase = 'opt';
optimizer.apply(DEFAULT_OPTIMIZER);
let fb = 0, opt = 0;
for (const [k, v] of counts) {
  if (k.startsWith('fb')) fb += v;
  else opt += v;
}
console.log(JSON.stringify({ model: named.label, shape, path, recompute, keeps: model.keepsActivations(B!, T!, adapter), keptLayers: model.keptLayers(B!, T!, adapter), forwardBackward: fb, optimizer: opt, total: fb + opt, byKernel: Object.fromEntries([...counts].sort((a, b) => b[1] - a[1])) }));
process.exit(0);
