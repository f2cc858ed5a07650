/**
 * Whittle's benchmark runner:  npm run bench -- <suites...> [flags]   (see bench/README.md)
 *
 * Each suite returns BenchRow[]; the runner prints them as a markdown table on stdout, writes
 * them with the adapter and machine description to bench/results/<suite>-<date>.json, and
 * reports progress on stderr.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, platform, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { acquireGpu, KERNEL_CHOICES, type Gpu, type KernelChoice } from '../src/gpu';
import type { RecomputePolicy } from '../src/model/memoryEstimate';
import type { LoraLinearPath } from '../src/model/transformer';
import { benchGenerate } from './generate';
import { benchResultDocument, kernelShapes, KERNEL_PRESETS, runKernelSuite, type KernelPreset, type KernelSuiteShapes } from '../src/bench/kernels';
import { benchMemory } from './memory';
import { runPeer, torchUnavailable, type PeerOutput } from './peer';
import { markdownTable, peerBlasCell, type BenchRow, type PeerEnvironment } from '../src/bench/table';
import { DEFAULT_MODELS, layersOption, modelList, positiveInt as int, SUITE_OPTIONS, weightDtype } from './options';
import { benchTrain, parseModelSpec, parseShape } from './train';

const SUITES = ['kernels', 'train', 'generate', 'memory'] as const;
type Suite = (typeof SUITES)[number];

const HELP = `usage: npm run bench -- <suite...> [flags]

suites: ${SUITES.join(', ')} (or all)

  --models a,b        train/generate models: tiny, smollm2-135m, qwen2.5-0.5b, gpt2,
                      llama-3.2-1b-instruct, tinyllama-1.1b-chat; name:L keeps L layers
                      (train default tiny,smollm2-135m:2; generate default tiny,smollm2-135m)
  --layers N          cut every model (train, generate, memory) to N layers
  --shapes BxT,...    train batch shapes (default 1x128)
  --dtype f16|f32     base weight storage (default f16, as the app loads models)
  --rank R            LoRA rank (default 16; all linear layers)
  --steps N           timed train steps per case (default 3)
  --prompt N          generate: prompt tokens (default 64)
  --new-tokens N      generate: decoded tokens (default 32)
  --reps N            generate: timed runs (default 3)
  --memory-model M    memory: model (default qwen2.5-0.5b)
  --memory-shape BxT  memory: batch shape (default 4x512)
  --lm-head           kernels: include the 512x576x49152 LM-head matmul (default on GPUs,
                      off on CPU adapters, where it takes minutes); --no-lm-head: leave it out
  --kernel-shapes P   kernels: tiny, small (128 tokens) or full (SmolLM2-135M at 512 tokens,
                      the default); the browser's bench page offers the same presets
  --lora-path a,b     train: LoRA linear path(s), fused and/or unfused (default: the
                      adapter's, see defaultLoraLinearPath); two give side-by-side rows
  --recompute a,b     train: activation policies always, never and/or auto (default: the
                      model's, auto); each gives a row, e.g. --recompute always,auto
  --lora-dropout X    train: LoRA dropout probability (default 0), a new mask seed each step
  --dry-run           train: record and encode each step without submitting it; rows give
                      the per-step counts and encode ms only (cheap for full-size models);
                      generate: only the per-token counts and encode ms (no timed runs)
  --kernels P         kernel plan: auto, cpu or gpu (default auto: cpu on CPU adapters);
                      recorded in each result's flags
  --no-peer           skip the PyTorch peers
  --out DIR           where the JSON goes (default bench/results)
  --help`;

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      ...SUITE_OPTIONS,
      'memory-model': { type: 'string', default: 'qwen2.5-0.5b' },
      'memory-shape': { type: 'string', default: '4x512' },
      'no-peer': { type: 'boolean', default: false },
      kernels: { type: 'string', default: 'auto' },
      'dry-run': { type: 'boolean', default: false },
      'lm-head': { type: 'boolean' },
      'no-lm-head': { type: 'boolean' },
      'kernel-shapes': { type: 'string', default: 'full' },
      'lora-path': { type: 'string' },
      recompute: { type: 'string' },
      'lora-dropout': { type: 'string', default: '0' },
      out: { type: 'string', default: join('bench', 'results') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || positionals.length === 0) {
    console.log(HELP);
    return;
  }
  const suites: Suite[] = positionals.includes('all') ? [...SUITES] : (positionals as Suite[]);
  for (const s of suites) if (!SUITES.includes(s)) throw new Error(`unknown suite '${s}' (known: ${SUITES.join(', ')}, all)`);
  const dtype = weightDtype(values.dtype);
  const layers = layersOption(values.layers);
  const models = (suite: keyof typeof DEFAULT_MODELS) => modelList(values.models ?? DEFAULT_MODELS[suite], layers);
  const peer = !values['no-peer'];
  const rank = int('rank', values.rank);

  const kernels = values.kernels as KernelChoice;
  if (!KERNEL_CHOICES.includes(kernels)) throw new Error(`--kernels must be one of ${KERNEL_CHOICES.join(', ')}, got '${kernels}'`);
  const gpu = await acquireGpu({ kernels });
  log(`adapter: ${gpu.adapter.description || gpu.adapter.device} (f16: ${gpu.hasF16}, timestamps: ${gpu.hasTimestamps}); kernels: ${gpu.kernels} plan`);
  for (const suite of suites) {
    const t0 = performance.now();
    let rows: BenchRow[];
    let peerEnvironment: PeerEnvironment | undefined;
    const flags: Record<string, unknown> = { dtype, peer, kernels: gpu.kernels };
    if (suite === 'kernels') {
      const lmHead = values['no-lm-head'] ? false : (values['lm-head'] ?? gpu.kernels !== 'cpu');
      const preset = values['kernel-shapes'] as KernelPreset;
      if (!KERNEL_PRESETS.includes(preset)) throw new Error(`--kernel-shapes must be one of ${KERNEL_PRESETS.join(', ')}, got '${preset}'`);
      Object.assign(flags, { lmHead, kernelShapes: preset });
      ({ rows, peerEnvironment } = await benchKernels(gpu, { peer, shapes: kernelShapes(preset, lmHead), log }));
    } else if (suite === 'train') {
      const opts = {
        models: models('train'),
        shapes: values.shapes.split(',').map(parseShape),
        dtype,
        rank,
        steps: int('steps', values.steps),
        peer,
        dryRun: values['dry-run'],
        loraDropout: dropoutOption(values['lora-dropout']),
        log,
        onPeerEnvironment: (env: PeerEnvironment) => (peerEnvironment = env),
        ...(values['lora-path'] ? { loraPaths: parseLoraPaths(values['lora-path']) } : {}),
        ...(values.recompute ? { recompute: parseRecompute(values.recompute) } : {}),
      } as const;
      Object.assign(flags, {
        models: opts.models,
        shapes: opts.shapes,
        rank,
        steps: opts.steps,
        loraPaths: values['lora-path'] ?? 'default',
        recompute: values.recompute ?? 'default',
        dryRun: opts.dryRun,
        loraDropout: opts.loraDropout,
      });
      rows = await benchTrain(gpu, opts);
    } else if (suite === 'generate') {
      const opts = {
        models: models('generate'),
        dtype,
        prompt: int('prompt', values.prompt),
        newTokens: int('new-tokens', values['new-tokens']),
        reps: int('reps', values.reps),
        dryRun: values['dry-run'],
        log,
      } as const;
      Object.assign(flags, { models: opts.models, prompt: opts.prompt, newTokens: opts.newTokens, reps: opts.reps, dryRun: opts.dryRun });
      rows = await benchGenerate(gpu, opts);
    } else {
      const [B, T] = parseShape(values['memory-shape']);
      const spec = parseModelSpec(values['memory-model']);
      const model = layers === undefined ? spec : { ...spec, layers };
      Object.assign(flags, { model, B, T, rank });
      rows = await benchMemory(gpu, { model, B, T, rank, dtype, log });
    }
    const seconds = (performance.now() - t0) / 1000;
    log(`${suite}: done in ${seconds.toFixed(0)} s`);
    if (peerEnvironment) {
      log(`${suite}: peer torch ${peerEnvironment.torch}, ${peerBlasCell(peerEnvironment)}, ${peerEnvironment.threads} thread(s), OPENBLAS_CORETYPE=${peerEnvironment.openblasCoretype ?? '(unset)'}`);
    }
    const file = writeResults(gpu, suite, rows, flags, seconds, values.out, peerEnvironment);
    log(`${suite}: wrote ${file}`);
    console.log(`\n## ${suite}\n\n${markdownTable(rows)}\n`);
  }
  gpu.destroy();
}

function dropoutOption(v: string): number {
  const p = Number(v);
  if (!(p >= 0 && p < 1)) throw new Error(`--lora-dropout must be in [0, 1), got '${v}'`);
  return p;
}

function parseLoraPaths(v: string): LoraLinearPath[] {
  const paths = v.split(',').map((p) => p.trim());
  for (const p of paths) if (p !== 'fused' && p !== 'unfused') throw new Error(`--lora-path: fused or unfused, got '${p}'`);
  return paths as LoraLinearPath[];
}

function parseRecompute(v: string): RecomputePolicy[] {
  const policies = v.split(',').map((p) => p.trim());
  for (const p of policies) if (p !== 'always' && p !== 'never' && p !== 'auto') throw new Error(`--recompute: always, never or auto, got '${p}'`);
  return policies as RecomputePolicy[];
}

function writeResults(gpu: Gpu, suite: Suite, rows: BenchRow[], flags: Record<string, unknown>, seconds: number, dir: string, peer?: PeerEnvironment): string {
  const now = new Date();
  const cpu = cpus();
  const result = benchResultDocument(gpu, suite, rows, flags, seconds, {
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryBytes: totalmem(),
    os: `${platform()} ${release()}`,
    node: process.version,
  }, now);
  if (peer) Object.assign(result, { peer });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${suite}-${now.toISOString().slice(0, 10)}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 1)}\n`);
  return file;
}


// ------------------------------------------------------------------------------ kernels suite

const TORCH_KERNELS = join(dirname(fileURLToPath(import.meta.url)), 'peers', 'torch_kernels.py');

async function benchKernels(
  gpu: Gpu,
  opts: { peer: boolean; shapes: KernelSuiteShapes; log: (msg: string) => void },
): Promise<{ rows: BenchRow[]; peerEnvironment?: PeerEnvironment }> {
  const { rows, peers } = await runKernelSuite(gpu, opts.shapes, opts.log);
  const log = opts.log;
  if (!opts.peer) return { rows };
  const missing = torchUnavailable();
  if (missing) {
    for (const row of peers.keys()) row.note = [row.note, `no PyTorch peer: ${missing}`].filter(Boolean).join('; ');
    return { rows };
  }
  const cases = [...new Map([...peers.values()].map((c) => [c.name, c])).values()];
  log(`kernels: PyTorch peer for ${cases.length} cases`);
  let out: PeerOutput<{ name: string; ms: number; gflops: number; threads: number }>;
  try {
    out = runPeer(TORCH_KERNELS, cases);
  } catch (e) {
    for (const row of peers.keys()) row.note = [row.note, `PyTorch peer failed: ${(e as Error).message}`].filter(Boolean).join('; ');
    return { rows };
  }
  const env = out.environment;
  for (const [row, c] of peers) {
    const p = out.results.find((o) => o.name === c.name);
    if (!p) continue;
    const where = env.device === 'cpu' ? `CPU (${p.threads} threads)` : env.device;
    row.peer = { name: `torch ${env.torch} f32 ${where}`, ms: p.ms, gflops: p.gflops, blas: peerBlasCell(env) };
  }
  return { rows, peerEnvironment: env };
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
