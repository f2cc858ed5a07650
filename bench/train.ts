/**
 * `train` suite: one full LoRA optimizer step (forwardBackward + clip + AdamW) on random-weight
 * models of real shapes, as tokens/s and ms/step, next to the same step in PyTorch.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Gpu } from '../src/gpu';
import type { ModelConfig } from '../src/model/config';
import { LoraAdapter, defaultLoraConfig } from '../src/model/lora';
import type { RecomputePolicy } from '../src/model/memoryEstimate';
import { CausalLM, type LoraLinearPath, type LossTotals } from '../src/model/transformer';
import type { WeightDtype } from '../src/model/weights';
import { DEFAULT_OPTIMIZER, LoraOptimizer } from '../src/train/optimizer';
import { buildRandomModel, randomBatch } from '../src/model/randomModel';
import { matmulParameters, namedModel } from './synthetic';
import { runPeer, torchUnavailable, type PeerOutput } from './peer';
import { median, peerBlasCell, type BenchRow, type PeerEnvironment } from '../src/bench/table';

export interface ModelSpec {
  /** A name known to `namedModel`. */
  name: string;
  /** Cut the model to this many layers (undefined: all of them). */
  layers?: number;
}

/** One timed configuration of a case: LoRA linear path and activation policy. */
interface Variant {
  path: LoraLinearPath;
  recompute: RecomputePolicy;
}

export interface TrainBenchOptions {
  models: ModelSpec[];
  /** [B, T] pairs. */
  shapes: [number, number][];
  dtype: WeightDtype;
  rank: number;
  /** Timed steps per case (the median is reported), after one untimed warm-up step. */
  steps: number;
  /** Run the PyTorch peer for each case. */
  peer: boolean;
  /**
   * Time each case on these LoRA linear paths, one row each (named '... (lora fused)'), the
   * peer shared. Default: the adapter's own path only (`defaultLoraLinearPath`), as the app runs.
   */
  loraPaths?: LoraLinearPath[];
  /**
   * Time each case with these activation policies (see `RecomputePolicy`), one row each (named
   * '... (recompute auto)'). Default: the model's own ('auto'), as the app runs.
   */
  recompute?: RecomputePolicy[];
  /**
   * Record and encode every step without submitting it (Gpu.dryRun): the rows carry the counts
   * and encodeMs only, so full-size models are cheap to count on any machine.
   */
  dryRun?: boolean;
  /**
   * LoRA dropout probability (default 0). Above 0 every step draws new masks (a seed per step,
   * as the trainer's micro-batches do), so the counts show what per-step masks cost.
   */
  loraDropout?: number;
  log: (msg: string) => void;
  /** Called with what the peer ran on (torch version, BLAS), for the result file. */
  onPeerEnvironment?: (environment: PeerEnvironment) => void;
}

/** Per-step counts of one training step, from the Gpu's counters. */
interface StepCounts {
  dispatchesPerStep: number;
  submitsPerStep: number;
  blockingReadsPerStep: number;
  bindGroupsPerStep: number;
  encodeMs: number;
  /** Process CPU time over the step (in a dry run, the encoding's). */
  encodeCpuMs: number;
}

