/**
 * Where the time of one LoRA training step goes, by kernel:
 *
 *   npx tsx --import ./scripts/register-wgsl.mjs bench/profile.ts [--model tiny] [--shape 1x128]
 *       [--path fused,unfused] [--recompute always,auto] [--steps 3] [--timed 1] [--dtype f16|f32] [--rank 16]
 *
 * For each LoRA linear path (see `defaultLoraLinearPath`) and activation policy (see
 * `RecomputePolicy`; default the model's own) it runs the bench train suite's step
 * (forwardBackward + clip + AdamW, the optimizer's verdict read) and reports:
 *  - wall clock per step, and how much of it is the CPU recording and encoding the step (the
 *    synchronous part of forwardBackward + apply, before the GPU is waited on), and the process's
 *    CPU time (on lavapipe, the kernels' work too, far less stretched by the machine's load);
 *  - `--timed` steps with a timestamp pair around every dispatch (each in its own compute pass, so the
 *    sum is a bit above the untimed GPU time), summed by phase (forward, head backward, layer
 *    recompute, layer backward, optimizer), by kernel and by kernel + call site.
 * Needs the adapter's timestamp-query feature for the second part (lavapipe has it).
 */
import { parseArgs } from 'node:util';

import { acquireGpu, Recorder, type DispatchArgs, type Gpu, type KernelSpec, type KernelTiming } from '../src/gpu';
import { LoraAdapter, defaultLoraConfig } from '../src/model/lora';
import type { RecomputePolicy } from '../src/model/memoryEstimate';
import { CausalLM, defaultLoraLinearPath, type LoraLinearPath } from '../src/model/transformer';
import { DEFAULT_OPTIMIZER, LoraOptimizer } from '../src/train/optimizer';
import { buildRandomModel, randomBatch } from '../src/model/randomModel';
import { namedModel } from './synthetic';
import { median } from '../src/bench/table';
import { parseModelSpec, parseShape } from './train';

const SEP = '\u0001';

/** The phase of the step being recorded, set by the wrappers of `trackPhases`. */
let phase = 'forward';

/**
 * Tags every dispatch with the phase of the step that records it: the model's forward pass, the
 * head and loss backward, a layer's recomputed forward (a layer forward inside its backward), the
 * rest of the layer backward, and the optimizer.
 */
function trackPhases(optimizer: LoraOptimizer): void {
  const model = CausalLM.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const wrap = (target: Record<string, (...args: unknown[]) => unknown>, name: string, enter: () => string, leave?: (before: string) => string) => {
    const original = target[name]!;
    target[name] = function (this: unknown, ...args: unknown[]) {
      const before = phase;
      phase = enter();
      try {
        return original.apply(this, args);
      } finally {
        phase = leave ? leave(before) : before;
      }
    };
  };
  wrap(model, 'recordForward', () => 'forward', () => 'head backward');
  wrap(model, 'layerBackward', () => 'layer backward', () => 'layer backward');
  wrap(model, 'layerForward', () => (phase === 'layer backward' ? 'recompute' : 'forward'));
  const opt = optimizer as unknown as Record<string, (...args: unknown[]) => unknown>;
  wrap(opt, 'apply', () => 'optimizer', () => 'forward');
}

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
    return dispatch.call(this, spec, { ...args, label: `${phase}${SEP}${spec.name}${SEP}${args.label ?? spec.name}` });
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
  byPhase: Map<string, { ms: number; n: number }>;
  bySite: Map<string, { ms: number; n: number }>;
}

