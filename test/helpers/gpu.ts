import { describe, expect, it } from 'vitest';
import { acquireGpu, KERNEL_CHOICES, type Gpu, type KernelChoice } from '../../src/gpu';
import { hasSubgroupReductions } from '../../src/kernels/matmulPlans';
import { SUBGROUP_SUFFIX } from '../../src/kernels/subgroupReduce';
import type { SelfTestCase } from '../../src/selftest/types';

let shared: Promise<Gpu> | null = null;

/**
 * The kernel plan the test device runs: WHITTLE_KERNELS (auto, cpu or gpu; default auto). The
 * gpu-plan vitest project sets it to 'gpu', so the golden tests also run the GPU kernels on
 * lavapipe. A value outside the choices fails every GPU test rather than falling back.
 */
export function testKernelChoice(env: Record<string, string | undefined> = process.env): KernelChoice {
  const v = env.WHITTLE_KERNELS ?? 'auto';
  if (!(KERNEL_CHOICES as readonly string[]).includes(v)) throw new Error(`WHITTLE_KERNELS must be one of ${KERNEL_CHOICES.join(', ')}, got '${v}'`);
  return v as KernelChoice;
}

/**
 * The test device (Dawn on lavapipe in CI), with the plan testKernelChoice() names. A missing
 * adapter is a test failure, never a skip: GPU tests that silently skip would let every kernel
 * rot unnoticed.
 */
export function getTestGpu(): Promise<Gpu> {
  if (!shared) {
    const kernels = testKernelChoice();
    shared = acquireGpu({ kernels }).catch((e: Error) => {
      throw new Error(
        `No WebGPU adapter for the GPU tests: ${e.message}\n` +
          'On a machine without a GPU install Mesa lavapipe: sudo bash .ci/install-system.sh',
      );
    });
  }
  return shared;
}

/** A storage buffer of n f32 filled with NaN, so any element a kernel fails to write shows up. */
export function poisonedF32(gpu: Gpu, n: number, label = 'poisoned'): GPUBuffer {
  return gpu.upload(new Float32Array(Math.max(n, 1)).fill(NaN), label);
}

/** One test per self-test case of a kernel family: the in-browser check, run in CI at its bound. */
export function describeSelfTestCases(family: string, cases: readonly SelfTestCase[]): void {
  describe(`${family} self-test cases`, () => {
    for (const c of cases) {
      it(c.name, async () => {
        const gpu = await getTestGpu();
        expect(await c.run(gpu)).toBeLessThanOrEqual(c.tol);
      });
    }
  });
}

/**
 * Fails unless the kernels `names` (compiled already) ran in the variant of the device's plan:
 * the subgroup one under the GPU plan, the workgroup one under the CPU plan. Both test adapters
 * (lavapipe, SwiftShader) have subgroups, so a GPU-plan device without them fails here too: a
 * subgroup variant that silently fell back would leave those kernels untested.
 */
export function expectReductionVariant(gpu: Gpu, names: readonly string[]): void {
  const compiled = gpu.pipelines.names();
  const subgroup = gpu.kernels === 'gpu';
  if (subgroup && !hasSubgroupReductions(gpu.adapter)) {
    expect.fail(`the test adapter lacks subgroups or subgroup_id (features: ${gpu.adapter.features.join(', ')}; WGSL: ${(gpu.adapter.wgslFeatures ?? []).join(', ')})`);
  }
  for (const name of names) {
    expect(compiled, `${name} under the ${gpu.kernels} plan`).toContain(subgroup ? name + SUBGROUP_SUFFIX : name);
    expect(compiled, `${name} under the ${gpu.kernels} plan`).not.toContain(subgroup ? name : name + SUBGROUP_SUFFIX);
  }
}
