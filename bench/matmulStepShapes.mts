/**
 * Every CPU-plan matmul of one LoRA training step, timed with the plan's kernel and with 'rows'
 * (16 threads) on the same operands: which step shapes a kernel change speeds up or slows down.
 * The step is recorded, not run; each distinct launch (shape, flags) is then replayed on its
 * own, best of `reps` by the process's CPU time and by wall time:
 *
 *   npx tsx --import ./scripts/register-wgsl.mjs bench/matmulStepShapes.mts MODEL LAYERS BxT [reps]
 *
 * e.g. `smollm2-135m 2 1x128`. Prints one line per launch and a JSON summary.
 */
import common from '../shaders/matmulCommon.wgsl?raw';
import own from '../shaders/matmul.wgsl?raw';
import { acquireGpu, Recorder, type DispatchArgs, type KernelSpec } from '../src/gpu';
import { processCpuMs } from '../src/bench/timing';
import { LoraAdapter, defaultLoraConfig } from '../src/model/lora';
import { buildRandomModel, randomBatch } from '../src/model/randomModel';
import { CausalLM } from '../src/model/transformer';
import { namedModel } from './synthetic';

const [name, layers, shape, repsArg] = process.argv.slice(2);
const reps = Number(repsArg ?? 3);
const launches = new Map<string, { spec: KernelSpec; args: DispatchArgs; count: number; m: number; n: number; k: number; flags: number }>();
const proto = Recorder.prototype as unknown as { dispatch(s: KernelSpec, a: DispatchArgs): Recorder };
const { dispatch } = proto;
let capture = true;
proto.dispatch = function (this: Recorder, spec: KernelSpec, args: DispatchArgs) {
  if (capture && spec.entryPoint.startsWith('matmul_rows') && args.params) {
    const u = new Uint32Array(args.params.buffer, args.params.byteOffset, 16);
    const [m, n, k, flags] = [u[0]!, u[1]!, u[2]!, u[15]!];
    const key = `${m}x${n}x${k} flags ${flags} batch ${args.workgroups[2] ?? 1}`;
    const seen = launches.get(key);
    if (seen) seen.count++;
    else launches.set(key, { spec, args, count: 1, m, n, k, flags });
  }
  return dispatch.call(this, spec, args);
};

const gpu = await acquireGpu();
gpu.dryRun = true;
const named = namedModel(name!, Number(layers));
const [B, T] = shape!.split('x').map(Number);
const weights = await buildRandomModel(gpu, named.config, { dtype: 'f16' });
const model = new CausalLM(gpu, named.config, weights, {});
const adapter = new LoraAdapter(gpu, named.config, weights, defaultLoraConfig(named.config, { r: 16, alpha: 32 }));
adapter.initialize(1);
await model.forwardBackward(randomBatch(named.config, B!, T!), adapter, { gradScale: 1 / (B! * T!), accumulate: false }, false);
capture = false;
gpu.dryRun = false;

const rows16: KernelSpec = { name: 'matmul_rows', code: common + own, entryPoint: 'matmul_rows', bindings: ['uniform', 'read', 'read', 'read', 'write'], constants: { WG_X: 16 } };
async function best(spec: KernelSpec, args: DispatchArgs): Promise<{ ms: number; cpu: number }> {
  let ms = Infinity;
  let cpu = Infinity;
  for (let i = 0; i <= reps; i++) {
    const rec = gpu.recorder('step shapes');
    const c0 = processCpuMs()!;
    const t0 = performance.now();
    rec.dispatch(spec, args);
    rec.submit();
    await gpu.sync();
    // The first run compiles the pipeline: not counted.
    if (i > 0) {
      ms = Math.min(ms, performance.now() - t0);
      cpu = Math.min(cpu, processCpuMs()! - c0);
    }
  }
  return { ms, cpu };
}

const out = [];
let sumNew = 0;
let sumOld = 0;
for (const [key, l] of launches) {
  const now = await best(l.spec, l.args);
  const oldArgs = l.spec.entryPoint === 'matmul_rows_shared' ? { ...l.args, workgroups: [Math.ceil(l.n / 64), l.args.workgroups[1], l.args.workgroups[2]] as const } : l.args;
  const old = await best(rows16, oldArgs);
  sumNew += now.cpu * l.count;
  sumOld += old.cpu * l.count;
  const line = { key, kernel: l.spec.entryPoint, perStep: l.count, cpuMs: +now.cpu.toFixed(2), rows16CpuMs: +old.cpu.toFixed(2), ms: +now.ms.toFixed(2), rows16Ms: +old.ms.toFixed(2) };
  console.log(JSON.stringify(line));
  out.push(line);
}
console.log(JSON.stringify({ model: name, layers, shape, launches: out.length, stepCpuMs: +sumNew.toFixed(1), stepCpuMsRows16: +sumOld.toFixed(1) }));
process.exit(0);
