// Builds the kernels that reduce across a workgroup in two variants, with shaders/subgroupReduce.wgsl or shaders/workgroupReduce.wgsl first, and picks one per the device's plan.
import subgroupPrelude from '../../shaders/subgroupReduce.wgsl?raw';
import workgroupPrelude from '../../shaders/workgroupReduce.wgsl?raw';
import type { Gpu, KernelSpec } from '../gpu';
import { reductionKind, type ReductionKind } from './matmulPlans';

/** Suffix of the subgroup variant's kernel name (`norm.rmsnorm_fwd.subgroups`): tests assert on it. */
export const SUBGROUP_SUFFIX = '.subgroups';

/** A family's WGSL (which uses Lane, wg_sum2, wg_total or wg_max_arg) with each prelude before it. */
export function reductionVariants(code: string): Record<ReductionKind, string> {
  return { workgroup: workgroupPrelude + code, subgroup: subgroupPrelude + code };
}

/**
 * A kernel whose spec depends on the device's reductions (and on `constants`, which callers
 * pass as a few fixed choices): the two specs are built once per constants and reused, so the
 * pipeline cache finds them by identity.
 */
export function reducingKernel(
  code: Record<ReductionKind, string>,
  name: string,
  entryPoint: string,
  bindings: KernelSpec['bindings'],
): (gpu: Gpu, constants?: Record<string, number>) => KernelSpec {
  const specs = new Map<string, KernelSpec>();
  return (gpu, constants) => {
    const kind = reductionKind(gpu);
    const key = `${kind}|${constants ? JSON.stringify(constants) : ''}`;
    let s = specs.get(key);
    if (!s) {
      s = { name: kind === 'subgroup' ? name + SUBGROUP_SUFFIX : name, code: code[kind], entryPoint, bindings, ...(constants ? { constants } : {}) };
      specs.set(key, s);
    }
    return s;
  };
}
