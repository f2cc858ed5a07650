import { afterAll, describe, expect, it } from 'vitest';
import crossentropyCode from '../../shaders/crossentropy.wgsl?raw';
import normCode from '../../shaders/norm.wgsl?raw';
import reduceCode from '../../shaders/reduce.wgsl?raw';
import { acquireGpu, Params, type Gpu, type KernelSpec } from '../../src/gpu';
import { crossEntropyFinalize, CE_STATE_STRIDE } from '../../src/kernels/crossentropy';
import { hasSubgroupReductions, reductionKind } from '../../src/kernels/matmulPlans';
import { crossEntropyRef } from '../../src/kernels/reference/crossentropy';
import { layerNormBackwardRef, layerNormRef, rmsNormRef } from '../../src/kernels/reference/norm';
import { sumRef } from '../../src/kernels/reference/reduce';
import { reductionVariants, SUBGROUP_SUFFIX } from '../../src/kernels/subgroupReduce';
import { withBuffers } from '../../src/selftest/buffers';
import { expectClose } from '../helpers/compare';
import { poisonedF32 } from '../helpers/gpu';
import { Rng, rowData } from '../helpers/random';

// The subgroup reductions at workgroup sizes the binding modules never pick (37: prime, 100:
// a multiple of 4 but not of 8), so that subgroups are not full (lavapipe runs 8 lanes,
// SwiftShader 4) and num_subgroups is not WG / size, checked against the f64 references.
// Bounds, relative to the largest |reference|, f32 against f64 (measured: see each constant):
const NORM_TOL = 2e-6; // out, mean, rstd: the bound of the production sizes in norm.test.ts
const NORM_BWD_TOL = 5e-6; // layerNorm dx, relative to max(|dx|, |dy * w * rstd|) as in norm.test.ts
const CE_TOL = 1e-5; // row loss: as crossentropy.test.ts
const SUM_TOL = 2e-6; // |sum - ref| <= SUM_TOL * sum |x|: as reduce.test.ts
const WORKGROUPS = [37, 100, 256];
const EPS = 1e-5;

const owned: Gpu[] = [];
afterAll(() => owned.forEach((g) => g.destroy()));
let device: Promise<Gpu> | null = null;
/** A device of its own running the GPU plan (the shared test device may run the CPU plan). */
function gpuPlanDevice(): Promise<Gpu> {
  device ??= acquireGpu({ kernels: 'gpu' }).then((g) => (owned.push(g), g));
  return device;
}

/** The subgroup variant of an entry point at workgroup size WG. */
function subgroupSpec(code: string, family: string, entryPoint: string, bindings: KernelSpec['bindings'], WG: number): KernelSpec {
  return { name: `${family}.${entryPoint}${SUBGROUP_SUFFIX}`, code: reductionVariants(code).subgroup, entryPoint, bindings, constants: { WG } };
}

const rowParams = (rows: number, cols: number) => new Params().u32(rows).u32(cols).f32(EPS).u32(rows).u32(0).bytes();

