import { describe, expect, it } from 'vitest';
import type { AdapterSummary, Gpu } from '../../src/gpu';
import { chooseGpuMatmul } from '../../src/kernels/matmulGpu';
import { adapterClass, applyKernelPlan, describeKernelPlan, kernelRules, matmulShapeKey, parseKernelPlanRecord, planFits, reductionKind, rowBucket, rulesMatmulPlan, rulesPlanRecord, type KernelPlanRecord } from '../../src/kernels/matmulPlans';
import { matmulCandidates, MAX_CANDIDATES } from '../../src/kernels/matmulTuning';

const LIMITS = {
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupStorageSize: 32768,
  maxStorageBufferBindingSize: 1 << 30,
};

function adapter(vendor: string, architecture = '', extra: Partial<AdapterSummary> = {}): AdapterSummary {
  return { vendor, architecture, device: '', description: '', features: [], limits: { ...LIMITS }, ...extra };
}

describe('kernel rules per adapter class', () => {
  it('classes adapters from adapter.info', () => {
    expect(adapterClass(adapter('mesa', 'llvmpipe'))).toBe('cpu');
    expect(adapterClass(adapter('google', 'swiftshader'))).toBe('cpu');
    expect(adapterClass(adapter('nvidia', 'hopper'))).toBe('discrete');
    expect(adapterClass(adapter('amd', 'rdna-3'))).toBe('discrete');
    expect(adapterClass(adapter('apple', 'metal-3'))).toBe('integrated');
    expect(adapterClass(adapter('intel', 'gen-12lp'))).toBe('integrated');
    expect(adapterClass(adapter('qualcomm', 'adreno-7xx'))).toBe('mobile');
    expect(adapterClass(adapter('', ''))).toBe('other');
  });

  it('CPU adapters get the cpu family and no tuning; GPUs the gpu family with tuning', () => {
    expect(kernelRules(adapter('mesa', 'llvmpipe'))).toMatchObject({ family: 'cpu', tune: false });
    expect(kernelRules(adapter('nvidia'))).toMatchObject({ family: 'gpu', tune: true, maxWg: 16 });
    expect(kernelRules(adapter('apple'))).toMatchObject({ family: 'gpu', tune: true, maxWg: 8 });
    expect(kernelRules(adapter('arm', 'valhall'))).toMatchObject({ maxWg: 4 });
  });

  it('reduce with subgroups where the device has the feature and the subgroup_id extension', () => {
    const sg = { features: ['subgroups'], wgslFeatures: ['subgroup_id'] };
    expect(kernelRules(adapter('nvidia', '', sg)).reductions).toBe('subgroup');
    expect(kernelRules(adapter('mesa', 'llvmpipe', sg)).reductions).toBe('subgroup');
    expect(kernelRules(adapter('nvidia', '', { ...sg, features: [] })).reductions).toBe('workgroup');
    expect(kernelRules(adapter('nvidia', '', { ...sg, wgslFeatures: undefined })).reductions).toBe('workgroup');
  });

  it('GEMV groups span at least a subgroup, within the workgroup limit', () => {
    expect(kernelRules(adapter('amd', '', { subgroupMaxSize: 64 })).gemvThreads).toBe(64);
    expect(kernelRules(adapter('x', '', { subgroupMaxSize: 128 })).gemvThreads).toBe(128);
    expect(kernelRules(adapter('x', '', { limits: { ...LIMITS, maxComputeInvocationsPerWorkgroup: 32 } })).gemvThreads).toBe(32);
  });

  it('CPU and discrete rules launch what chooseGpuMatmul picks (the golden-tested default)', () => {
    for (const s of [
      { M: 512, N: 576, K: 1536, batch: 1, lora: false },
      { M: 40, N: 49152, K: 576, batch: 1, lora: false },
      { M: 512, N: 576, K: 49152, batch: 1, lora: false },
      { M: 1, N: 576, K: 576, batch: 1, lora: false },
    ]) {
      for (const a of [adapter('mesa', 'llvmpipe'), adapter('nvidia')]) expect(rulesMatmulPlan(LIMITS, kernelRules(a), s)).toEqual(chooseGpuMatmul(LIMITS, s));
    }
  });

  it('integrated and mobile rules cap the tile at 64 and 32', () => {
    const big = { M: 4096, N: 4096, K: 512, batch: 1, lora: false };
    expect(rulesMatmulPlan(LIMITS, kernelRules(adapter('nvidia')), big).wg).toBe(16);
    expect(rulesMatmulPlan(LIMITS, kernelRules(adapter('apple')), big).wg).toBe(8);
    expect(rulesMatmulPlan(LIMITS, kernelRules(adapter('qualcomm')), big).wg).toBe(4);
  });
});

describe('shape keys', () => {
  it('keep GEMV rows exact and round larger row counts up to a power of 2', () => {
    expect(rowBucket(1)).toBe(1);
    expect(rowBucket(16)).toBe(16);
    expect(rowBucket(17)).toBe(32);
    expect(rowBucket(300)).toBe(512);
    expect(rowBucket(512)).toBe(512);
    expect(matmulShapeKey({ M: 300, N: 576, K: 1536, batch: 1, lora: true })).toBe('512x576x1536+lora');
    expect(matmulShapeKey({ M: 300, N: 576, K: 1536, batch: 3, lora: false })).toBe('512x576x1536*3');
  });
});

