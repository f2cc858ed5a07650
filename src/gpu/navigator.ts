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
  if (nodeGpu) return nodeGpu;
  const moduleName = 'webgpu';
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = (await import(/* @vite-ignore */ moduleName)) as typeof mod;
  } catch (e) {
    throw new WebGpuUnavailableError(
      `The 'webgpu' npm package (Dawn for Node) could not be loaded: ${(e as Error).message}`,
    );
  }
  installGlobals(mod.globals);
  // Dawn's instance must outlive every device made from it; dropping it to the GC crashes the
  // process (seen under vitest). Keep one per process.
  nodeGpu ??= mod.create([...DAWN_NODE_FLAGS]);
  return nodeGpu;
}

/**
 * Flags for Dawn's Node instance. Dawn's Vulkan backend withholds shader-f16 on NVIDIA drivers
 * unless the adapter toggle vulkan_enable_f16_on_nvidia is on; without it the engine falls back
 * to f32 weights there. Elsewhere the toggle changes nothing.
 */
export const DAWN_NODE_FLAGS: readonly string[] = ['enable-dawn-features=vulkan_enable_f16_on_nvidia'];

/** Dawn's Node binding needs the GPUBufferUsage/GPUMapMode/... globals a browser would define. */
function installGlobals(globals: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
}

/**
 * Uses `gpu`, a Dawn instance the caller made (e.g. from a dawn.node loaded by path, with its own
 * flags), and its binding's `globals` as Node's WebGPU instead of importing the `webgpu` package.
 * Call it before the first acquireGpu(); the instance must live as long as the process.
 */
export function provideNodeWebGpu(gpu: GPU, globals: Record<string, unknown>): void {
  installGlobals(globals);
  nodeGpu = gpu;
}

let nodeGpu: GPU | null = null;
