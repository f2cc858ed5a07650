/**
 * Where the time of one LoRA training step goes, by kernel:
 *
 *   npx tsx --import ./scripts/register-wgsl.mjs bench/profile.ts [--model tiny] [--shape 1x128]
 *       [--path fused,unfused] [--steps 3] [--dtype f16|f32] [--rank 16]
 *
 * For each LoRA linear path (see `defaultLoraLinearPath`) it runs the bench train suite's step
 * (forwardBackward + clip + AdamW, the loss not read) and reports:
 *  - wall clock per step, and how much of it is the CPU recording and encoding the step (the
 *    synchronous part of forwardBackward + apply, before the GPU is waited on);
 *  - one step with a timestamp pair around every dispatch (each in its own compute pass, so the
 *    sum is a bit above the untimed GPU time), summed by kernel and by kernel + call site.
 * Needs the adapter's timestamp-query feature for the second part (lavapipe has it).
 */
import { parseArgs } from 'node:util';

import { acquireGpu, Recorder, type DispatchArgs, type Gpu, type KernelSpec, type KernelTiming } from '../src/gpu';
import { LoraAdapter, defaultLoraConfig } from '../src/model/lora';
import { CausalLM, defaultLoraLinearPath, type LoraLinearPath } from '../src/model/transformer';
import { DEFAULT_OPTIMIZER, LoraOptimizer } from '../src/train/optimizer';
import { buildRandomModel, randomBatch } from '../src/model/randomModel';
import { namedModel } from './synthetic';
import { median } from '../src/bench/table';
import { parseModelSpec, parseShape } from './train';

const SEP = '\u0001';

/**
 * Makes every Recorder submit with timestamps and keeps the timings, each label prefixed by its
 * kernel's name. Returns a function that undoes the patch and hands over what was collected.
 */
function instrumentRecorders(): () => Promise<KernelTiming[]> {
  const proto = Recorder.prototype as unknown as {
    dispatch(spec: KernelSpec, args: DispatchArgs): Recorder;
    submit(): void;
  };
  const { dispatch, submit } = proto;
  const pending: Promise<KernelTiming[]>[] = [];
  proto.dispatch = function (this: Recorder, spec: KernelSpec, args: DispatchArgs) {
    return dispatch.call(this, spec, { ...args, label: `${spec.name}${SEP}${args.label ?? spec.name}` });
  };
  proto.submit = function (this: Recorder) {
    pending.push(this.submitTimed());
  };
  return async () => {
    proto.dispatch = dispatch;
    proto.submit = submit;
    return (await Promise.all(pending)).flat();
  };
}

interface Breakdown {
  totalMs: number;
  dispatches: number;
  byKernel: Map<string, { ms: number; n: number }>;
  bySite: Map<string, { ms: number; n: number }>;
}

function breakdown(timings: KernelTiming[]): Breakdown {
  const byKernel = new Map<string, { ms: number; n: number }>();
  const bySite = new Map<string, { ms: number; n: number }>();
  const add = (m: Map<string, { ms: number; n: number }>, key: string, ms: number) => {
    const e = m.get(key) ?? { ms: 0, n: 0 };
    e.ms += ms;
    e.n++;
    m.set(key, e);
  };
  let totalMs = 0;
  for (const t of timings) {
    const [kernel, label] = t.label.split(SEP) as [string, string];
    // Call sites without layer numbers: 'q_proj.dx' and 'lm_head' stay, 'lora_grad_a' stays.
    add(byKernel, kernel, t.ms);
    add(bySite, `${kernel}: ${label}`, t.ms);
    totalMs += t.ms;
  }
  return { totalMs, dispatches: timings.length, byKernel, bySite };
}

