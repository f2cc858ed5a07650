// The GPU plan per device: rules per adapter class, the table of per-shape matmul launches a job runs (tuned, cached or recorded), and its workgroup reductions.
import { isCpuAdapter, type AdapterSummary, type Gpu, type KernelPlan } from '../gpu';
import { blockedTileBytes, chooseGpuMatmul, GEMV_MAX_ROWS, type GpuMatmulPlan } from './matmulGpu';

/**
 * Adapter classes with their own rules. 'cpu': shaders run as CPU threads (lavapipe,
 * SwiftShader); 'discrete': NVIDIA and AMD; 'integrated': Apple, Intel; 'mobile': Qualcomm,
 * ARM, Imagination; 'other': anything unrecognised, which gets the discrete rules.
 */
export type AdapterClass = 'cpu' | 'discrete' | 'integrated' | 'mobile' | 'other';

/** The default plan of an adapter class, before any tuning. */
export interface KernelRules {
  adapterClass: AdapterClass;
  /** The kernel family 'auto' picks. */
  family: KernelPlan;
  /** Whether a job starts with a tuning pass (never on CPU adapters: rules only there). */
  tune: boolean;
  /** Largest 'blocked' workgroup side (threads; tiles are 8 times that). */
  maxWg: number;
  /** GEMV threads sharing K (a power of 2, at least the subgroup size where known). */
  gemvThreads: number;
  /** How the GPU plan's norms, cross-entropy and sums reduce across a workgroup. */
  reductions: ReductionKind;
}

/**
 * 'subgroup': subgroup operations (shaders/subgroupReduce.wgsl), where the device has the
 * 'subgroups' feature and the subgroup_id WGSL extension; 'workgroup': workgroup memory alone
 * (shaders/workgroupReduce.wgsl), the CPU plan's kernels everywhere.
 */
export type ReductionKind = 'subgroup' | 'workgroup';

/** True when the device can build the subgroup reductions. */
export function hasSubgroupReductions(a: Pick<AdapterSummary, 'features' | 'wgslFeatures'>): boolean {
  return a.features.includes('subgroups') && (a.wgslFeatures ?? []).includes('subgroup_id');
}

/** The class of an adapter from its `adapter.info` strings. */
export function adapterClass(a: Pick<AdapterSummary, 'vendor' | 'architecture' | 'device' | 'description'>): AdapterClass {
  if (isCpuAdapter(a)) return 'cpu';
  const text = `${a.vendor} ${a.architecture} ${a.device} ${a.description}`;
  if (/nvidia|amd|ati\b|radeon|geforce/i.test(text)) return 'discrete';
  if (/apple|intel/i.test(text)) return 'integrated';
  if (/qualcomm|adreno|arm\b|mali|img-tec|imagination|powervr/i.test(text)) return 'mobile';
  return 'other';
}

/**
 * The rules of an adapter: its class, limits and subgroup size. Discrete GPUs take the largest
 * tiles that keep the grid full; integrated GPUs (fewer compute units, register files shared
 * with graphics) stop at 64-wide tiles, mobile GPUs at 32. GEMV groups span at least one
 * subgroup so the K split never leaves lanes idle. These are starting points the tuning pass
 * corrects, not measurements.
 */
export function kernelRules(a: AdapterSummary): KernelRules {
  const cls = adapterClass(a);
  const maxInv = a.limits.maxComputeInvocationsPerWorkgroup ?? 256;
  const subgroup = a.subgroupMaxSize ?? a.limits.subgroupMaxSize ?? 0;
  const pow2Floor = (n: number) => 2 ** Math.floor(Math.log2(Math.max(1, n)));
  const gemvThreads = Math.min(pow2Floor(maxInv), Math.max(64, pow2Floor(subgroup)));
  const maxWg = cls === 'integrated' ? 8 : cls === 'mobile' ? 4 : 16;
  const reductions: ReductionKind = hasSubgroupReductions(a) ? 'subgroup' : 'workgroup';
  return { adapterClass: cls, family: cls === 'cpu' ? 'cpu' : 'gpu', tune: cls !== 'cpu', maxWg, gemvThreads, reductions };
}