function breakdown(timings: KernelTiming[]): Breakdown {
  const byKernel = new Map<string, { ms: number; n: number }>();
  const bySite = new Map<string, { ms: number; n: number }>();
  const byPhase = new Map<string, { ms: number; n: number }>();
  const add = (m: Map<string, { ms: number; n: number }>, key: string, ms: number) => {
    const e = m.get(key) ?? { ms: 0, n: 0 };
    e.ms += ms;
    e.n++;
    m.set(key, e);
  };
  let totalMs = 0;
  for (const t of timings) {
    const [stage, kernel, label] = t.label.split(SEP) as [string, string, string];
    add(byPhase, stage, t.ms);
    // Call sites without layer numbers: 'q_proj.dx' and 'lm_head' stay, 'lora_grad_a' stays.
    add(byKernel, kernel, t.ms);
    add(bySite, `${kernel}: ${label}`, t.ms);
    totalMs += t.ms;
  }
  return { totalMs, dispatches: timings.length, byKernel, byPhase, bySite };
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
      recompute: { type: 'string' },
      steps: { type: 'string', default: '3' },
      dtype: { type: 'string', default: 'f16' },
      rank: { type: 'string', default: '16' },
      top: { type: 'string', default: '25' },
      timed: { type: 'string', default: '1' },
    },
  });
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const gpu: Gpu = await acquireGpu();
  // Every dispatch recorded and timed: no replayed steps, no submits split inside a step.
  gpu.replay = false;
  const paths = (values.path ?? `${defaultLoraLinearPath(gpu)}`).split(',') as LoraLinearPath[];
  for (const p of paths) if (p !== 'fused' && p !== 'unfused') throw new Error(`--path: fused or unfused, got '${p}'`);
  const policies = (values.recompute ?? 'auto').split(',') as RecomputePolicy[];
  for (const p of policies) if (!['always', 'never', 'auto'].includes(p)) throw new Error(`--recompute: always, never or auto, got '${p}'`);
  const variants = paths.flatMap((path) => policies.map((recompute) => ({ path, recompute })));
  const dtype = values.dtype === 'f32' ? 'f32' : 'f16';
  const spec = parseModelSpec(values.model);
  const [B, T] = parseShape(values.shape);
  const named = namedModel(spec.name, spec.layers);
  const steps = Number(values.steps);
  const timedSteps = Number(values.timed);
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
    optimizer.apply(DEFAULT_OPTIMIZER, DEFAULT_OPTIMIZER.lr, model.stepTotals(B, T, adapter));
    const encodeMs = performance.now() - t0;
    await done;
    // The optimizer holds a few steps in flight at most: its verdict read ends this one.
    await optimizer.readVerdict();
    await gpu.sync();
    return encodeMs;
  };

  trackPhases(optimizer);
  type Variant = (typeof variants)[number];
  const select = (v: Variant) => {
    model.loraLinearPath = v.path;
    model.recompute = v.recompute;
  };
  const name = (v: Variant) => `${v.path}, recompute ${v.recompute} (${model.keptLayers(B, T, adapter)} of ${named.config.layers} layers kept)`;
  const out: string[] = [`# Profile: ${named.label} ${B}x${T} ${dtype} r=${values.rank}, ${gpu.adapter.description || gpu.adapter.device}`];
  for (const v of variants) {
    select(v);
    log(`${name(v)}: warm-up step (compiles pipelines)`);
    await step();
  }
  // Variants alternate step by step, so a machine whose load changes treats them alike.
  const wall = new Map<Variant, number[]>(variants.map((p) => [p, []]));
  const encode = new Map<Variant, number[]>(variants.map((p) => [p, []]));
  // The process's CPU time: lavapipe runs the kernels on this process's threads, so on that
  // adapter it counts the step's work whatever the machine's load (other processes' time is not in it).
  const cpu = new Map<Variant, number[]>(variants.map((p) => [p, []]));
  for (let s = 0; s < steps; s++) {
    for (const v of variants) {
      select(v);
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      encode.get(v)!.push(await step());
      const c = process.cpuUsage(cpu0);
      wall.get(v)!.push(performance.now() - t0);
      cpu.get(v)!.push((c.user + c.system) / 1000);
      log(`${name(v)}: step ${s + 1}/${steps} ${wall.get(v)!.at(-1)!.toFixed(0)} ms, CPU ${cpu.get(v)!.at(-1)!.toFixed(0)} ms (encode ${encode.get(v)!.at(-1)!.toFixed(0)} ms)`);
    }
  }
  // Timed steps, variants alternated; each variant's tables come from its median step (by kernel
  // time sum), the side-by-side phase table from each phase's median over the timed steps.
  const timed = new Map<Variant, Breakdown[]>(variants.map((p) => [p, []]));
  for (let s = 0; s < (gpu.hasTimestamps ? timedSteps : 0); s++) {
    for (const v of variants) {
      select(v);
      const collect = instrumentRecorders();
      try {
        await step();
      } finally {
        timed.get(v)!.push(breakdown(await collect()));
      }
    }
  }
  const phases = new Map<Variant, Breakdown[]>();
  for (const v of variants) {
    const all = timed.get(v)!;
    const b = all.length ? [...all].sort((x, y) => x.totalMs - y.totalMs)[(all.length - 1) >> 1]! : null;
    if (b) phases.set(v, all);
    out.push(`\n## ${name(v)}\n`);
    out.push(`wall ms/step (median of ${steps}, variants alternated): ${median(wall.get(v)!).toFixed(1)} (all: ${wall.get(v)!.map((t) => t.toFixed(0)).join(', ')}); CPU record + encode: ${median(encode.get(v)!).toFixed(1)} ms; process CPU time per step: ${median(cpu.get(v)!).toFixed(1)} ms (all: ${cpu.get(v)!.map((t) => t.toFixed(0)).join(', ')})`);
    if (b) {
      out.push(`timed step (median of ${all.length} by kernel time sum: ${all.map((x) => x.totalMs.toFixed(0)).join(', ')}): ${b.dispatches} dispatches, kernel time sum ${b.totalMs.toFixed(1)} ms\n`);
      out.push(table('phase', b.byPhase, b.totalMs));
      out.push('');
      out.push(table('kernel', b.byKernel, b.totalMs));
      out.push('');
      out.push(table(`kernel: call site (top ${values.top})`, b.bySite, b.totalMs, Number(values.top)));
    }
  }
  if (phases.size > 1) {
    // The phases side by side, one column per variant (dispatches / kernel ms).
    const order = ['forward', 'head backward', 'recompute', 'layer backward', 'optimizer'];
    const cols = [...phases.keys()];
    out.push(`\n## Phases side by side (dispatches / median kernel ms over the timed steps)\n`);
    out.push(`| phase | ${cols.map((v) => `${v.path}, ${v.recompute}`).join(' | ')} |`);
    out.push(`| --- |${cols.map(() => ' --- |').join('')}`);
    for (const p of [...order, 'total']) {
      const cell = (v: Variant) => {
        const es = phases.get(v)!.map((b) => (p === 'total' ? { n: b.dispatches, ms: b.totalMs } : (b.byPhase.get(p) ?? { n: 0, ms: 0 })));
        return `${es[0]!.n} / ${median(es.map((e) => e.ms)).toFixed(1)}`;
      };
      out.push(`| ${p} | ${cols.map(cell).join(' | ')} |`);
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
