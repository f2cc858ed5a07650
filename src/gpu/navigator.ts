import { WebGpuUnavailableError } from './errors';

/**
 * Finds a `GPU` entry point: `navigator.gpu` in a browser or worker, Dawn's binding from the
 * `webgpu` npm package in Node. The import is dynamic so that browser bundles never see it.
 */
export async function findWebGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (!isNode) {
    throw new WebGpuUnavailableError(
      'This browser does not expose WebGPU (navigator.gpu is missing). Use a recent Chrome, Edge or ' +
        'Safari over https or http://localhost, and check that hardware acceleration is on.',
    );
  }
  const moduleName = 'webgpu';
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = (await import(/* @vite-ignore */ moduleName)) as typeof mod;
  } catch (e) {
    throw new WebGpuUnavailableError(
      `The 'webgpu' npm package (Dawn for Node) could not be loaded: ${(e as Error).message}`,
    );
  }
  // Dawn's Node binding needs the GPUBufferUsage/GPUMapMode/... globals a browser would define.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  // Dawn's instance must outlive every device made from it; dropping it to the GC crashes the
  // process (seen under vitest). Keep one per process.
  nodeGpu ??= mod.create([]);
  return nodeGpu;
}

let nodeGpu: GPU | null = null;
