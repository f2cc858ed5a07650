// Messages between the page and the self-test worker. The worker owns the GPUDevice; the page
// only ever sees plain data, so nothing here may hold a GPU object.
import type { AdapterSummary } from '../gpu';
import type { SelfTestResult, SelfTestSummary } from '../selftest';

export type WorkerRequest = { type: 'probe' } | { type: 'run-selftest' };

export interface GpuReport {
  /** Adapter info with the limits and features of the device Whittle opened. */
  adapter: AdapterSummary;
  /** Everything the adapter offers (the device enables only the features Whittle uses). */
  adapterFeatures: string[];
  wgslLanguageFeatures: string[];
  /** True for a software adapter such as SwiftShader; null when the browser does not say. */
  isFallbackAdapter: boolean | null;
  hasF16: boolean;
  hasTimestamps: boolean;
  hasSubgroups: boolean;
}

/** Why no GPU: each has its own advice on the page. */
export type UnavailableReason = 'no-webgpu' | 'no-adapter' | 'device-failed';

export interface PlannedCase {
  family: string;
  name: string;
  tol: number;
}

export type WorkerEvent =
  | { type: 'ready'; report: GpuReport }
  | { type: 'unavailable'; reason: UnavailableReason; message: string }
  | { type: 'selftest-plan'; cases: PlannedCase[] }
  | { type: 'selftest-case-start'; index: number }
  | { type: 'selftest-case-result'; index: number; result: SelfTestResult }
  | { type: 'selftest-done'; summary: SelfTestSummary }
  | { type: 'device-lost'; message: string }
  | { type: 'error'; message: string };
