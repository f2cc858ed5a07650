/**
 * Attention benchmark: causal GQA forward and backward at SmolLM2-135M's head shape
 * (Hq=9, Hkv=3, D=64) over a list of sequence lengths.
 *
 * FLOP convention (as FlashAttention reports it): forward = 4*B*Hq*T^2*D / 2, i.e. the two
 * matmuls QK^T and PV with the causal half; backward = 2.5x forward (five matmuls: recompute QK^T,
 * dO V^T, P^T dO, dS K, dS^T Q). Softmax exponentials are not counted, and neither is the extra
 * work of our split backward: the dq and the dk/dv kernels each recompute S and dP (seven
 * matmul-sized products in all).
 * Time is the GPU time from timestamp queries when the device has them, else the wall clock
 * around submit + sync. The kernels are the device's plan unless `kernels` names one.
 */
import { type Gpu, type KernelPlan } from '../gpu';
import { attentionBackward, attentionForward } from '../kernels/attention';
import { Rng } from '../selftest/compare';
import { median } from './table';
import { timeRecording } from './timing';

export interface AttentionBenchRow {
  name: string;
  B: number;
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  ms: number;
  gflops: number;
}

export interface AttentionBenchOptions {
  /** Sequence lengths; a real GPU can take [256, 512, 1024, 2048]. */
  seqs?: number[];
  B?: number;
  Hq?: number;
  Hkv?: number;
  D?: number;
  /** Timed repetitions per case (median reported), after one warm-up run. */
  reps?: number;
  /** Kernel family to time; the device's plan when absent. */
  kernels?: KernelPlan;
}

export async function benchAttention(gpu: Gpu, options: AttentionBenchOptions = {}): Promise<AttentionBenchRow[]> {
  const { seqs = [256, 512], B = 1, Hq = 9, Hkv = 3, D = 64, reps = 3, kernels = gpu.kernels } = options;
  const rows: AttentionBenchRow[] = [];
  const rng = new Rng(2024);
  for (const T of seqs) {
    const qn = B * T * Hq * D;
    const kvn = B * T * Hkv * D;
    const bufs = {
      q: gpu.upload(rng.f32(qn)),
      k: gpu.upload(rng.f32(kvn)),
      v: gpu.upload(rng.f32(kvn)),
      dout: gpu.upload(rng.f32(qn)),
      out: gpu.createBuffer(qn * 4),
      lse: gpu.createBuffer(B * Hq * T * 4),
      dq: gpu.createBuffer(qn * 4),
      dk: gpu.createBuffer(kvn * 4),
      dv: gpu.createBuffer(kvn * 4),
      delta: gpu.createBuffer(B * Hq * T * 4),
    };
    const dims = { B, T, Hq, Hkv, D, kernels };
    const forward = (rec: ReturnType<Gpu['recorder']>) => attentionForward(gpu, rec, { ...dims, ...bufs });
    const backward = (rec: ReturnType<Gpu['recorder']>) => attentionBackward(gpu, rec, { ...dims, ...bufs });
    const fwdFlops = (4 * B * Hq * T * T * D) / 2;
    for (const [name, record, flops] of [
      ['attention forward', forward, fwdFlops],
      ['attention backward', backward, 2.5 * fwdFlops],
    ] as const) {
      await timeRecording(gpu, record, 'bench attention'); // warm-up: pipeline compilation
      const times: number[] = [];
      for (let i = 0; i < reps; i++) times.push(await timeRecording(gpu, record, 'bench attention'));
      const ms = median(times);
      rows.push({ name, B, T, Hq, Hkv, D, ms, gflops: flops / (ms * 1e6) });
    }
    for (const b of Object.values(bufs)) gpu.release(b);
  }
  return rows;
}
