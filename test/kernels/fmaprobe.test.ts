import { describe, expect, it } from 'vitest';
import { fmaProbe, fmaProbeFlops, FMA_PROBE_FLOPS_PER_ITER } from '../../src/kernels/fmaprobe';
import { fmaChainClosedForm, fmaChainSteps, fmaProbeRef } from '../../src/kernels/reference/fmaprobe';
import { measureFmaPeak } from '../../src/bench/fmaProbe';
import { getTestGpu } from '../helpers/gpu';
import { Rng } from '../helpers/random';

// Bound: exact (0 difference). With m = +-1 and integer c every chain value and every partial
// sum is an integer below 2^24, so f32 holds it exactly whether or not fma() is fused.

describe('FMA probe reference (src/kernels/reference/fmaprobe.ts)', () => {
  it('closed form equals the literal recurrence for m = +-1', () => {
    const rng = new Rng(11);
    for (let t = 0; t < 50; t++) {
      const a0 = rng.int(95);
      const c = rng.int(9) - 4;
      const n = rng.int(300);
      for (const m of [1, -1]) expect(fmaChainClosedForm(a0, n, m, c), `a0 ${a0} n ${n} m ${m} c ${c}`).toBe(fmaChainSteps(a0, n, m, c));
    }
    expect(() => fmaChainClosedForm(1, 2, 0.5, 1)).toThrow(/m must be 1 or -1/);
  });

  it('counts 64 FLOPs per thread per loop trip (8 vec4 FMAs)', () => {
    expect(FMA_PROBE_FLOPS_PER_ITER).toBe(64);
    expect(fmaProbeFlops(100, 10)).toBe(64_000);
  });
});

describe('FMA probe kernel (shaders/fmaprobe.wgsl)', () => {
  it('writes the closed form for random loop counts, addends and thread counts', async () => {
    const gpu = await getTestGpu();
    const rng = new Rng(12);
    for (const m of [1, -1]) {
      for (let t = 0; t < 3; t++) {
        const threads = 1 + rng.int(700);
        const iters = rng.int(200);
        const c = rng.int(7) - 3;
        const out = gpu.createBuffer(threads * 4);
        try {
          const rec = gpu.recorder('fma probe test');
          fmaProbe(gpu, rec, { out, threads, iters, m, c });
          rec.submit();
          const got = await gpu.readF32(out, threads);
          // The reference run through the literal recurrence, not the closed form.
          const want = fmaProbeRef(threads, iters, m, c, fmaChainSteps);
          expect(Array.from(got), `threads ${threads} iters ${iters} m ${m} c ${c}`).toEqual(Array.from(want));
        } finally {
          gpu.release(out);
        }
      }
    }
  });

  it('measures a positive peak and checks its own output', async () => {
    const gpu = await getTestGpu();
    const peak = await measureFmaPeak(gpu, { targetMs: 5, reps: 1 });
    expect(peak.gflops).toBeGreaterThan(0);
    expect(peak.ms).toBeGreaterThan(0);
    expect(peak.gflops).toBeCloseTo(fmaProbeFlops(peak.threads, peak.iters) / peak.ms / 1e6, 6);
  });
});
