/**
 * Matmul benchmark at SmolLM2-135M's linear-layer shapes (hidden 576, MLP 1536, vocabulary
 * 49152), forward y = x·Wᵀ with W stored [out, in] as Hugging Face does, for f32 weights and
 * for f16 weights (f32 activations and accumulation).
 *
 * Shapes are named M x K x N (tokens x in x out); FLOPs = 2*M*N*K. Time is GPU time from
 * timestamp queries when the device has them, else the wall clock around submit + sync.
 * Inputs come from a small random table repeated, so large weights upload quickly; the speed
 * of a matmul does not depend on the values.
 */
import { toF16Array, type Gpu } from '../gpu';
import { defaultMatmulTuning, matmul, matmulFlops, type MatmulArgs, type MatmulTuning } from '../kernels/matmul';
import { chooseGpuMatmul } from '../kernels/matmulGpu';
import { Rng } from '../selftest/compare';
import { median } from './table';
import { processCpuMs, timeRecording } from './timing';

export interface MatmulBenchRow {
  name: string;
  M: number;
  N: number;
  K: number;
  dtype: 'f32' | 'f16-weight';
  ms: number;
  gflops: number;
  /** CPU ms the process used per run, median (Node only: see `processCpuMs`). */
  processCpuMs?: number;
}

export interface MatmulBenchOptions {
  /** [M, K, N] triples; default: SmolLM2-135M's q/o, up, down and LM-head shapes at 512 tokens. */
  shapes?: Array<[number, number, number]>;
  dtypes?: Array<'f32' | 'f16-weight'>;
  /** Stop repeating a case once its runs add up to this much time (ms)... */
  budgetMs?: number;
  /** ...or after this many timed runs (median reported); at least one always runs. */
  maxReps?: number;
  /** Kernel and tile shape (default: the device's). */
  tuning?: Partial<MatmulTuning>;
}

export const SMOLLM2_SHAPES: Array<[number, number, number]> = [
  [512, 576, 576],
  [512, 576, 1536],
  [512, 1536, 576],
  [512, 576, 49152],
];

function patterned(n: number, table: Float32Array): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += table.length) out.set(table.subarray(0, Math.min(table.length, n - i)), i);
  return out;
}

export async function benchMatmul(gpu: Gpu, options: MatmulBenchOptions = {}): Promise<MatmulBenchRow[]> {
  const { shapes = SMOLLM2_SHAPES, dtypes = ['f32', 'f16-weight'], budgetMs = 2000, maxReps = 5 } = options;
  const tuning: MatmulTuning = { ...defaultMatmulTuning(gpu), ...options.tuning };
  // The GPU plan picks its launch per shape: name the one each case gets.
  const kernelOf = (M: number, N: number, K: number): string => {
    if (tuning.kernel === 'rows-shared') return 'rows-shared 8x1';
    if (tuning.kernel !== 'by-shape') return `${tuning.kernel} ${tuning.wgX}x${tuning.wgY}${tuning.kernel === 'tiled' ? ` bk${tuning.bk}` : ''}`;
    const plan = chooseGpuMatmul(gpu.limits, { M, N, K, batch: 1, lora: false });
    if (plan.kernel === 'gemv') return `gemv ${plan.gemvThreads} threads`;
    return `blocked ${8 * plan.wg}x${8 * plan.wg} bk${plan.bk}${plan.splitK > 1 ? ` split-K ${plan.splitK}` : ''}`;
  };
  const table = new Rng(7).f32(4093); // odd length: rows do not repeat in step
  const rows: MatmulBenchRow[] = [];
  for (const dtype of dtypes) {
    const bF16 = dtype === 'f16-weight';
    // Warm-up on a small problem with the same options: the first dispatch compiles the pipeline.
    {
      const x = gpu.upload(patterned(64 * 64, table));
      const w = gpu.upload(bF16 ? toF16Array(patterned(64 * 64, table)) : patterned(64 * 64, table));
      const y = gpu.createBuffer(64 * 64 * 4);
      await timeRecording(gpu, (rec) => matmul(gpu, rec, { a: x, b: w, c: y, M: 64, N: 64, K: 64, transB: true, bF16, tuning }), 'bench matmul');
      for (const b of [x, w, y]) gpu.release(b);
    }
    for (const [M, K, N] of shapes) {
      const x = gpu.upload(patterned(M * K, table));
      const wf = patterned(N * K, table);
      const w = gpu.upload(bF16 ? toF16Array(wf) : wf);
      const y = gpu.createBuffer(M * N * 4);
      const args: MatmulArgs = { a: x, b: w, c: y, M, N, K, transB: true, bF16, tuning };
      const times: number[] = [];
      const cpu: number[] = [];
      let spent = 0;
      while (times.length < Math.max(1, maxReps) && (times.length === 0 || spent < budgetMs)) {
        const cpu0 = processCpuMs();
        const ms = await timeRecording(gpu, (rec) => matmul(gpu, rec, args), 'bench matmul');
        const cpu1 = processCpuMs();
        if (cpu0 !== undefined && cpu1 !== undefined) cpu.push(cpu1 - cpu0);
        times.push(ms);
        spent += ms;
      }
      const ms = median(times);
      const row: MatmulBenchRow = { name: `linear x·Wᵀ ${M}x${K}x${N} (${kernelOf(M, N, K)})`, M, N, K, dtype, ms, gflops: matmulFlops(M, N, K) / ms / 1e6 };
      if (cpu.length > 0) row.processCpuMs = median(cpu);
      rows.push(row);
      gpu.pool.destroy(w);
      gpu.release(x);
      gpu.release(y);
    }
  }
  return rows;
}
