// One constructor for the pipeline spec of a WGSL entry point, so binding modules list their kernels one line each.
import type { KernelSpec } from '../gpu';

/**
 * The spec of entry point `entryPoint` in the WGSL family `code`, cached under `name` (by
 * convention `<family>.<kernel>`); `bindings` in order of binding index.
 */
export function kernelSpec(
  code: string,
  name: string,
  entryPoint: string,
  bindings: KernelSpec['bindings'],
  constants?: Record<string, number>,
): KernelSpec {
  return constants ? { name, code, entryPoint, bindings, constants } : { name, code, entryPoint, bindings };
}
