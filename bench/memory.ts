/**
 * `memory` suite: what a LoRA training step holds on the GPU, by part (base weights, adapter with
 * gradients and AdamW moments, activation workspace) and at its peak, from the buffer pool's
 * byte accounting (every engine buffer goes through it). One step is run for real, so the
 * numbers are those of a step that works, not an estimate.
 */
import type { Gpu } from '../src/gpu';
import { countParameters } from '../src/model/config';
import { LoraAdapter, defaultLoraConfig } from '../src/model/lora';
import { CausalLM } from '../src/model/transformer';
import type { WeightDtype } from '../src/model/weights';
import { DEFAULT_OPTIMIZER, LoraOptimizer } from '../src/train/optimizer';
import { buildRandomModel, randomBatch } from '../src/model/randomModel';
import { namedModel } from './synthetic';
import { fmtBytes, type BenchRow } from '../src/bench/table';
import type { ModelSpec } from './train';

export interface MemoryBenchOptions {
  model: ModelSpec;
  B: number;
  T: number;
  rank: number;
  dtype: WeightDtype;
  log: (msg: string) => void;
}

export async function benchMemory(gpu: Gpu, opts: MemoryBenchOptions): Promise<BenchRow[]> {
  const named = namedModel(opts.model.name, opts.model.layers);
  const { config } = named;
  const { B, T } = opts;
  const shape = `${named.label} ${B}x${T} ${opts.dtype} r=${opts.rank}`;
  await warmUp(gpu, opts);
  gpu.pool.trim();
  opts.log(`memory: building ${named.label} (${opts.dtype})`);
  const weights = await buildRandomModel(gpu, config, {
    dtype: opts.dtype,
    seed: 1,
    onProgress: (() => {
      let shown = 0;
      return (done: number, total: number) => {
        if (done / total >= shown + 0.25) opts.log(`memory: weights ${Math.round((100 * (shown += 0.25)))}%`);
      };
    })(),
  });
  const model = new CausalLM(gpu, config, weights);
  const afterModel = gpu.memory().liveBytes;
  const adapter = new LoraAdapter(gpu, config, weights, defaultLoraConfig(config, { r: opts.rank, alpha: 2 * opts.rank }));
  adapter.initialize(1);
  const optimizer = new LoraOptimizer(gpu, adapter);
  try {
    const afterAdapter = gpu.memory().liveBytes;
    const batch = randomBatch(config, B, T, 7);
    gpu.pool.resetPeak();
    opts.log(`memory: one training step of ${B}x${T} (a CPU adapter needs up to hours for a large model)`);
    const t0 = performance.now();
    const pending = model.forwardBackward(batch, adapter, { gradScale: 1 / (B * T), accumulate: false });
    // Recording (and so every allocation) happens before forwardBackward's first await: the
    // footprint is known now, long before a CPU adapter finishes the step. Shown early for that.
    if (model.workspaceBytes() > 0) {
      opts.log(
        `memory: recorded: weights ${fmtBytes(weights.bytes)}, adapter ${fmtBytes(afterAdapter - afterModel)}, ` +
          `workspace ${fmtBytes(model.workspaceBytes())}, peak so far ${fmtBytes(gpu.memory().peakBytes)}; waiting for the GPU`,
      );
    }
    const totals = (await pending)!;
    optimizer.apply(DEFAULT_OPTIMIZER);
    await gpu.sync();
    const ms = performance.now() - t0;
    const loss = totals.lossSum / totals.tokens;
    if (!Number.isFinite(loss)) throw new Error(`${shape}: non-finite loss ${loss}`);
    const { peakBytes } = gpu.memory();
    const workspace = model.workspaceBytes();
    const transient = peakBytes - afterAdapter - workspace;
    opts.log(`memory: step ${(ms / 1000).toFixed(1)} s, loss ${loss.toFixed(3)}, peak ${fmtBytes(peakBytes)}`);
    const row = (name: string, bytes: number, note: string): BenchRow => ({ suite: 'memory', name: `${shape}: ${name}`, ms: NaN, bytes, note });
    return [
      row('base weights', weights.bytes, `${(countParameters(config) / 1e6).toFixed(1)}M parameters; matrices ${opts.dtype}, norms/biases f32`),
      row('LoRA A, B, grads, AdamW moments', afterAdapter - afterModel, `${(adapter.parameterCount / 1e6).toFixed(2)}M trainable parameters x 6 f32 buffers + grad-norm scratch`),
      row('activation workspace', workspace, `residual stream per layer (${config.layers + 1} x [${B * T}, ${config.hidden}]), one layer's internals, an 8192-column logits chunk`),
      row('transient (uniforms, readbacks)', transient, 'peak minus weights, adapter and workspace'),
      {
        suite: 'memory',
        name: `${shape}: training step`,
        ms,
        tokensPerSecond: ((B * T) / ms) * 1000,
        peakBytes,
        note: `one step (forwardBackward + clip + AdamW) after a warm-up on a 1-layer copy; loss ${loss.toFixed(3)}`,
      },
    ];
  } finally {
    optimizer.destroy();
    adapter.destroy();
    model.destroy();
    gpu.pool.trim();
  }
}

/**
 * Compiles the step's pipelines on a one-layer copy of the model at a short shape, so that the
 * one timed full-size step does not include compilation (the pipeline cache is per device).
 */
async function warmUp(gpu: Gpu, opts: MemoryBenchOptions): Promise<void> {
  const { config } = namedModel(opts.model.name, 1);
  opts.log('memory: warm-up step on a 1-layer copy (compiles pipelines)');
  const weights = await buildRandomModel(gpu, config, { dtype: opts.dtype, seed: 2 });
  const model = new CausalLM(gpu, config, weights);
  const adapter = new LoraAdapter(gpu, config, weights, defaultLoraConfig(config, { r: opts.rank, alpha: 2 * opts.rank }));
  adapter.initialize(1);
  const optimizer = new LoraOptimizer(gpu, adapter);
  try {
    const T = Math.min(opts.T, 64);
    await model.forwardBackward(randomBatch(config, 1, T, 7), adapter, { gradScale: 1 / T, accumulate: false });
    optimizer.apply(DEFAULT_OPTIMIZER);
    await gpu.sync();
  } finally {
    optimizer.destroy();
    adapter.destroy();
    model.destroy();
  }
}
