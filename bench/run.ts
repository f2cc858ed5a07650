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

import { acquireGpu, toF16Array, type Gpu, type Recorder } from '../src/gpu';
import { loraDown, loraLinear } from '../src/kernels/lora';
import { isCpuAdapter, matmul } from '../src/kernels/matmul';
import { maxRelError, Rng } from '../src/selftest/compare';
import { benchAttention } from './attention';
import { benchGenerate } from './generate';
import { benchMatmul, SMOLLM2_SHAPES } from './matmul';
import { benchMemory } from './memory';
import { markdownTable, median, runPeer, torchUnavailable, type BenchRow } from './table';
import { benchTrain, parseModelSpec, parseShape, type ModelSpec } from './train';

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
      models: { type: 'string' },
      layers: { type: 'string' },
      shapes: { type: 'string' },
      dtype: { type: 'string', default: 'f16' },
      rank: { type: 'string', default: '16' },
      steps: { type: 'string', default: '3' },
      prompt: { type: 'string', default: '64' },
      'new-tokens': { type: 'string', default: '32' },
      reps: { type: 'string', default: '3' },
      'memory-model': { type: 'string', default: 'qwen2.5-0.5b' },
      'memory-shape': { type: 'string', default: '4x512' },
      'no-peer': { type: 'boolean', default: false },
      'lm-head': { type: 'boolean' },
      'no-lm-head': { type: 'boolean' },
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
  const int = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${v}'`);
    return n;
  };
  const dtype = values.dtype;
  if (dtype !== 'f16' && dtype !== 'f32') throw new Error(`--dtype must be f16 or f32, got '${dtype}'`);
  const layers = values.layers === undefined ? undefined : int('layers', values.layers);
  const models = (fallback: string): ModelSpec[] =>
    (values.models ?? fallback).split(',').map((s) => {
      const spec = parseModelSpec(s.trim());
      return layers === undefined ? spec : { ...spec, layers };
    });
  const peer = !values['no-peer'];
  const rank = int('rank', values.rank);

  const gpu = await acquireGpu();
  log(`adapter: ${gpu.adapter.description || gpu.adapter.device} (f16: ${gpu.hasF16}, timestamps: ${gpu.hasTimestamps})`);
  for (const suite of suites) {
    const t0 = performance.now();
    let rows: BenchRow[];
    const flags: Record<string, unknown> = { dtype, peer };
    if (suite === 'kernels') {
      const lmHead = values['no-lm-head'] ? false : (values['lm-head'] ?? !isCpuAdapter(gpu));
      flags.lmHead = lmHead;
      rows = await benchKernels(gpu, { peer, lmHead, log });
    } else if (suite === 'train') {
      const opts = {
        models: models('tiny,smollm2-135m:2'),
        shapes: (values.shapes ?? '1x128').split(',').map(parseShape),
        dtype,
        rank,
        steps: int('steps', values.steps),
        peer,
        log,
      } as const;
      Object.assign(flags, { models: opts.models, shapes: opts.shapes, rank, steps: opts.steps });
      rows = await benchTrain(gpu, opts);
    } else if (suite === 'generate') {
      const opts = {
        models: models('tiny,smollm2-135m'),
        dtype,
        prompt: int('prompt', values.prompt),
        newTokens: int('new-tokens', values['new-tokens']),
        reps: int('reps', values.reps),
        log,
      } as const;
      Object.assign(flags, { models: opts.models, prompt: opts.prompt, newTokens: opts.newTokens, reps: opts.reps });
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
    const file = writeResults(gpu, suite, rows, flags, seconds, values.out);
    log(`${suite}: wrote ${file}`);
    console.log(`\n## ${suite}\n\n${markdownTable(rows)}\n`);
  }
  gpu.destroy();
}

