import { describe, expect, it } from 'vitest';
import { acquireGpu, type Gpu } from '../../src/gpu';
import type { SelfTestCase } from '../../src/selftest/types';

let shared: Promise<Gpu> | null = null;

/**
 * The test device (Dawn on lavapipe in CI). A missing adapter is a test failure, never a skip:
 * GPU tests that silently skip would let every kernel rot unnoticed.
 */
export function getTestGpu(): Promise<Gpu> {
  shared ??= acquireGpu().catch((e: Error) => {
    throw new Error(
      `No WebGPU adapter for the GPU tests: ${e.message}\n` +
        'On a machine without a GPU install Mesa lavapipe: sudo bash .ci/install-system.sh',
    );
  });
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
