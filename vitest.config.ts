import { configDefaults, defineConfig } from 'vitest/config';

/**
 * The whole-model golden tests run a second time with the GPU kernel plan forced on (see
 * test/helpers/gpu.ts), so CI checks the kernels real GPUs run against PyTorch on lavapipe too:
 * logits and LoRA gradients (blocked matmul, folded LoRA term), 10-step trajectories, and greedy
 * generation (GEMV decode). So do the random-input tests of the kernels whose reductions the GPU
 * plan builds on subgroups (norms, cross-entropy, sums), each of which asserts that the subgroup
 * variant ran. The rest of the suite runs once, on the device's own plan.
 */
const GPU_PLAN_GOLDEN = ['test/model/forward.test.ts', 'test/train/trajectory.test.ts', 'test/model/generate.test.ts'];
const GPU_PLAN_REDUCTIONS = ['test/kernels/norm.test.ts', 'test/kernels/crossentropy.test.ts', 'test/kernels/reduce.test.ts'];

/**
 * The Try-it demo end to end in Chromium: the card's full clinic run (56 steps) on SwiftShader
 * takes about half an hour on 2 cores, so it is its own project, run by `npm run test:demo`
 * (which sets WHITTLE_DEMO_E2E), not by `npm test`.
 */
const DEMO_E2E = ['test/browser/tryItDemo.test.ts'];
const demoProject = process.env.WHITTLE_DEMO_E2E === '1' ? [{ extends: true as const, test: { name: 'demo', include: DEMO_E2E } }] : [];

export default defineConfig({
  test: {
    environment: 'node',
    pool: 'forks',
    // Two cores in CI; lavapipe itself uses threads, so more workers only thrash.
    maxWorkers: 2,
    // A hang guard, not a speed check: a test's first dispatch of each pipeline waits for
    // lavapipe's LLVM to compile it, which for the GPU plan's kernels takes minutes on a busy
    // 2-core machine with a cold shader cache.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    projects: [
      { extends: true, test: { name: 'default', include: ['test/**/*.test.ts', 'test/**/*.test.tsx'], exclude: [...configDefaults.exclude, ...DEMO_E2E] } },
      { extends: true, test: { name: 'gpu-plan', include: [...GPU_PLAN_GOLDEN, ...GPU_PLAN_REDUCTIONS], env: { WHITTLE_KERNELS: 'gpu' } } },
      ...demoProject,
    ],
  },
});