describe('subgroup reductions', () => {
  it('are what the GPU plan picks on the test adapter, and the CPU plan never', async () => {
    const gpu = await gpuPlanDevice();
    expect(gpu.adapter.features).toContain('subgroups');
    expect(gpu.adapter.wgslFeatures).toContain('subgroup_id');
    expect(hasSubgroupReductions(gpu.adapter)).toBe(true);
    expect(reductionKind(gpu)).toBe('subgroup');
    const cpu = await acquireGpu({ kernels: 'cpu' });
    owned.push(cpu);
    expect(reductionKind(cpu)).toBe('workgroup');
  });

  for (const WG of WORKGROUPS) {
    it(`rmsNorm and layerNorm forward match the reference with WG = ${WG}`, async () => {
      const gpu = await gpuPlanDevice();
      const rng = new Rng(WG);
      for (const [rows, cols] of [[3, 1000], [2, 7], [1, 1]] as const) {
        const x = rowData(rng, rows, cols);
        const w = rng.f32(cols, 0.5, 1.5);
        const b = rng.f32(cols);
        const rms = rmsNormRef(x, w, rows, cols, EPS);
        const ln = layerNormRef(x, w, b, rows, cols, EPS);
        await withBuffers(gpu, async (t) => {
          const [xb, wb, bb] = [t(gpu.upload(x)), t(gpu.upload(w)), t(gpu.upload(b))];
          const [out, rstd, lnOut, stats] = [t(poisonedF32(gpu, rows * cols)), t(poisonedF32(gpu, rows)), t(poisonedF32(gpu, rows * cols)), t(poisonedF32(gpu, 2 * rows))];
          const rec = gpu.recorder();
          const params = rowParams(rows, cols);
          rec.dispatch(subgroupSpec(normCode, 'norm', 'rmsnorm_fwd', ['uniform', 'read', 'read', 'write', 'write'], WG), { buffers: [xb, wb, out, rstd], params, workgroups: [rows] });
          rec.dispatch(subgroupSpec(normCode, 'norm', 'layernorm_fwd', ['uniform', 'read', 'read', 'read', 'write', 'write'], WG), { buffers: [xb, wb, bb, lnOut, stats], params, workgroups: [rows] });
          rec.submit();
          const what = `WG ${WG} rows ${rows} cols ${cols}`;
          expectClose(await gpu.readF32(out, rows * cols), rms.out, NORM_TOL, `${what} rms out`);
          expectClose(await gpu.readF32(rstd, rows), rms.rstd, NORM_TOL, `${what} rms rstd`);
          expectClose(await gpu.readF32(lnOut, rows * cols), ln.out, NORM_TOL, `${what} ln out`);
          const s = await gpu.readF32(stats, 2 * rows);
          expectClose(s.filter((_, i) => i % 2 === 0), ln.mean, NORM_TOL, `${what} ln mean`);
          expectClose(s.filter((_, i) => i % 2 === 1), ln.rstd, NORM_TOL, `${what} ln rstd`);
        });
      }
    });

    it(`layerNorm backward (a two-lane sum) matches the reference with WG = ${WG}`, async () => {
      const gpu = await gpuPlanDevice();
      const rng = new Rng(100 + WG);
      const [rows, cols] = [3, 333];
      const x = rowData(rng, rows, cols);
      const w = rng.f32(cols, 0.5, 1.5);
      const dy = rng.f32(rows * cols);
      const ref = layerNormBackwardRef(x, w, dy, rows, cols, EPS);
      const { mean, rstd } = layerNormRef(x, w, new Float64Array(cols), rows, cols, EPS);
      const stats = new Float32Array(2 * rows);
      for (let r = 0; r < rows; r++) stats.set([mean[r]!, rstd[r]!], 2 * r);
      await withBuffers(gpu, async (t) => {
        const dx = t(poisonedF32(gpu, rows * cols));
        const rec = gpu.recorder();
        const buffers = [t(gpu.upload(x)), t(gpu.upload(w)), t(gpu.upload(dy)), t(gpu.upload(stats)), dx];
        rec.dispatch(subgroupSpec(normCode, 'norm', 'layernorm_bwd', ['uniform', 'read', 'read', 'read', 'read', 'write'], WG), { buffers, params: rowParams(rows, cols), workgroups: [rows] });
        rec.submit();
        // dx is a difference of terms of size |dy w rstd| that nearly cancel: bound it by them.
        let scale = 0;
        for (let i = 0; i < rows * cols; i++) scale = Math.max(scale, Math.abs(ref.dx[i]!), Math.abs(dy[i]! * w[i % cols]! * rstd[Math.floor(i / cols)]!));
        const got = await gpu.readF32(dx, rows * cols);
        let err = 0;
        for (let i = 0; i < got.length; i++) err = Math.max(err, Number.isFinite(got[i]!) ? Math.abs(got[i]! - ref.dx[i]!) / scale : Infinity);
        expect(err).toBeLessThanOrEqual(NORM_BWD_TOL);
      });
    });

    it(`cross-entropy chunk stats (max, argmax, sum of exp) match the reference with WG = ${WG}`, async () => {
      const gpu = await gpuPlanDevice();
      const rng = new Rng(200 + WG);
      const [rows, V] = [4, 333];
      const logits = rng.f32(rows * V, -6, 6);
      logits[V + 100] = logits[V + 7] = 9; // a tie: the lower column is the argmax
      const targets = Uint32Array.from([5, 7, 100, 332]);
      const mask = Float32Array.of(1, 1, 1, 0);
      const ref = crossEntropyRef(logits, rows, V, targets, mask);
      await withBuffers(gpu, async (t) => {
        const [tb, mb, state, rowLoss, rowCorrect] = [t(gpu.upload(targets)), t(gpu.upload(mask)), t(poisonedF32(gpu, rows * CE_STATE_STRIDE)), t(poisonedF32(gpu, rows)), t(poisonedF32(gpu, rows))];
        const rec = gpu.recorder();
        const params = new Params().u32(rows).u32(V).u32(0).u32(V).u32(1).u32(rows).f32(0).u32(0).bytes();
        const spec = subgroupSpec(crossentropyCode, 'crossentropy', 'chunk_stats', ['uniform', 'read', 'read', 'read', 'write'], WG);
        rec.dispatch(spec, { buffers: [tb, mb, t(gpu.upload(logits)), state], params, workgroups: [rows] });
        crossEntropyFinalize(gpu, rec, { targets: tb, mask: mb, state, rows, rowLoss, rowCorrect });
        rec.submit();
        expectClose(await gpu.readF32(rowLoss, rows), ref.rowLoss, CE_TOL, `WG ${WG} row loss`);
        expect(Array.from(await gpu.readF32(rowCorrect, rows))).toEqual(Array.from(ref.rowCorrect));
        const st = await gpu.readF32(state, rows * CE_STATE_STRIDE);
        expect(st[CE_STATE_STRIDE + 3]).toBe(7);
      });
    });

    it(`sums and the gradient norm match the reference with WG = ${WG}`, async () => {
      const gpu = await gpuPlanDevice();
      const x = new Rng(300 + WG).f32(1001);
      const absSum = sumRef(x.map(Math.abs));
      await withBuffers(gpu, async (t) => {
        const [xb, out, state] = [t(gpu.upload(x)), t(poisonedF32(gpu, 1)), t(gpu.upload(new Float32Array(4)))];
        const rec = gpu.recorder();
        const sumParams = new Params().u32(x.length).u32(x.length).u32(0).u32(0).u32(0).u32(1).u32(1).u32(0).bytes();
        rec.dispatch(subgroupSpec(reduceCode, 'reduce', 'sum_blocks', ['uniform', 'read', 'write'], WG), { buffers: [xb, out], params: sumParams, workgroups: [1] });
        // The norm of 1001 "partials" (the squares' sum of x taken as a list of partial sums).
        const sq = t(gpu.upload(x.map((v) => v * v)));
        const normParams = new Params().u32(x.length).f32(1).u32(0).u32(0).bytes();
        rec.dispatch(subgroupSpec(reduceCode, 'reduce', 'norm_clip_step', ['uniform', 'read', 'write'], WG), { buffers: [sq, state], params: normParams, workgroups: [1] });
        rec.submit();
        expect(Math.abs((await gpu.readF32(out, 1))[0]! - sumRef(x))).toBeLessThanOrEqual(SUM_TOL * absSum);
        const norm = Math.sqrt(sumRef(x, x.length, true));
        const s = await gpu.readF32(state, 4);
        expect(Math.abs(s[0]! - norm)).toBeLessThanOrEqual(SUM_TOL * norm);
        expect([s[2], s[3]]).toEqual([0, 1]);
      });
    });
  }
});
