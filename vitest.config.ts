import { defineConfig } from 'vitest/config';

/**
 * The whole-model golden tests run a second time with the GPU kernel plan forced on (see
 * test/helpers/gpu.ts), so CI checks the kernels real GPUs run against PyTorch on lavapipe too:
 * logits and LoRA gradients (blocked matmul, folded LoRA term), 10-step trajectories, and greedy
 * generation (GEMV decode). The rest of the suite runs once, on the device's own plan.
 */
const GPU_PLAN_GOLDEN = ['test/model/forward.test.ts', 'test/train/trajectory.test.ts', 'test/model/generate.test.ts'];

export default defineConfig({
  test: {
    environment: 'node',
    pool: 'forks',
    // Two cores in CI; lavapipe itself uses threads, so more workers only thrash.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      { extends: true, test: { name: 'default', include: ['test/**/*.test.ts', 'test/**/*.test.tsx'] } },
      // Longer limits: a test's first dispatch of each GPU-plan pipeline waits for lavapipe to
      // compile it (seconds alone, minutes on a loaded machine; Mesa's disk cache keeps it after).
      { extends: true, test: { name: 'gpu-plan', include: GPU_PLAN_GOLDEN, env: { WHITTLE_KERNELS: 'gpu' }, testTimeout: 600_000, hookTimeout: 600_000 } },
    ],
  },
});