/** What picks a matmul launch: the product's size, batching and whether a LoRA term is folded in. */
export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  batch: number;
  lora: boolean;
}

/**
 * Rows of a shape's table entry: exact up to the GEMV bound, else rounded up to a power of 2,
 * so a step whose sequence length varies from batch to batch still finds its launch.
 */
export function rowBucket(M: number): number {
  return M <= GEMV_MAX_ROWS ? M : 2 ** Math.ceil(Math.log2(M));
}

export function matmulShapeKey(s: MatmulShape): string {
  return `${rowBucket(s.M)}x${s.N}x${s.K}${s.batch > 1 ? `*${s.batch}` : ''}${s.lora ? '+lora' : ''}`;
}

type Limits = Parameters<typeof chooseGpuMatmul>[0];

/** The rules' launch for a shape: `chooseGpuMatmul` within the class's tile cap and GEMV width. */
export function rulesMatmulPlan(limits: Limits, rules: Pick<KernelRules, 'maxWg' | 'gemvThreads'>, s: MatmulShape): GpuMatmulPlan {
  // Fields copied one by one: GPUSupportedLimits keeps them in prototype getters, which a spread drops.
  const capped: Limits = {
    maxComputeInvocationsPerWorkgroup: Math.min(limits.maxComputeInvocationsPerWorkgroup, rules.maxWg * rules.maxWg),
    maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: limits.maxComputeWorkgroupSizeY,
    maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
    maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
  };
  const plan = chooseGpuMatmul(capped, s);
  return plan.kernel === 'gemv' ? { ...plan, gemvThreads: Math.min(rules.gemvThreads, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX) } : plan;
}

/** True when a launch fits the device (tile bytes, workgroup size); the problem is checked at dispatch. */
export function planFits(limits: Limits, plan: GpuMatmulPlan): boolean {
  if (plan.kernel === 'gemv') {
    const t = plan.gemvThreads;
    return t >= 1 && (t & (t - 1)) === 0 && t <= limits.maxComputeInvocationsPerWorkgroup && t <= limits.maxComputeWorkgroupSizeX;
  }
  return (
    [4, 8, 16].includes(plan.wg) &&
    plan.wg * plan.wg <= limits.maxComputeInvocationsPerWorkgroup &&
    plan.wg <= limits.maxComputeWorkgroupSizeX &&
    plan.bk >= 8 &&
    plan.bk % 8 === 0 &&
    blockedTileBytes(plan.wg, plan.bk) <= limits.maxComputeWorkgroupStorageSize &&
    Number.isInteger(plan.splitK) &&
    plan.splitK >= 1
  );
}

/** Where a job's plan came from. */
export type PlanSource = 'rules' | 'tuning' | 'cache' | 'checkpoint';

/**
 * The kernel plan a job runs, as written into checkpoints and job.json: the family, the class
 * rules, and the per-shape matmul launches that differ from the rules (tuned or cached). A
 * resume applies it as recorded, so every product keeps its launch (split-K changes the
 * summation order) and the losses stay bit-exact whatever the cache holds by then; so do the
 * reductions (a record without them, from before subgroup reductions, ran 'workgroup').
 */
export interface KernelPlanRecord {
  version: 1;
  family: KernelPlan;
  source: PlanSource;
  adapterClass: AdapterClass;
  /** The adapter it was chosen on, for the record ("vendor architecture", device, description). */
  adapter: string;
  /** Launches by `matmulShapeKey`. */
  matmul: Record<string, GpuMatmulPlan>;
  /** The GPU plan's workgroup reductions (absent: 'workgroup'). */
  reductions?: ReductionKind;
  /** Why tuning did not run or did not finish, when it did not. */
  note?: string;
}

export function adapterName(a: Pick<AdapterSummary, 'vendor' | 'architecture' | 'device' | 'description'>): string {
  return [a.vendor, a.architecture, a.device, a.description].filter((s) => s).join(' / ') || 'unknown adapter';
}