/** Parses `name` or `name:layers`. */
export function parseModelSpec(s: string): ModelSpec {
  const [name, layers] = s.split(':');
  if (layers === undefined) return { name: name! };
  const n = Number(layers);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bad layer count in '${s}' (expected name:layers)`);
  return { name: name!, layers: n };
}

/** Parses `4x512` into [4, 512]. */
export function parseShape(s: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m) throw new Error(`bad shape '${s}' (expected BxT, e.g. 4x512)`);
  return [Number(m[1]), Number(m[2])];
}

/**
 * Model FLOPs of one LoRA step, the useful work (recomputation not counted): forward and
 * input-gradient backward of every linear layer and the head, 2 + 2 per weight per token (no
 * weight gradients: the base is frozen), plus causal attention, forward 2·B·H·T²·D and backward
 * twice that.
 */
export function trainStepFlops(config: ModelConfig, B: number, T: number): number {
  return 4 * matmulParameters(config) * B * T + 6 * B * config.heads * T * T * config.headDim;
}

export const LORA_ALPHA = 32;

/** A train case's name in the table (and the key the PyTorch peers' results come back under). */
export function trainCaseName(label: string, B: number, T: number, dtype: WeightDtype, rank: number): string {
  return `${label} ${B}x${T} ${dtype} r=${rank}`;
}
const PEER = join(dirname(fileURLToPath(import.meta.url)), 'peers', 'torch_train.py');

export async function benchTrain(gpu: Gpu, opts: TrainBenchOptions): Promise<BenchRow[]> {
  const dry = opts.dryRun ?? false;
  gpu.dryRun = dry;
  try {
    return await benchTrainCases(gpu, opts, dry);
  } finally {
    gpu.dryRun = false;
  }
}

async function benchTrainCases(gpu: Gpu, opts: TrainBenchOptions, dry: boolean): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const peerCases: { rows: BenchRow[]; input: Record<string, unknown> }[] = [];
  for (const spec of opts.models) {
    const named = namedModel(spec.name, spec.layers);
    const { config } = named;
    opts.log(`train: building ${named.label} (${opts.dtype})`);
    const weights = await buildRandomModel(gpu, config, { dtype: opts.dtype, seed: 1 });
    const model = new CausalLM(gpu, config, weights);
    const adapter = new LoraAdapter(gpu, config, weights, defaultLoraConfig(config, { r: opts.rank, alpha: LORA_ALPHA, dropout: opts.loraDropout ?? 0 }));
    adapter.initialize(1);
    // A new dropout seed each step (ignored without dropout).
    let dropoutSeed = 0;
    const optimizer = new LoraOptimizer(gpu, adapter);
    try {
      for (const [B, T] of opts.shapes) {
        if (T > config.maxPositions) {
          opts.log(`train: ${named.label} skips ${B}x${T}: longer than its ${config.maxPositions} positions`);
          continue;
        }
        const batch = randomBatch(config, B, T, 7);
        const N = B * T;
        // The trainer's step: forward/backward (replayed from the first step's recording), clip +
        // AdamW with the loss totals copied into the optimizer's staging ring, then that one read.
        // (The trainer records the next step's passes before this read; one step at a time here.)
        const step = async () => {
          await model.forwardBackward(batch, adapter, { gradScale: 1 / N, accumulate: false, dropoutSeed: dropoutSeed++ }, false);
          optimizer.apply(DEFAULT_OPTIMIZER, DEFAULT_OPTIMIZER.lr, model.stepTotals(B, T, adapter));
          return (await optimizer.readVerdict()).totals!;
        };
        // One step with the counters reset: encodeMs is its wall time less the time spent
        // waiting for the GPU (reads, sync), i.e. the CPU time to record, encode and submit.
        const countedStep = async (): Promise<{ counts: StepCounts; wallMs: number; totals: LossTotals }> => {
          await gpu.sync();
          gpu.resetCounters();
          const cpu0 = process.cpuUsage();
          const t0 = performance.now();
          const totals = await step();
          const wallMs = performance.now() - t0;
          const cpu = process.cpuUsage(cpu0);
          const c = gpu.counters;
          const counts = {
            dispatchesPerStep: c.dispatches,
            submitsPerStep: c.submits,
            blockingReadsPerStep: c.blockingReads,
            bindGroupsPerStep: c.bindGroups,
            encodeMs: wallMs - c.waitMs,
            encodeCpuMs: (cpu.user + cpu.system) / 1000,
          };
          return { counts, wallMs, totals };
        };
        const caseRows: BenchRow[] = [];
        const name = trainCaseName(named.label, B, T, opts.dtype, opts.rank);
        // One row per LoRA linear path x activation policy asked for.
        const paths = (opts.loraPaths ?? [model.loraLinearPath]).flatMap((path) => (opts.recompute ?? [model.recompute]).map((recompute) => ({ path, recompute })));
        const suffix = ({ path, recompute }: Variant) =>
          [opts.loraPaths ? `lora ${path}` : '', opts.recompute ? `recompute ${recompute}${recompute === 'auto' ? `: ${keeps(recompute) ? 'kept' : 'recomputed'}` : ''}` : ''].filter(Boolean).join(', ');
        const keeps = (recompute: RecomputePolicy) => {
          model.recompute = recompute;
          return model.keepsActivations(B, T, adapter);
        };
        const label = (v: Variant) => (suffix(v) ? `${named.label} ${B}x${T} (${suffix(v)})` : `${named.label} ${B}x${T}`);
        const select = (v: Variant) => {
          model.loraLinearPath = v.path;
          model.recompute = v.recompute;
        };
        const losses = new Map<Variant, number>();
        for (const path of paths) {
          select(path);
          // Each path's warm-up starts from the same adapter, so their losses must agree.
          adapter.initialize(1);
          adapter.resetOptimizer();
          opts.log(`train: ${label(path)}: warm-up step (compiles pipelines)`);
          const warm = performance.now();
          const first = (await countedStep()).totals;
          const loss = first.lossSum / first.tokens;
          if (!dry && !Number.isFinite(loss)) throw new Error(`${named.label}: non-finite loss ${loss}`);
          losses.set(path, loss);
          opts.log(`train: ${label(path)}: warm-up ${((performance.now() - warm) / 1000).toFixed(1)} s${dry ? '' : `, loss ${loss.toFixed(3)}`}`);
        }
        gpu.pool.resetPeak();
        // Several paths alternate step by step, so a machine whose load drifts treats them alike.
        const times = new Map<Variant, number[]>(paths.map((p) => [p, []]));
        const counts = new Map<Variant, StepCounts[]>(paths.map((p) => [p, []]));
        for (let s = 0; s < opts.steps; s++) {
          for (const path of paths) {
            select(path);
            const { counts: c, wallMs } = await countedStep();
            await gpu.sync();
            counts.get(path)!.push(c);
            times.get(path)!.push(wallMs);
            opts.log(`train: ${label(path)}: step ${s + 1}/${opts.steps} ${times.get(path)!.at(-1)!.toFixed(0)} ms`);
          }
        }
        for (const path of paths) {
          const ms = dry ? NaN : median(times.get(path)!);
          const c = counts.get(path)!;
          const med = (f: (x: StepCounts) => number) => median(c.map(f));
          const row: BenchRow = {
            suite: 'train',
            name: suffix(path) ? `${name} (${suffix(path)})` : name,
            ms,
            ...(dry ? {} : { gflops: trainStepFlops(config, B, T) / ms / 1e6, tokensPerSecond: (N / ms) * 1000 }),
            peakBytes: gpu.memory().peakBytes,
            dispatchesPerStep: med((x) => x.dispatchesPerStep),
            submitsPerStep: med((x) => x.submitsPerStep),
            blockingReadsPerStep: med((x) => x.blockingReadsPerStep),
            bindGroupsPerStep: med((x) => x.bindGroupsPerStep),
            encodeMs: med((x) => x.encodeMs),
            ...(dry ? { encodeCpuMs: med((x) => x.encodeCpuMs) } : { stepCpuMs: med((x) => x.encodeCpuMs) }),
            note:
              `${dry ? 'dry run (recorded and encoded, never submitted); ' : ''}LoRA r=${opts.rank}${adapter.config.dropout > 0 ? `, dropout ${adapter.config.dropout}` : ''} on all ${adapter.modules.size} linear layers (${path.path} LoRA linear, activations ${keeps(path.recompute) ? 'kept' : 'recomputed'}); median of ${opts.steps} steps` +
              `${paths.length > 1 ? ` (paths alternated: ${times.get(path)!.map((t) => t.toFixed(0)).join(', ')} ms${dry ? '' : `; step CPU ${c.map((x) => x.encodeCpuMs.toFixed(0)).join(', ')} ms`})` : ''}${dry ? '' : `; loss ${losses.get(path)!.toFixed(3)}`}`,
          };
          rows.push(row);
          caseRows.push(row);
        }
        peerCases.push({ rows: caseRows, input: { name, config: named.json, B, T, r: opts.rank, alpha: LORA_ALPHA, lr: DEFAULT_OPTIMIZER.lr, steps: opts.steps, warmup: 1, seed: 1 } });
      }
    } finally {
      optimizer.destroy();
      adapter.destroy();
      model.destroy();
      gpu.pool.trim();
    }
  }
  if (opts.peer && !dry && peerCases.length) {
    const environment = addTrainPeer(peerCases, opts.log);
    if (environment) opts.onPeerEnvironment?.(environment);
  }
  return rows;
}

/** Times the peer for every case and fills in the rows; returns what the peer ran on. */
function addTrainPeer(cases: { rows: BenchRow[]; input: Record<string, unknown> }[], log: (msg: string) => void): PeerEnvironment | undefined {
  const missing = torchUnavailable();
  if (missing) {
    for (const row of cases.flatMap((c) => c.rows)) row.note = `${row.note}; no PyTorch peer: ${missing}`;
    return undefined;
  }
  log(`train: PyTorch peer for ${cases.length} cases`);
  type PeerResult = { name: string; ms: number; tokensPerSecond: number; device: string; threads: number; impl: string };
  let out: PeerOutput<PeerResult>;
  try {
    out = runPeer<PeerResult>(PEER, cases.map((c) => c.input));
  } catch (e) {
    // The GPU rows are still worth having: say why the peer is missing instead of failing.
    for (const row of cases.flatMap((c) => c.rows)) row.note = `${row.note}; PyTorch peer failed: ${(e as Error).message}`;
    return undefined;
  }
  const env = out.environment;
  for (const c of cases) {
    const p = out.results.find((o) => o.name === c.input.name);
    if (!p) continue;
    const what = p.impl === 'peft' ? `PEFT ${process.env.WHITTLE_PEER_DTYPE ?? 'float32'} on torch ${env.torch}` : `torch ${env.torch} f32`;
    for (const row of c.rows) {
      row.peer = {
        name: p.device === 'cpu' ? `${what} CPU (${p.threads} threads)` : `${what} ${p.device}`,
        blas: peerBlasCell(env),
        ms: p.ms,
        tokensPerSecond: p.tokensPerSecond,
        // The same model FLOPs as ours (PyTorch does not recompute, so it does less real work).
        gflops: (row.gflops! * row.ms) / p.ms,
      };
    }
  }
  return env;
}
