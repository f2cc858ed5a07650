// Peak f32 FMA rate probe, the denominator of the benchmarks' peakShare: bindings for shaders/fmaprobe.wgsl.
import code from '../../shaders/fmaprobe.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type Recorder } from '../gpu';
import { kernelSpec } from './kernelSpec';
import { grid1d } from './grid';

const PROBE = kernelSpec(code, 'fmaprobe.fma_probe', 'fma_probe', ['uniform', 'write']);
const WG = 64;

/** FLOPs one thread does per loop trip: 8 vec4 FMAs, 2 FLOPs each per lane. */
export const FMA_PROBE_FLOPS_PER_ITER = 8 * 4 * 2;

export interface FmaProbeArgs {
  /** f32 [threads]: each thread's sum of its 32 chains. */
  out: BufferBinding;
  threads: number;
  /** Loop trips per thread. */
  iters: number;
  /** Multiplier and addend of every chain; +-1 and an integer keep the output exact. */
  m: number;
  c: number;
}

/** The FLOPs of one probe dispatch (the loop's FMAs only; the final sums are not counted). */
export function fmaProbeFlops(threads: number, iters: number): number {
  return threads * iters * FMA_PROBE_FLOPS_PER_ITER;
}

export function fmaProbe(gpu: Gpu, rec: Recorder, args: FmaProbeArgs): void {
  const { workgroups, rowStride } = grid1d(args.threads, WG, gpu.limits.maxComputeWorkgroupsPerDimension);
  rec.dispatch(PROBE, {
    buffers: [args.out],
    params: new Params().u32(args.iters).u32(rowStride).u32(args.threads).u32(0).f32(args.m).f32(args.c).f32(0).f32(0).bytes(),
    workgroups,
    label: 'fma probe',
  });
}