function writeResults(gpu: Gpu, suite: Suite, rows: BenchRow[], flags: Record<string, unknown>, seconds: number, dir: string): string {
  const now = new Date();
  const { limits, ...adapter } = gpu.adapter;
  const cpu = cpus();
  const result = {
    suite,
    date: now.toISOString(),
    adapter: {
      ...adapter,
      limits: { maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, maxBufferSize: limits.maxBufferSize },
    },
    machine: {
      cpu: cpu[0]?.model ?? 'unknown',
      cores: cpu.length,
      memoryBytes: totalmem(),
      os: `${platform()} ${release()}`,
      node: process.version,
    },
    flags,
    seconds,
    rows,
  };
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${suite}-${now.toISOString().slice(0, 10)}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 1)}\n`);
  return file;
}


// ------------------------------------------------------------------------------ kernels suite

const TORCH_KERNELS = join(dirname(fileURLToPath(import.meta.url)), 'peers', 'torch_kernels.py');

interface KernelPeerCase {
  kind: 'matmul' | 'attention' | 'attention_backward' | 'lora';
  name: string;
  [dim: string]: unknown;
}

/** GPU time of one recording: timestamp queries when present, else wall clock around submit + sync. */
async function timeRecording(gpu: Gpu, record: (rec: Recorder) => void): Promise<number> {
  const rec = gpu.recorder('bench');
  record(rec);
  if (gpu.hasTimestamps) return (await rec.submitTimed()).reduce((s, t) => s + t.ms, 0);
  const t0 = performance.now();
  rec.submit();
  await gpu.sync();
  return performance.now() - t0;
}

/**
 * A LoRA linear layer at SmolLM2-135M's gate_proj shape, fused (loraDown + loraLinear: the low-rank
 * product adds into the base product's accumulators) against unfused (base matmul, loraDown,
 * then u·Bᵀ added into y by a second matmul with beta = 1). Both outputs are compared too.
 */
async function benchLora(gpu: Gpu, log: (msg: string) => void, reps = 3): Promise<{ rows: BenchRow[]; peer: KernelPeerCase }> {
  const [T, K, N, r] = [512, 576, 1536, 16];
  const scale = 2;
  const rng = new Rng(5);
  const x = gpu.upload(rng.f32(T * K));
  const a = gpu.upload(rng.f32(r * K, -0.05, 0.05));
  const b = gpu.upload(rng.f32(N * r, -0.05, 0.05));
  const u = gpu.createBuffer(T * r * 4);
  const yFused = gpu.createBuffer(T * N * 4);
  const yUnfused = gpu.createBuffer(T * N * 4);
  const flops = 2 * T * N * K + 2 * T * r * K + 2 * T * N * r;
  const shape = `${T}x${K}x${N} r=${r}`;
  const peer: KernelPeerCase = { kind: 'lora', name: `lora ${shape}`, T, K, N, r, scale, flops };
  const rows: BenchRow[] = [];
  try {
    for (const wF16 of [false, true]) {
      const wf = rng.f32(N * K, -0.05, 0.05);
      const w = gpu.upload(wF16 ? toF16Array(wf) : wf);
      const dtype = wF16 ? 'f16-weight' : 'f32';
      const fused = (rec: Recorder) => {
        loraDown(gpu, rec, { x, a, u, T, K, r });
        loraLinear(gpu, rec, { x, w, wF16, u, b, y: yFused, T, K, N, r, scale });
      };
      const unfused = (rec: Recorder) => {
        matmul(gpu, rec, { a: x, b: w, c: yUnfused, M: T, N, K, transB: true, bF16: wF16, label: 'base' });
        loraDown(gpu, rec, { x, a, u, T, K, r });
        matmul(gpu, rec, { a: u, b, c: yUnfused, M: T, N, K: r, transB: true, alpha: scale, beta: 1, label: 'lora_up' });
      };
      const times: Record<string, number> = {};
      for (const [variant, record] of [['fused', fused], ['unfused', unfused]] as const) {
        log(`kernels: lora ${variant} ${shape} ${dtype}`);
        await timeRecording(gpu, record); // warm-up: pipeline compilation
        const t: number[] = [];
        for (let i = 0; i < reps; i++) t.push(await timeRecording(gpu, record));
        times[variant] = median(t);
      }
      const err = maxRelError(await gpu.readF32(yFused, T * N), await gpu.readF32(yUnfused, T * N));
      for (const variant of ['fused', 'unfused'] as const) {
        rows.push({
          suite: 'kernels',
          name: `lora linear ${variant} ${shape} ${dtype}`,
          ms: times[variant]!,
          gflops: flops / times[variant]! / 1e6,
          note:
            variant === 'fused'
              ? `loraDown + loraLinear; ${(times.unfused! / times.fused!).toFixed(2)}x the unfused speed`
              : `matmul + loraDown + matmul(beta=1); outputs agree to ${err.toExponential(1)} (max rel)`,
        });
      }
      gpu.release(w);
    }
  } finally {
    for (const buf of [x, a, b, u, yFused, yUnfused]) gpu.release(buf);
  }
  return { rows, peer };
}

async function benchKernels(gpu: Gpu, opts: { peer: boolean; lmHead: boolean; log: (msg: string) => void }): Promise<BenchRow[]> {
  const { log } = opts;
  const rows: BenchRow[] = [];
  const peers = new Map<BenchRow, KernelPeerCase>();

  // The 49152-column LM head is minutes per run on a CPU adapter (and again in the CPU peer).
  const shapes = opts.lmHead ? SMOLLM2_SHAPES : SMOLLM2_SHAPES.filter(([, , N]) => N <= 8192);
  log(`kernels: matmul (SmolLM2-135M linear shapes, 512 tokens${opts.lmHead ? '' : ', LM head left out'})`);
  for (const m of await benchMatmul(gpu, { shapes })) {
    const row: BenchRow = { suite: 'kernels', name: `${m.name} ${m.dtype}`, ms: m.ms, gflops: m.gflops };
    if (m.dtype === 'f16-weight') row.note = 'peer computes in f32';
    rows.push(row);
    peers.set(row, { kind: 'matmul', name: `matmul ${m.M}x${m.K}x${m.N}`, M: m.M, N: m.N, K: m.K });
  }
  log('kernels: attention (SmolLM2-135M heads)');
  for (const at of await benchAttention(gpu)) {
    const row: BenchRow = {
      suite: 'kernels',
      name: `${at.name} B${at.B} T${at.T} Hq${at.Hq}/Hkv${at.Hkv} D${at.D}`,
      ms: at.ms,
      gflops: at.gflops,
    };
    rows.push(row);
    const backward = at.name.includes('backward');
    // Both sides count the same FLOPs (the attention bench's convention).
    const flops = (at.gflops * at.ms) * 1e6;
    peers.set(row, { kind: backward ? 'attention_backward' : 'attention', name: row.name, B: at.B, T: at.T, Hq: at.Hq, Hkv: at.Hkv, D: at.D, flops });
  }
  log('kernels: LoRA linear, fused vs unfused');
  const lora = await benchLora(gpu, log);
  for (const row of lora.rows) {
    rows.push(row);
    peers.set(row, lora.peer);
  }

  if (!opts.peer) return rows;
  const missing = torchUnavailable();
  if (missing) {
    for (const row of peers.keys()) row.note = [row.note, `no PyTorch peer: ${missing}`].filter(Boolean).join('; ');
    return rows;
  }
  const cases = [...new Map([...peers.values()].map((c) => [c.name, c])).values()];
  log(`kernels: PyTorch peer for ${cases.length} cases`);
  let out: { name: string; ms: number; gflops: number; threads: number }[];
  try {
    out = runPeer(TORCH_KERNELS, cases);
  } catch (e) {
    for (const row of peers.keys()) row.note = [row.note, `PyTorch peer failed: ${(e as Error).message}`].filter(Boolean).join('; ');
    return rows;
  }
  const device = process.env.WHITTLE_PEER_DEVICE ?? 'cpu';
  for (const [row, c] of peers) {
    const p = out.find((o) => o.name === c.name);
    if (p) row.peer = { name: device === 'cpu' ? `torch f32 CPU (${p.threads} threads)` : `torch f32 ${device}`, ms: p.ms, gflops: p.gflops };
  }
  return rows;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
