import { afterAll, describe, expect, it } from 'vitest';
import { acquireGpu, type Gpu } from '../../src/gpu';
import { cachedKernelPlan, chooseKernelPlan, lookupTuningCache, MATMUL_SHADER_HASH, parseTuningCache, tuningCacheKey, withTuningEntry, type TuningCacheFile, type TuningStore } from '../../src/kernels/kernelPlanChoice';
import { matmul } from '../../src/kernels/matmul';
import { gpuMatmulPlanFor, matmulShapeKey, rulesMatmulPlan, kernelRules } from '../../src/kernels/matmulPlans';
import { matmulCandidates, tuneMatmulShapes, type TuningCandidate, type TuningShape } from '../../src/kernels/matmulTuning';
import { getTestGpu } from '../helpers/gpu';

// Lavapipe compiles each pipeline for seconds to minutes under load: few shapes, few candidates.
const SLOW = { timeout: 600_000 };
// Not a multiple of any tile; rows round up to the 64-row bucket the table keys on.
const SHAPE: TuningShape = { M: 40, N: 72, K: 56, batch: 1, lora: false, transB: true };
const QUICK = { batches: 1, perBatch: 2, maxCandidates: 2 };

/** A candidate whose shader does not compile. */
const broken: TuningCandidate = {
  plan: { kernel: 'blocked', wg: 4, bk: 16, splitK: 1, gemvThreads: 64 },
  record: (gpu, rec) => rec.dispatch({ name: 'broken', code: 'fn main( {', entryPoint: 'main', bindings: ['uniform', 'write'] }, { buffers: [gpu.createBuffer(16)], params: new Uint8Array(16), workgroups: [1] }),
};
/** A candidate that computes twice the product: it compiles and runs, and disagrees with the reference. */
const doubling: TuningCandidate = {
  plan: { kernel: 'blocked', wg: 4, bk: 8, splitK: 1, gemvThreads: 64 },
  record: (gpu, rec, args) => matmul(gpu, rec, { ...args, alpha: 2, tuning: { kernel: 'blocked', wgX: 4, wgY: 4, bk: 8, specialize: false } }),
};

function memoryStore(initial: unknown = null): TuningStore & { file: unknown; saves: number } {
  const s = {
    file: initial,
    saves: 0,
    load: () => Promise.resolve(s.file),
    save: (f: TuningCacheFile) => {
      s.file = JSON.parse(JSON.stringify(f)) as unknown;
      s.saves++;
      return Promise.resolve();
    },
  };
  return s;
}

const owned: Gpu[] = [];
afterAll(() => owned.forEach((g) => g.destroy()));
/** A device of its own running the GPU plan (the shared test device may run the CPU plan). */
async function gpuPlanDevice(): Promise<Gpu> {
  const g = await acquireGpu({ kernels: 'gpu' });
  owned.push(g);
  return g;
}

describe('the tuning pass', () => {
  it('drops a candidate that does not compile and one that disagrees with the reference, with reasons, and keeps the one that agrees', SLOW, async () => {
    const gpu = await getTestGpu();
    const lines: string[] = [];
    const rules = rulesMatmulPlan(gpu.limits, kernelRules(gpu.adapter), SHAPE);
    const [t] = await tuneMatmulShapes(gpu, [SHAPE], { ...QUICK, maxCandidates: 3, log: (l) => lines.push(l), candidates: (_s, r) => [{ plan: r }, broken, doubling] });
    expect(t!.key).toBe(matmulShapeKey(SHAPE));
    expect(t!.results[0]!.ms).toBeGreaterThan(0);
    expect(t!.results[0]!.error).toBeLessThanOrEqual(1e-4);
    expect(t!.results[1]!.dropped).toMatch(/^does not compile/);
    expect(t!.results[2]!.dropped).toMatch(/^disagrees with the reference: error 1\.00e\+0/);
    expect(t!.winner).toEqual(rules);
    expect(lines.some((l) => /dropped: does not compile/.test(l))).toBe(true);
    expect(lines.some((l) => /dropped: disagrees with the reference/.test(l))).toBe(true);
  });
});