/** The record of a plan that uses the rules alone. */
export function rulesPlanRecord(gpu: Gpu, note?: string): KernelPlanRecord {
  const rules = kernelRules(gpu.adapter);
  const base = { version: 1 as const, family: gpu.kernels, source: 'rules' as const, adapterClass: rules.adapterClass, adapter: adapterName(gpu.adapter), matmul: {} };
  return { ...base, reductions: planReductions(gpu), ...(note ? { note } : {}) };
}

/** The reductions the rules give a device's plan: the CPU plan keeps the workgroup ones. */
export function planReductions(gpu: Gpu): ReductionKind {
  return gpu.kernels === 'gpu' ? kernelRules(gpu.adapter).reductions : 'workgroup';
}

interface ActiveTable {
  rules: KernelRules;
  matmul: Map<string, GpuMatmulPlan>;
  reductions: ReductionKind;
}

const active = new WeakMap<Gpu, ActiveTable>();

function tableOf(gpu: Gpu): ActiveTable {
  let t = active.get(gpu);
  if (!t) active.set(gpu, (t = { rules: kernelRules(gpu.adapter), matmul: new Map(), reductions: planReductions(gpu) }));
  return t;
}

/**
 * Makes `record` this device's plan: every later GPU-plan matmul of a listed shape uses its
 * launch, others the class rules; the reductions are the record's. Launches (or subgroup
 * reductions) that this device cannot run (a checkpoint from another GPU) are left out and
 * returned, so the caller can say the resume is not bit-exact.
 */
export function applyKernelPlan(gpu: Gpu, record: KernelPlanRecord): string[] {
  const t = tableOf(gpu);
  t.matmul.clear();
  const dropped: string[] = [];
  const wanted = gpu.kernels === 'gpu' ? (record.reductions ?? 'workgroup') : 'workgroup';
  t.reductions = wanted === 'subgroup' && !hasSubgroupReductions(gpu.adapter) ? 'workgroup' : wanted;
  if (t.reductions !== wanted) dropped.push('subgroup reductions');
  for (const [key, plan] of Object.entries(record.matmul)) {
    if (planFits(gpu.limits, plan)) t.matmul.set(key, plan);
    else dropped.push(key);
  }
  return dropped;
}

/** The launch the GPU plan uses for a product on this device. */
export function gpuMatmulPlanFor(gpu: Gpu, s: MatmulShape): GpuMatmulPlan {
  const t = tableOf(gpu);
  return t.matmul.get(matmulShapeKey(s)) ?? rulesMatmulPlan(gpu.limits, t.rules, s);
}

/** How a device's kernels reduce across a workgroup now (the applied plan's choice, else the rules'). */
export function reductionKind(gpu: Gpu): ReductionKind {
  return gpu.kernels === 'gpu' ? tableOf(gpu).reductions : 'workgroup';
}

/** One line for logs and the job page: which plan runs and where it came from. */
export function describeKernelPlan(r: KernelPlanRecord): string {
  if (r.family === 'cpu') return `cpu plan (${r.adapterClass} adapter, rules)`;
  const n = Object.keys(r.matmul).length;
  const from = r.source === 'rules' ? `rules for ${r.adapterClass} adapters` : `${r.source}, ${n} tuned matmul shape${n === 1 ? '' : 's'}`;
  const reductions = r.reductions === 'subgroup' ? ', subgroup reductions' : '';
  return `gpu plan (${from}${reductions})${r.note ? `; ${r.note}` : ''}`;
}

/** Reads a record back from JSON, or null when it is not one (an older or damaged file). */
export function parseKernelPlanRecord(v: unknown): KernelPlanRecord | null {
  if (!v || typeof v !== 'object') return null;
  const r = v as Partial<KernelPlanRecord>;
  if (r.version !== 1 || (r.family !== 'cpu' && r.family !== 'gpu') || !r.matmul || typeof r.matmul !== 'object') return null;
  if (r.reductions !== undefined && r.reductions !== 'subgroup' && r.reductions !== 'workgroup') return null;
  for (const p of Object.values(r.matmul)) {
    if (!p || (p.kernel !== 'blocked' && p.kernel !== 'gemv') || ![p.wg, p.bk, p.splitK, p.gemvThreads].every((x) => Number.isInteger(x))) return null;
  }
  return r as KernelPlanRecord;
}
