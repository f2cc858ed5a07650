/**
 * `kernels` suite: matmul at linear-layer shapes, causal attention forward and backward, and a
 * LoRA linear layer fused against unfused. No Node modules: `npm run bench -- kernels` (which
 * adds the PyTorch peer) and the browser's bench page (src/worker/bench.worker.ts) both run it.
 */
import { toF16Array, type Gpu, type Recorder } from '../gpu';
import { loraDown, loraLinear } from '../kernels/lora';
import { defaultMatmulTuning, matmul, type MatmulTuning } from '../kernels/matmul';
import { maxRelError, Rng } from '../selftest/compare';
import { benchAttention } from './attention';
import { measureFmaPeak } from './fmaProbe';
import { benchMatmul, SMOLLM2_SHAPES } from './matmul';
import { median, type BenchRow } from './table';
import { timeRecording } from './timing';

/**
 * The CPU plan's matmul before its current one, which the suite times beside it on CPU adapters:
 * 'rows' (16 threads) before 'rows-shared', 'register' 8x8 before 'rows'.
 */
export function previousCpuMatmul(current: MatmulTuning['kernel']): Partial<MatmulTuning> {
  return current === 'rows-shared' ? { kernel: 'rows', wgX: 16 } : { kernel: 'register', wgX: 8, wgY: 8 };
}

export const PREVIOUS_CPU_MATMUL_NOTE = "the CPU plan's previous matmul kernel";

/** Shape sets: 'full' is SmolLM2-135M at 512 tokens; the others fit slow (software) adapters. */
export const KERNEL_PRESETS = ['tiny', 'small', 'full'] as const;
export type KernelPreset = (typeof KERNEL_PRESETS)[number];

export interface KernelSuiteShapes {
  /** [M, K, N] of x·Wᵀ (tokens x in x out). */
  matmul: Array<[number, number, number]>;
  /** Attention sequence lengths, batch 1. */
  attentionSeqs: number[];
  heads: { Hq: number; Hkv: number; D: number };
  lora: { T: number; K: number; N: number; r: number };
  /** Timed runs per case (median reported), after a warm-up run. */
  reps: number;
}

/**
 * The shapes of a preset. `lmHead` adds SmolLM2's 512 x 576 x 49152 LM-head matmul to 'full'
 * (minutes on a CPU adapter).
 */
export function kernelShapes(preset: KernelPreset, lmHead = false): KernelSuiteShapes {
  if (preset === 'tiny') {
    // Seconds even on SwiftShader: the cost is mostly compiling each pipeline once.
    return { matmul: [[64, 128, 128], [64, 128, 352]], attentionSeqs: [64], heads: { Hq: 4, Hkv: 2, D: 32 }, lora: { T: 64, K: 128, N: 352, r: 8 }, reps: 3 };
  }
  if (preset === 'small') {
    // SmolLM2-135M's widths and heads at 128 tokens.
    return {
      matmul: SMOLLM2_SHAPES.filter(([, , N]) => N <= 8192).map(([, K, N]) => [128, K, N] as [number, number, number]),
      attentionSeqs: [128],
      heads: { Hq: 9, Hkv: 3, D: 64 },
      lora: { T: 128, K: 576, N: 1536, r: 16 },
      reps: 3,
    };
  }
  return {
    matmul: lmHead ? SMOLLM2_SHAPES : SMOLLM2_SHAPES.filter(([, , N]) => N <= 8192),
    attentionSeqs: [256, 512],
    heads: { Hq: 9, Hkv: 3, D: 64 },
    lora: { T: 512, K: 576, N: 1536, r: 16 },
    reps: 3,
  };
}

/** What a peer (bench/peers/torch_kernels.py) needs to time the same case. */
export interface KernelPeerCase {
  kind: 'matmul' | 'attention' | 'attention_backward' | 'lora';
  name: string;
  [dim: string]: unknown;
}

