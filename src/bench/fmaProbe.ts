/**
 * The device's peak f32 FMA rate, measured by the FMA probe kernel (shaders/fmaprobe.wgsl): the
 * kernels suite divides every row's GFLOP/s by it (`peakShare`). The work grows until one
 * dispatch takes `targetMs`, so launch and submit overheads are small next to it on any device,
 * from a software rasteriser to a datacenter GPU; the output is checked against its closed form.
 * No Node modules (the browser's bench page runs it too).
 */
import type { Gpu } from '../gpu';
import { fmaProbe, fmaProbeFlops } from '../kernels/fmaprobe';
import { fmaProbeRef } from '../kernels/reference/fmaprobe';
import { median } from './table';
import { processCpuMs, timeRecording } from './timing';

export interface FmaPeak {
  /** GFLOP/s of the fastest timed dispatch (2 FLOPs per FMA): a peak, and load only slows it. */
  gflops: number;
  /** ms of that dispatch. */
  ms: number;
  threads: number;
  iters: number;
  /** CPU ms the process used over the timed dispatches, median (Node only: see `processCpuMs`). */
  processCpuMs?: number;
}

export interface FmaPeakOptions {
  /** Grow the dispatch until it takes at least this long (default 20 ms). */
  targetMs?: number;
  /** Timed dispatches at the final size (the fastest reported; default 5). */
  reps?: number;
  /** Thread cap; beyond it the loop count grows instead (default 2^22: 16 MiB of output). */
  maxThreads?: number;
}

// m = -1, c = 1: every chain flips between a0 and 1 - a0, exact for any loop count.
const M = -1;
const C = 1;

export async function measureFmaPeak(gpu: Gpu, options: FmaPeakOptions = {}): Promise<FmaPeak> {
  const { targetMs = 20, reps = 5, maxThreads = 1 << 22 } = options;
  let threads = 64 * 64;
  let iters = 64;
  const out = gpu.createBuffer(maxThreads * 4, 'fma probe out');
  try {
    const time = () => timeRecording(gpu, (rec) => fmaProbe(gpu, rec, { out, threads, iters, m: M, c: C }), 'fma probe');
    await time(); // compiles the pipeline
    for (let ms = await time(); ms < targetMs; ms = await time()) {
      // Grow by up to 8x per round (less near the target), threads first, then loop trips.
      const factor = Math.min(8, Math.max(2, Math.ceil((1.2 * targetMs) / Math.max(ms, 1e-3))));
      const moreThreads = Math.min(maxThreads, threads * factor);
      const rest = Math.max(1, factor / (moreThreads / threads));
      threads = moreThreads;
      iters = Math.ceil(iters * rest);
    }
    const times: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < reps; i++) {
      const cpu0 = processCpuMs();
      times.push(await time());
      const cpu1 = processCpuMs();
      if (cpu0 !== undefined && cpu1 !== undefined) cpu.push(cpu1 - cpu0);
    }
    const got = await gpu.readF32(out, threads);
    const want = fmaProbeRef(threads, iters, M, C);
    const bad = got.findIndex((v, i) => v !== want[i]);
    if (bad >= 0) throw new Error(`FMA probe: thread ${bad} wrote ${got[bad]}, the closed form gives ${want[bad]} (${threads} threads x ${iters} trips)`);
    const ms = Math.min(...times);
    const peak: FmaPeak = { gflops: fmaProbeFlops(threads, iters) / ms / 1e6, ms, threads, iters };
    if (cpu.length > 0) peak.processCpuMs = median(cpu);
    return peak;
  } finally {
    gpu.release(out);
  }
}
