// Messages between the page's Benchmarks panel and the bench worker, which owns its own
// GPUDevice and runs the kernels suite (src/bench/kernels.ts). Plain data only.
import type { KernelPreset } from '../bench/kernels';
import type { BenchRow } from '../bench/table';
import type { KernelChoice, KernelPlan } from '../gpu';

export type { KernelPreset, BenchRow };

/** `kernels`: the plan to time (default 'auto'); a change reopens the worker's device. */
export type BenchRequest = { type: 'run-kernels'; preset: KernelPreset; kernels?: KernelChoice };

export type BenchEvent =
  | { type: 'progress'; message: string }
  /** `json`: the result document, the same shape as `npm run bench` writes to bench/results. */
  | { type: 'done'; rows: BenchRow[]; json: string; adapter: string; seconds: number; kernels: KernelPlan }
  | { type: 'error'; message: string };
