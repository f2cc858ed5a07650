// Dropout seeds completed per pass (PassSeed): a pass-values buffer, and the kernel seed that gives a chosen mask seed.
import { storageUsage, type Gpu } from '../../src/gpu';
import type { PassSeed } from '../../src/kernels/loraCommon';
import { passMaskSeed } from '../../src/kernels/reference/lora';

/** A large odd multiplier, so seed + multiplier * S wraps around 2^32. */
export const TEST_MULTIPLIER = 0x85ebca6b;

/** A PassSeed whose buffer holds the pass seed S in u32 word 1 (the others poisoned); release `values` after. */
export function passSeedOf(gpu: Gpu, S: number): PassSeed {
  const values = gpu.upload(Uint32Array.of(0xffffffff, S >>> 0, 0xffffffff, 0xffffffff), 'pass-values', storageUsage() | GPUBufferUsage.UNIFORM);
  return { values, multiplier: TEST_MULTIPLIER };
}

/** The fixed part of a kernel seed whose mask in the pass with seed S is the mask of `maskSeed`. */
export function seedBeforePass(maskSeed: number, S: number): number {
  const seed = (maskSeed - Math.imul(TEST_MULTIPLIER, S)) >>> 0;
  if (passMaskSeed(seed, TEST_MULTIPLIER, S) !== maskSeed >>> 0) throw new Error('seedBeforePass: the seeds do not round-trip');
  return seed;
}