export interface KernelSuiteResult {
  rows: BenchRow[];
  /** The peer case of each row (rows that share a case share the object). */
  peers: Map<BenchRow, KernelPeerCase>;
}

/**
 * A LoRA linear layer, fused (loraDown + loraLinear: the low-rank product adds into the base
 * product's accumulators) against unfused (base matmul, loraDown, then u·Bᵀ added into y by a
 * second matmul with beta = 1), for f32 and f16 weights. Both outputs are compared too.
 */
async function benchLora(gpu: Gpu, shape: KernelSuiteShapes['lora'], reps: number, log: (msg: string) => void): Promise<{ rows: BenchRow[]; peer: KernelPeerCase }> {
  const { T, K, N, r } = shape;
  const scale = 2;
  const rng = new Rng(5);
  const x = gpu.upload(rng.f32(T * K));
  const a = gpu.upload(rng.f32(r * K, -0.05, 0.05));
  const b = gpu.upload(rng.f32(N * r, -0.05, 0.05));
  const u = gpu.createBuffer(T * r * 4);
  const yFused = gpu.createBuffer(T * N * 4);
  const yUnfused = gpu.createBuffer(T * N * 4);
  const yFolded = gpu.createBuffer(T * N * 4);
  const flops = 2 * T * N * K + 2 * T * r * K + 2 * T * N * r;
  const name = `${T}x${K}x${N} r=${r}`;
  const peer: KernelPeerCase = { kind: 'lora', name: `lora ${name}`, T, K, N, r, scale, flops };
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
      // The GPU plan's fused path: the LoRA term as extra K columns of the blocked matmul.
      const folded = (rec: Recorder) => {
        loraDown(gpu, rec, { x, a, u, T, K, r });
        matmul(gpu, rec, { a: x, b: w, c: yFolded, M: T, N, K, transB: true, bF16: wF16, lora: { u, b, r, scale }, label: 'folded' });
      };
      const variants = [['fused', fused], ['unfused', unfused], ...(gpu.kernels === 'gpu' ? [['folded', folded] as const] : [])] as const;
      const times: Record<string, number> = {};
      for (const [variant, record] of variants) {
        log(`kernels: lora ${variant} ${name} ${dtype}`);
        await timeRecording(gpu, record); // warm-up: pipeline compilation
        const t: number[] = [];
        for (let i = 0; i < reps; i++) t.push(await timeRecording(gpu, record));
        times[variant] = median(t);
      }
      const err = maxRelError(await gpu.readF32(yFused, T * N), await gpu.readF32(yUnfused, T * N));
      if (times.folded !== undefined) {
        const foldedErr = maxRelError(await gpu.readF32(yFolded, T * N), await gpu.readF32(yUnfused, T * N));
        rows.push({
          suite: 'kernels',
          name: `lora linear folded ${name} ${dtype}`,
          ms: times.folded,
          gflops: flops / times.folded / 1e6,
          note: `loraDown + blocked matmul with r extra K columns; ${(times.unfused! / times.folded).toFixed(2)}x the unfused speed; agrees to ${foldedErr.toExponential(1)}`,
        });
      }
      for (const variant of ['fused', 'unfused'] as const) {
        rows.push({
          suite: 'kernels',
          name: `lora linear ${variant} ${name} ${dtype}`,
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
    for (const buf of [x, a, b, u, yFused, yUnfused, yFolded]) gpu.release(buf);
  }
  return { rows, peer };
}

/**
 * Runs the suite on `gpu`: the FMA probe's row first (the device's peak f32 FMA rate), then our
 * kernel rows, each with its share of that peak, and the peer case each kernel row compares with.
 */
export async function runKernelSuite(gpu: Gpu, shapes: KernelSuiteShapes, log: (msg: string) => void = () => {}): Promise<KernelSuiteResult> {
  const rows: BenchRow[] = [];
  const peers = new Map<BenchRow, KernelPeerCase>();
  log('kernels: FMA probe (peak f32 FMA rate)');
  const peak = await measureFmaPeak(gpu);
  rows.push({
    suite: 'kernels',
    name: `FMA probe: peak f32 FMA rate (${peak.threads} threads x ${peak.iters * 32} FMAs)`,
    ms: peak.ms,
    gflops: peak.gflops,
    processCpuMs: peak.processCpuMs,
    peakShare: 1,
    note: 'the peakShare denominator; output checked against its closed form',
  });
  log(`kernels: matmul ${shapes.matmul.map((s) => s.join('x')).join(', ')}`);
  for (const m of await benchMatmul(gpu, { shapes: shapes.matmul, maxReps: shapes.reps })) {
    const row: BenchRow = { suite: 'kernels', name: `${m.name} ${m.dtype}`, ms: m.ms, gflops: m.gflops, processCpuMs: m.processCpuMs };
    if (m.dtype === 'f16-weight') row.note = 'peer computes in f32';
    rows.push(row);
    peers.set(row, { kind: 'matmul', name: `matmul ${m.M}x${m.K}x${m.N}`, M: m.M, N: m.N, K: m.K });
  }
  if (gpu.kernels === 'cpu') {
    // The CPU plan's previous kernel, timed in the same run so the two compare under the same load.
    const previous = previousCpuMatmul(defaultMatmulTuning(gpu).kernel);
    log(`kernels: matmul, the previous CPU kernel (${previous.kernel}) for comparison`);
    for (const m of await benchMatmul(gpu, { shapes: shapes.matmul, dtypes: ['f32'], maxReps: shapes.reps, tuning: previous })) {
      const row: BenchRow = { suite: 'kernels', name: `${m.name} ${m.dtype}`, ms: m.ms, gflops: m.gflops, processCpuMs: m.processCpuMs, note: PREVIOUS_CPU_MATMUL_NOTE };
      rows.push(row);
      peers.set(row, { kind: 'matmul', name: `matmul ${m.M}x${m.K}x${m.N}`, M: m.M, N: m.N, K: m.K });
    }
  }
  log(`kernels: attention T = ${shapes.attentionSeqs.join(', ')}`);
  for (const at of await benchAttention(gpu, { seqs: shapes.attentionSeqs, ...shapes.heads, reps: shapes.reps })) {
    const row: BenchRow = {
      suite: 'kernels',
      name: `${at.name} B${at.B} T${at.T} Hq${at.Hq}/Hkv${at.Hkv} D${at.D}`,
      ms: at.ms,
      gflops: at.gflops,
    };
    rows.push(row);
    const backward = at.name.includes('backward');
    // Both sides count the same FLOPs (the attention bench's convention).
    const flops = at.gflops * at.ms * 1e6;
    peers.set(row, { kind: backward ? 'attention_backward' : 'attention', name: row.name, B: at.B, T: at.T, Hq: at.Hq, Hkv: at.Hkv, D: at.D, flops });
  }
  log('kernels: LoRA linear, fused vs unfused');
  const lora = await benchLora(gpu, shapes.lora, shapes.reps, log);
  for (const row of lora.rows) {
    rows.push(row);
    peers.set(row, lora.peer);
  }
  for (const row of rows) if (row.gflops !== undefined) row.peakShare = row.gflops / peak.gflops;
  return { rows, peers };
}

/** Where a result file was made: Node's os module or the browser's navigator fill it in. */
export interface MachineInfo {
  [field: string]: string | number;
}

/** The JSON document of one suite run, the same in Node (bench/results/*.json) and in the browser. */
export function benchResultDocument(gpu: Gpu, suite: string, rows: BenchRow[], flags: Record<string, unknown>, seconds: number, machine: MachineInfo, date = new Date()) {
  const { limits, ...adapter } = gpu.adapter;
  return {
    suite,
    date: date.toISOString(),
    adapter: {
      ...adapter,
      limits: { maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, maxBufferSize: limits.maxBufferSize },
    },
    machine,
    flags,
    seconds,
    rows,
  };
}
