// Messages between the page's Benchmarks panel and the bench worker, which owns its own
// GPUDevice and runs the kernels suite (src/bench/kernels.ts). Plain data only.
import type { KernelPreset } from '../bench/kernels';
import type { BenchRow } from '../bench/table';

export type { KernelPreset, BenchRow };

export type BenchRequest = { type: 'run-kernels'; preset: KernelPreset };

export type BenchEvent =
  | { type: 'progress'; message: string }
  /** `json`: the result document, the same shape as `npm run bench` writes to bench/results. */
  | { type: 'done'; rows: BenchRow[]; json: string; adapter: string; seconds: number }
  | { type: 'error'; message: string };
