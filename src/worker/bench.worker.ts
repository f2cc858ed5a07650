// Runs the benchmark suites in the tab, off the main thread: a slow (software) adapter then
// never freezes the page. One run at a time; the device is opened once and kept.
import { benchResultDocument, kernelShapes, runKernelSuite } from '../bench/kernels';
import { acquireGpu, type Gpu } from '../gpu';
import type { BenchEvent, BenchRequest } from './benchProtocol';

const scope = self as unknown as DedicatedWorkerGlobalScope;

function post(event: BenchEvent): void {
  scope.postMessage(event);
}

let gpu: Promise<Gpu> | null = null;
let running = false;

async function runKernels(preset: BenchRequest['preset']): Promise<void> {
  if (running) throw new Error('a benchmark is already running');
  running = true;
  try {
    post({ type: 'progress', message: 'Opening the GPU…' });
    // A failed open is not kept: the next run tries again.
    const device = await (gpu ??= acquireGpu().catch((e: unknown) => {
      gpu = null;
      throw e;
    }));
    const t0 = performance.now();
    const rows = (await runKernelSuite(device, kernelShapes(preset), (message) => post({ type: 'progress', message }))).rows;
    const seconds = (performance.now() - t0) / 1000;
    const machine = { userAgent: navigator.userAgent, hardwareConcurrency: navigator.hardwareConcurrency ?? 0, runtime: 'browser' };
    const doc = benchResultDocument(device, 'kernels', rows, { kernelShapes: preset, peer: false }, seconds, machine);
    const adapter = device.adapter.description || device.adapter.architecture || device.adapter.vendor || 'WebGPU';
    post({ type: 'done', rows, json: `${JSON.stringify(doc, null, 1)}\n`, adapter, seconds });
  } finally {
    running = false;
  }
}

scope.onmessage = (ev: MessageEvent<BenchRequest>) => {
  const req = ev.data;
  if (req.type !== 'run-kernels') return;
  runKernels(req.preset).catch((e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }));
};
