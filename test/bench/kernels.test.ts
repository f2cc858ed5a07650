import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { benchResultDocument, kernelShapes, KERNEL_PRESETS, PREVIOUS_CPU_MATMUL_NOTE, runKernelSuite } from '../../src/bench/kernels';
import { getTestGpu } from '../helpers/gpu';

describe('kernels suite (src/bench/kernels.ts)', () => {
  it('runs the tiny preset: every case timed, LoRA outputs compared, peer cases attached', async () => {
    const gpu = await getTestGpu();
    const log: string[] = [];
    const { rows, peers } = await runKernelSuite(gpu, { ...kernelShapes('tiny'), reps: 1 }, (m) => log.push(m));
    // The FMA probe, 2 matmul shapes x 2 weight dtypes, attention forward + backward, LoRA
    // fused/unfused x 2 dtypes, and folded x 2 on the GPU kernel plan or the previous CPU matmul
    // at the 2 shapes on the CPU plan.
    expect(rows).toHaveLength(13);
    expect(rows.filter((r) => (gpu.kernels === 'gpu' ? r.name.startsWith('lora linear folded') : r.note === PREVIOUS_CPU_MATMUL_NOTE))).toHaveLength(2);
    const [probe, ...kernels] = rows;
    expect(probe!.name).toMatch(/^FMA probe/);
    expect(probe!.peakShare).toBe(1);
    for (const r of rows.filter((row) => row.name.startsWith('lora linear folded'))) {
      expect(Number(/agrees to ([0-9.e+-]+)/.exec(r.note ?? '')![1])).toBeLessThan(1e-5);
    }
    for (const r of rows) expect(Number.isFinite(r.ms) && r.ms > 0, r.name).toBe(true);
    for (const r of kernels) {
      expect(peers.get(r), r.name).toBeDefined();
      // Every kernel row's share of the probe's peak: its GFLOP/s over the probe's.
      expect(r.peakShare, r.name).toBeCloseTo(r.gflops! / probe!.gflops!, 12);
    }
    const unfused = rows.filter((r) => r.name.startsWith('lora linear unfused'));
    expect(unfused).toHaveLength(2);
    for (const r of unfused) {
      // The fused and unfused outputs must agree (f32 rounding order only).
      const err = Number(/agree to ([0-9.e+-]+)/.exec(r.note ?? '')![1]);
      expect(err).toBeLessThan(1e-5);
    }
    expect(log.some((m) => m.includes('attention'))).toBe(true);
    const doc = benchResultDocument(gpu, 'kernels', rows, { kernelShapes: 'tiny' }, 1, { runtime: 'node' });
    expect(doc.suite).toBe('kernels');
    expect(doc.rows).toBe(rows);
    expect(Object.keys(doc.adapter.limits).sort()).toEqual(['maxBufferSize', 'maxStorageBufferBindingSize']);
  });

  it('has the presets the browser offers, the full one as the CLI default', () => {
    expect([...KERNEL_PRESETS]).toEqual(['tiny', 'small', 'full']);
    expect(kernelShapes('full').lora).toEqual({ T: 512, K: 576, N: 1536, r: 16 });
    expect(kernelShapes('full', true).matmul).toContainEqual([512, 576, 49152]);
    expect(kernelShapes('full').matmul).not.toContainEqual([512, 576, 49152]);
  });

  it('keeps the suite code free of Node modules (the browser bench page bundles it)', () => {
    for (const f of ['kernels.ts', 'table.ts', 'matmul.ts', 'attention.ts', 'timing.ts', 'fmaProbe.ts']) {
      const src = readFileSync(join(__dirname, '..', '..', 'src', 'bench', f), 'utf8');
      expect(src, f).not.toMatch(/from 'node:|require\(/);
    }
  });
});