describe('chooseKernelPlan', () => {
  it('leaves CPU adapters to the rules unless forced, and the CPU plan always', SLOW, async () => {
    const gpu = await gpuPlanDevice();
    const store = memoryStore();
    const r = await chooseKernelPlan(gpu, { shapes: [SHAPE], store, runtime: 'test' });
    expect(r).toMatchObject({ family: 'gpu', source: 'rules', adapterClass: 'cpu', note: 'CPU adapter: rules only', matmul: {} });
    expect(store.saves).toBe(0);
    const cpuPlan = { ...gpu, kernels: 'cpu' } as Gpu;
    expect((await chooseKernelPlan(cpuPlan, { shapes: [SHAPE], store, runtime: 'test', force: true })).family).toBe('cpu');
  });

  it('tunes when forced, caches the winners, reuses them, and ignores a stale cache', SLOW, async () => {
    const gpu = await gpuPlanDevice();
    const store = memoryStore();
    const lines: string[] = [];
    const first = await chooseKernelPlan(gpu, { shapes: [SHAPE], store, runtime: 'dawn-a', force: true, log: (l) => lines.push(l), tuning: QUICK });
    expect(first.source).toBe('tuning');
    const key = matmulShapeKey(SHAPE);
    const won = first.matmul[key]!;
    expect(won).toBeDefined();
    // The device now runs the tuned launch for the shape (and any shape of its bucket).
    expect(gpuMatmulPlanFor(gpu, { ...SHAPE, M: 63 })).toEqual(won);
    const file = parseTuningCache(store.file);
    expect(file.entries).toHaveLength(1);
    expect(file.entries[0]!.key).toEqual(tuningCacheKey(gpu.adapter, 'dawn-a'));
    expect(file.entries[0]!.matmul[key]).toEqual(won);

    // Same adapter, runtime and shaders: the cache answers, no candidate runs.
    const never = () => {
      throw new Error('tuning ran');
    };
    const cached = await chooseKernelPlan(gpu, { shapes: [SHAPE], store, runtime: 'dawn-a', force: true, tuning: { candidates: never } });
    expect(cached).toMatchObject({ source: 'cache', matmul: { [key]: won } });

    // Other shaders (a changed hash) or another Dawn build: stale, tuned again, replaced.
    const staleFile = parseTuningCache(store.file);
    staleFile.entries[0]!.key.shaderHash = 'old';
    staleFile.entries[0]!.matmul[key] = { kernel: 'blocked', wg: 16, bk: 8, splitK: 1, gemvThreads: 64 };
    store.file = staleFile;
    lines.length = 0;
    const rebuilt = await chooseKernelPlan(gpu, { shapes: [SHAPE], store, runtime: 'dawn-a', force: true, log: (l) => lines.push(l), tuning: { ...QUICK, maxCandidates: 1 } });
    expect(rebuilt.source).toBe('tuning');
    expect(lines[0]).toMatch(/stale/);
    const after = parseTuningCache(store.file);
    expect(after.entries).toHaveLength(1);
    expect(after.entries[0]!.key.shaderHash).toBe(MATMUL_SHADER_HASH);
    const otherRuntime = lookupTuningCache(after, tuningCacheKey(gpu.adapter, 'dawn-b'));
    expect(otherRuntime).toEqual({ entry: null, stale: true });
  });

  it('rebuilds a cache file that is not one', SLOW, async () => {
    const gpu = await gpuPlanDevice();
    const store = memoryStore({ format: 'something else', entries: 'no' });
    const r = await chooseKernelPlan(gpu, { shapes: [SHAPE], store, runtime: 'dawn-a', force: true, tuning: { ...QUICK, maxCandidates: 1 } });
    expect(r.source).toBe('tuning');
    expect(parseTuningCache(store.file).entries).toHaveLength(1);
  });

  it('falls back to the rules when every candidate is dropped', SLOW, async () => {
    const gpu = await gpuPlanDevice();
    const lines: string[] = [];
    const r = await chooseKernelPlan(gpu, { shapes: [SHAPE], runtime: 'x', force: true, log: (l) => lines.push(l), tuning: { ...QUICK, candidates: () => [broken] } });
    expect(r).toMatchObject({ source: 'rules', matmul: {} });
    expect(r.note).toMatch(/every one was dropped/);
    expect(lines.some((l) => /dropped: does not compile/.test(l))).toBe(true);
  });

  it('drops a candidate that loses the device and falls back to the rules', SLOW, async () => {
    const gpu = await gpuPlanDevice();
    const lines: string[] = [];
    const losing: TuningCandidate = { plan: { kernel: 'blocked', wg: 8, bk: 8, splitK: 1, gemvThreads: 64 }, record: (g) => g.device.destroy() };
    const r = await chooseKernelPlan(gpu, { shapes: [SHAPE], runtime: 'x', force: true, log: (l) => lines.push(l), tuning: { ...QUICK, candidates: () => [losing] } });
    expect(r).toMatchObject({ source: 'rules', matmul: {} });
    expect(r.note).toMatch(/^tuning failed \(.*lost/);
    expect(lines.some((l) => /dropped: lost the device/.test(l))).toBe(true);
  });
});

describe('cache entries', () => {
  it('one entry per adapter, the newest replacing stale ones', () => {
    const a = { vendor: 'v', architecture: 'a', device: 'd', description: '' };
    const b = { ...a, device: 'other' };
    let f = parseTuningCache(null);
    f = withTuningEntry(f, { key: tuningCacheKey(a, 'r1'), matmul: {}, savedAt: '' });
    f = withTuningEntry(f, { key: tuningCacheKey(b, 'r1'), matmul: {}, savedAt: '' });
    f = withTuningEntry(f, { key: tuningCacheKey(a, 'r2'), matmul: {}, savedAt: '' });
    expect(f.entries.map((e) => `${e.key.device}/${e.key.runtime}`)).toEqual(['other/r1', 'd/r2']);
    expect(lookupTuningCache(f, tuningCacheKey(a, 'r2')).entry).not.toBeNull();
    expect(lookupTuningCache(f, tuningCacheKey(a, 'r1'))).toEqual({ entry: null, stale: true });
    expect(lookupTuningCache(f, tuningCacheKey({ ...a, vendor: 'new' }, 'r1'))).toEqual({ entry: null, stale: false });
  });

  it('default candidates are what the pass tries', () => {
    const limits = { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupSizeY: 256, maxComputeWorkgroupStorageSize: 32768, maxStorageBufferBindingSize: 1 << 30 };
    const rules = rulesMatmulPlan(limits, { maxWg: 16, gemvThreads: 64 }, SHAPE);
    expect(matmulCandidates(SHAPE, rules, { limits: limits as GPUSupportedLimits })[0]!.plan).toEqual(rules);
  });
});

describe('the cached plan (evaluation, generation)', () => {
  it('applies every cached launch that fits, saves nothing, and falls back to the rules on a miss', async () => {
    const gpu = await gpuPlanDevice();
    const won = { kernel: 'blocked' as const, wg: 4, bk: 8, splitK: 2, gemvThreads: 64 };
    const unfit = { kernel: 'blocked' as const, wg: 64, bk: 8, splitK: 1, gemvThreads: 64 };
    const key = matmulShapeKey(SHAPE);
    const entry = { key: tuningCacheKey(gpu.adapter, 'dawn-a'), matmul: { [key]: won, '1x2x3': unfit }, savedAt: '' };
    const store = memoryStore(withTuningEntry(parseTuningCache(null), entry));
    const r = await cachedKernelPlan(gpu, { store, runtime: 'dawn-a' });
    expect(r).toMatchObject({ source: 'cache', matmul: { [key]: won } });
    expect(Object.keys(r.matmul)).toEqual([key]);
    expect(gpuMatmulPlanFor(gpu, SHAPE)).toEqual(won);
    expect(store.saves).toBe(0);

    const miss = await cachedKernelPlan(gpu, { store, runtime: 'dawn-b' });
    expect(miss).toMatchObject({ source: 'rules', matmul: {}, note: 'the tuning cache is stale for this device' });
    expect(gpuMatmulPlanFor(gpu, SHAPE)).toEqual(rulesMatmulPlan(gpu.limits, kernelRules(gpu.adapter), SHAPE));
    expect(await cachedKernelPlan(gpu, { store: memoryStore(), runtime: 'dawn-a' })).toMatchObject({ source: 'rules', note: 'no tuned launches cached for this device' });
    expect(store.saves).toBe(0);
  });
});