function table(title: string, m: Map<string, { ms: number; n: number }>, total: number, top = Infinity): string {
  const rows = [...m.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top);
  const lines = [`| ${title} | dispatches | ms | share |`, '| --- | --- | --- | --- |'];
  for (const [k, v] of rows) lines.push(`| ${k} | ${v.n} | ${v.ms.toFixed(1)} | ${((100 * v.ms) / total).toFixed(1)}% |`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'tiny' },
      shape: { type: 'string', default: '1x128' },
      path: { type: 'string' },
      steps: { type: 'string', default: '3' },
      dtype: { type: 'string', default: 'f16' },
      rank: { type: 'string', default: '16' },
      top: { type: 'string', default: '25' },
    },
  });
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const gpu: Gpu = await acquireGpu();
  // Every dispatch recorded and timed: no replayed steps, no submits split inside a step.
  gpu.replay = false;
  const paths = (values.path ?? `${defaultLoraLinearPath(gpu)}`).split(',') as LoraLinearPath[];
  for (const p of paths) if (p !== 'fused' && p !== 'unfused') throw new Error(`--path: fused or unfused, got '${p}'`);
  const dtype = values.dtype === 'f32' ? 'f32' : 'f16';
  const spec = parseModelSpec(values.model);
  const [B, T] = parseShape(values.shape);
  const named = namedModel(spec.name, spec.layers);
  const steps = Number(values.steps);
  log(`adapter: ${gpu.adapter.description || gpu.adapter.device} (timestamps: ${gpu.hasTimestamps}); default LoRA path: ${defaultLoraLinearPath(gpu)}`);

  const weights = await buildRandomModel(gpu, named.config, { dtype, seed: 1 });
  const model = new CausalLM(gpu, named.config, weights);
  const adapter = new LoraAdapter(gpu, named.config, weights, defaultLoraConfig(named.config, { r: Number(values.rank), alpha: 32 }));
  adapter.initialize(1);
  const optimizer = new LoraOptimizer(gpu, adapter);
  const batch = randomBatch(named.config, B, T, 7);
  const N = B * T;
  /** One bench-suite step; returns the ms spent before waiting on the GPU. */
  const step = async (): Promise<number> => {
    const t0 = performance.now();
    const done = model.forwardBackward(batch, adapter, { gradScale: 1 / N, accumulate: false }, false);
    optimizer.apply(DEFAULT_OPTIMIZER);
    const encodeMs = performance.now() - t0;
    await done;
    await gpu.sync();
    return encodeMs;
  };

  const out: string[] = [`# Profile: ${named.label} ${B}x${T} ${dtype} r=${values.rank}, ${gpu.adapter.description || gpu.adapter.device}`];
  for (const path of paths) {
    model.loraLinearPath = path;
    log(`${path}: warm-up step (compiles pipelines)`);
    await step();
  }
  // Paths alternate step by step, so a machine whose load changes treats them alike.
  const wall = new Map<LoraLinearPath, number[]>(paths.map((p) => [p, []]));
  const encode = new Map<LoraLinearPath, number[]>(paths.map((p) => [p, []]));
  for (let s = 0; s < steps; s++) {
    for (const path of paths) {
      model.loraLinearPath = path;
      const t0 = performance.now();
      encode.get(path)!.push(await step());
      wall.get(path)!.push(performance.now() - t0);
      log(`${path}: step ${s + 1}/${steps} ${wall.get(path)!.at(-1)!.toFixed(0)} ms (encode ${encode.get(path)!.at(-1)!.toFixed(0)} ms)`);
    }
  }
  for (const path of paths) {
    model.loraLinearPath = path;
    let b: Breakdown | null = null;
    if (gpu.hasTimestamps) {
      const collect = instrumentRecorders();
      try {
        await step();
      } finally {
        b = breakdown(await collect());
      }
    }
    out.push(`\n## LoRA linear path: ${path}\n`);
    out.push(`wall ms/step (median of ${steps}, paths alternated): ${median(wall.get(path)!).toFixed(1)} (all: ${wall.get(path)!.map((t) => t.toFixed(0)).join(', ')}); CPU record + encode: ${median(encode.get(path)!).toFixed(1)} ms`);
    if (b) {
      out.push(`timed step: ${b.dispatches} dispatches, kernel time sum ${b.totalMs.toFixed(1)} ms\n`);
      out.push(table('kernel', b.byKernel, b.totalMs));
      out.push('');
      out.push(table(`kernel: call site (top ${values.top})`, b.bySite, b.totalMs, Number(values.top)));
    }
  }
  optimizer.destroy();
  adapter.destroy();
  model.destroy();
  gpu.destroy();
  console.log(out.join('\n'));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
