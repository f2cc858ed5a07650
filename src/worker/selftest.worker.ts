// Owns the GPUDevice for the capability page: probes the adapter and runs the kernel self-test,
// so a slow software GPU never blocks the page.
import { acquireGpu, type Gpu } from '../gpu';
import { allSelfTestCases, runSelfTest, summarize } from '../selftest';
import type { GpuReport, WorkerEvent, WorkerRequest } from './protocol';

const scope = self as unknown as DedicatedWorkerGlobalScope;

function post(event: WorkerEvent): void {
  scope.postMessage(event);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

let gpu: Promise<Gpu | null> | null = null;
let running = false;

async function probe(): Promise<Gpu | null> {
  const entry = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!entry) {
    post({ type: 'unavailable', reason: 'no-webgpu', message: 'navigator.gpu is missing in this browser.' });
    return null;
  }
  // A separate adapter for the report: the device only enables the features Whittle uses.
  const adapter = await entry.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    post({ type: 'unavailable', reason: 'no-adapter', message: 'requestAdapter() returned null: no usable GPU adapter.' });
    return null;
  }
  let device: Gpu;
  try {
    device = await acquireGpu({ gpu: entry });
  } catch (e) {
    post({ type: 'unavailable', reason: 'device-failed', message: messageOf(e) });
    return null;
  }
  device.onLost((e) => post({ type: 'device-lost', message: e.message }));
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const report: GpuReport = {
    adapter: device.adapter,
    adapterFeatures: [...adapter.features].sort(),
    wgslLanguageFeatures: [...(entry.wgslLanguageFeatures ?? [])].sort(),
    isFallbackAdapter: typeof info?.isFallbackAdapter === 'boolean' ? info.isFallbackAdapter : null,
    hasF16: device.hasF16,
    hasTimestamps: device.hasTimestamps,
    hasSubgroups: device.hasSubgroups,
  };
  post({ type: 'ready', report });
  return device;
}

async function selfTest(): Promise<void> {
  const device = await (gpu ??= probe());
  if (!device) return;
  if (running) return; // one run at a time; the page disables its button meanwhile
  running = true;
  try {
    const cases = allSelfTestCases();
    post({ type: 'selftest-plan', cases: cases.map(({ family, name, tol }) => ({ family, name, tol })) });
    const results = await runSelfTest(device, (p) => {
      if (p.kind === 'start') post({ type: 'selftest-case-start', index: p.index });
      else post({ type: 'selftest-case-result', index: p.index, result: p.result });
    });
    post({ type: 'selftest-done', summary: summarize(results) });
  } finally {
    running = false;
  }
}

scope.onmessage = (ev: MessageEvent<WorkerRequest>) => {
  const req = ev.data;
  const work = req.type === 'probe' ? (gpu ??= probe()) : selfTest();
  work.catch((e: unknown) => post({ type: 'error', message: messageOf(e) }));
};