describe('candidates', () => {
  it('start with the rules, fit the device, differ from each other, and stay within the bound', () => {
    for (const s of [
      { M: 512, N: 576, K: 1536, batch: 1, lora: false },
      { M: 512, N: 576, K: 49152, batch: 1, lora: false },
      { M: 512, N: 576, K: 576, batch: 1, lora: true },
      { M: 4, N: 576, K: 576, batch: 1, lora: false },
    ]) {
      const rules = chooseGpuMatmul(LIMITS, s);
      const c = matmulCandidates(s, rules, { limits: LIMITS as GPUSupportedLimits });
      expect(c[0]!.plan).toEqual(rules);
      expect(c.length).toBeGreaterThan(1);
      expect(c.length).toBeLessThanOrEqual(MAX_CANDIDATES);
      expect(new Set(c.map((x) => JSON.stringify(x.plan))).size).toBe(c.length);
      for (const x of c) expect(planFits(LIMITS, x.plan)).toBe(true);
      if (s.lora) for (const x of c) expect(x.plan.splitK).toBe(1);
    }
    // Split-K is tried on and off where the shape allows it.
    const long = { M: 512, N: 576, K: 49152, batch: 1, lora: false };
    const splits = matmulCandidates(long, chooseGpuMatmul(LIMITS, long), { limits: LIMITS as GPUSupportedLimits }).map((x) => x.plan.splitK);
    expect(splits).toContain(1);
    expect(splits.some((k) => k > 1)).toBe(true);
  });
});

describe('plan records', () => {
  const record: KernelPlanRecord = {
    version: 1,
    family: 'gpu',
    source: 'tuning',
    adapterClass: 'discrete',
    adapter: 'nvidia / hopper',
    matmul: { '512x576x1536': { kernel: 'blocked', wg: 8, bk: 32, splitK: 1, gemvThreads: 64 } },
  };

  it('round-trip through JSON and reject what is not one', () => {
    expect(parseKernelPlanRecord(JSON.parse(JSON.stringify(record)))).toEqual(record);
    expect(parseKernelPlanRecord(null)).toBeNull();
    expect(parseKernelPlanRecord({ ...record, version: 2 })).toBeNull();
    expect(parseKernelPlanRecord({ ...record, family: 'fast' })).toBeNull();
    expect(parseKernelPlanRecord({ ...record, matmul: { x: { kernel: 'magic', wg: 1, bk: 1, splitK: 1, gemvThreads: 1 } } })).toBeNull();
    expect(parseKernelPlanRecord({ ...record, matmul: { x: { kernel: 'blocked', wg: 1.5, bk: 1, splitK: 1, gemvThreads: 1 } } })).toBeNull();
    const withReductions = { ...record, reductions: 'subgroup' as const };
    expect(parseKernelPlanRecord(JSON.parse(JSON.stringify(withReductions)))).toEqual(withReductions);
    expect(parseKernelPlanRecord({ ...record, reductions: 'warp' })).toBeNull();
  });

  it('say which plan runs and where it came from', () => {
    expect(describeKernelPlan(record)).toBe('gpu plan (tuning, 1 tuned matmul shape)');
    expect(describeKernelPlan({ ...record, source: 'rules', matmul: {}, note: 'CPU adapter: rules only' })).toBe('gpu plan (rules for discrete adapters); CPU adapter: rules only');
    expect(describeKernelPlan({ ...record, family: 'cpu', adapterClass: 'cpu' })).toBe('cpu plan (cpu adapter, rules)');
    expect(describeKernelPlan({ ...record, reductions: 'subgroup' })).toBe('gpu plan (tuning, 1 tuned matmul shape, subgroup reductions)');
  });

  it("apply the record's reductions: an older record keeps the workgroup ones, a device without subgroups drops them", () => {
    const device = (extra: Partial<AdapterSummary>, kernels: 'cpu' | 'gpu' = 'gpu') => ({ kernels, adapter: adapter('nvidia', '', extra), limits: LIMITS }) as unknown as Gpu;
    const sg = { features: ['subgroups'], wgslFeatures: ['subgroup_id'] };
    const gpu = device(sg);
    expect(reductionKind(gpu)).toBe('subgroup'); // the rules, before any plan is applied
    expect(rulesPlanRecord(gpu).reductions).toBe('subgroup');
    expect(applyKernelPlan(gpu, record)).toEqual([]);
    expect(reductionKind(gpu)).toBe('workgroup');
    expect(applyKernelPlan(gpu, { ...record, reductions: 'subgroup' })).toEqual([]);
    expect(reductionKind(gpu)).toBe('subgroup');
    const without = device({});
    expect(applyKernelPlan(without, { ...record, reductions: 'subgroup' })).toEqual(['subgroup reductions']);
    expect(reductionKind(without)).toBe('workgroup');
    const cpuPlan = device(sg, 'cpu');
    expect(rulesPlanRecord(cpuPlan).reductions).toBe('workgroup');
    expect(reductionKind(cpuPlan)).toBe('workgroup');
  });

  it('planFits refuses launches the device cannot run', () => {
    expect(planFits(LIMITS, { kernel: 'blocked', wg: 16, bk: 32, splitK: 1, gemvThreads: 64 })).toBe(true);
    expect(planFits({ ...LIMITS, maxComputeWorkgroupStorageSize: 16384 }, { kernel: 'blocked', wg: 16, bk: 32, splitK: 1, gemvThreads: 64 })).toBe(false);
    expect(planFits({ ...LIMITS, maxComputeInvocationsPerWorkgroup: 64 }, { kernel: 'blocked', wg: 16, bk: 8, splitK: 1, gemvThreads: 64 })).toBe(false);
    expect(planFits(LIMITS, { kernel: 'gemv', wg: 0, bk: 0, splitK: 1, gemvThreads: 48 })).toBe(false);
    expect(planFits(LIMITS, { kernel: 'blocked', wg: 6, bk: 8, splitK: 1, gemvThreads: 64 })).toBe(false);
  });
});
