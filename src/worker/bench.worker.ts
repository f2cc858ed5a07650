// Runs the benchmark suites in the tab, off the main thread: a slow (software) adapter then
// never freezes the page. One run at a time; the device is opened once and kept.
import { benchResultDocument, kernelShapes, runKernelSuite } from '../bench/kernels';
import { acquireGpu, type Gpu, type KernelChoice } from '../gpu';
import type { BenchEvent, BenchRequest } from './benchProtocol';

const scope = self as unknown as DedicatedWorkerGlobalScope;

function post(event: BenchEvent): void {
  scope.postMessage(event);
}

let gpu: Promise<Gpu> | null = null;
let gpuKernels: KernelChoice = 'auto';
let running = false;

async function runKernels(preset: BenchRequest['preset'], kernels: KernelChoice): Promise<void> {
  if (running) throw new Error('a benchmark is already running');
  running = true;
  try {
    if (gpu && gpuKernels !== kernels) {
      const old = gpu;
      gpu = null;
      (await old.catch(() => null))?.destroy();
    }
    post({ type: 'progress', message: 'Opening the GPU…' });
    gpuKernels = kernels;
    // A failed open is not kept: the next run tries again.
    const device = await (gpu ??= acquireGpu({ kernels }).catch((e: unknown) => {
      gpu = null;
      throw e;
    }));
    const t0 = performance.now();
    const rows = (await runKernelSuite(device, kernelShapes(preset), (message) => post({ type: 'progress', message }))).rows;
    const seconds = (performance.now() - t0) / 1000;
    const machine = { userAgent: navigator.userAgent, hardwareConcurrency: navigator.hardwareConcurrency ?? 0, runtime: 'browser' };
    const doc = benchResultDocument(device, 'kernels', rows, { kernelShapes: preset, peer: false, kernels: device.kernels }, seconds, machine);
    const adapter = device.adapter.description || device.adapter.architecture || device.adapter.vendor || 'WebGPU';
    post({ type: 'done', rows, json: `${JSON.stringify(doc, null, 1)}\n`, adapter, seconds, kernels: device.kernels });
  } finally {
    running = false;
  }
}

scope.onmessage = (ev: MessageEvent<BenchRequest>) => {
  const req = ev.data;
  if (req.type !== 'run-kernels') return;
  runKernels(req.preset, req.kernels ?? 'auto').catch((e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }));
};
