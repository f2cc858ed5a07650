// Picks a job's kernel plan at its start (the class rules, the tuning cache, or a tuning pass; evaluation and generation: the cache or the rules) and applies it to the device.
import matmulCpuCode from '../../shaders/matmul.wgsl?raw';
import matmulCommonCode from '../../shaders/matmulCommon.wgsl?raw';
import matmulGpuCode from '../../shaders/matmulGpu.wgsl?raw';
import type { AdapterSummary, Gpu } from '../gpu';
import type { GpuMatmulPlan } from './matmulGpu';
import { adapterName, applyKernelPlan, kernelRules, matmulShapeKey, planFits, planReductions, rulesPlanRecord, type KernelPlanRecord } from './matmulPlans';
import { MAX_SHAPES, tuneMatmulShapes, type TuningOptions, type TuningShape } from './matmulTuning';

/** What a tuning result is only valid for: one adapter, one browser or Dawn build, these shaders. */
export interface TuningCacheKey {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** The browser's user agent, or the Dawn build (`webgpu` package version) in Node. */
  runtime: string;
  /** FNV-1a of the matmul shaders the tuned launches and the reference run. */
  shaderHash: string;
}

export interface TuningCacheEntry {
  key: TuningCacheKey;
  /** Winning launches by `matmulShapeKey`. */
  matmul: Record<string, GpuMatmulPlan>;
  savedAt: string;
}

export interface TuningCacheFile {
  format: 'whittle-kernel-tuning';
  version: 1;
  entries: TuningCacheEntry[];
}

/** Where tuning results persist: a JSON file in Node, IndexedDB in the browser worker. */
export interface TuningStore {
  /** The stored file (anything: it is validated), or null when there is none. */
  load(): Promise<unknown>;
  save(file: TuningCacheFile): Promise<void>;
}

/** Adapters kept per cache file (the oldest are dropped beyond it). */
const MAX_ENTRIES = 16;

function fnv1a64(text: string): string {
  let h = 0xcbf29ce484222325n;
  const bytes = new TextEncoder().encode(text);
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, '0');
}

/** Hash of the shaders a tuned launch depends on: a changed kernel makes old timings meaningless. */
export const MATMUL_SHADER_HASH = fnv1a64(matmulCommonCode + '\0' + matmulGpuCode + '\0' + matmulCpuCode);

export function tuningCacheKey(adapter: Pick<AdapterSummary, 'vendor' | 'architecture' | 'device' | 'description'>, runtime: string, shaderHash = MATMUL_SHADER_HASH): TuningCacheKey {
  const { vendor, architecture, device, description } = adapter;
  return { vendor, architecture, device, description, runtime, shaderHash };
}

const sameAdapter = (a: TuningCacheKey, b: TuningCacheKey) => a.vendor === b.vendor && a.architecture === b.architecture && a.device === b.device && a.description === b.description;
const sameKey = (a: TuningCacheKey, b: TuningCacheKey) => sameAdapter(a, b) && a.runtime === b.runtime && a.shaderHash === b.shaderHash;

/** The cache file's valid entries; anything malformed reads as an empty cache (and is rebuilt). */
export function parseTuningCache(v: unknown): TuningCacheFile {
  const empty: TuningCacheFile = { format: 'whittle-kernel-tuning', version: 1, entries: [] };
  if (!v || typeof v !== 'object') return empty;
  const f = v as Partial<TuningCacheFile>;
  if (f.format !== 'whittle-kernel-tuning' || f.version !== 1 || !Array.isArray(f.entries)) return empty;
  const str = (x: unknown) => typeof x === 'string';
  const entries = f.entries.filter((e): e is TuningCacheEntry => {
    const k = e?.key as Partial<TuningCacheKey> | undefined;
    return !!k && [k.vendor, k.architecture, k.device, k.description, k.runtime, k.shaderHash].every(str) && !!e.matmul && typeof e.matmul === 'object';
  });
  return { ...empty, entries };
}

/** The entry for this key, and whether the file held an older one for the adapter (stale: other shaders or runtime). */
export function lookupTuningCache(file: TuningCacheFile, key: TuningCacheKey): { entry: TuningCacheEntry | null; stale: boolean } {
  const entry = file.entries.find((e) => sameKey(e.key, key)) ?? null;
  return { entry, stale: !entry && file.entries.some((e) => sameAdapter(e.key, key)) };
}

/** The file with this adapter's entry replaced (stale ones for the adapter dropped), newest last. */
export function withTuningEntry(file: TuningCacheFile, entry: TuningCacheEntry): TuningCacheFile {
  const others = file.entries.filter((e) => !sameAdapter(e.key, entry.key));
  return { ...file, entries: [...others, entry].slice(-MAX_ENTRIES) };
}

export interface ChooseOptions {
  /** The products the job's step runs, largest first: the first MAX_SHAPES distinct ones are tuned. */
  shapes: readonly TuningShape[];
  store?: TuningStore;
  /** Browser user agent or Dawn build: part of the cache key. */
  runtime: string;
  /** Tune even on a CPU adapter (tests and CI run the pass on lavapipe this way). */
  force?: boolean;
  log?: (line: string) => void;
  tuning?: TuningOptions;
}

/**
 * The job's kernel plan, applied to `gpu`. CPU plan or CPU adapter (unless forced): the rules.
 * Otherwise the cached launches when the cache has every shape for this adapter, runtime and
 * shader hash; else a tuning pass over the shapes (the cache's winners kept), saved back. A
 * pass that fails outright (lost device, a reference that cannot run) leaves the rules.
 */
export async function chooseKernelPlan(gpu: Gpu, o: ChooseOptions): Promise<KernelPlanRecord> {
  const log = o.log ?? (() => {});
  const done = (r: KernelPlanRecord) => (applyKernelPlan(gpu, r), r);
  if (gpu.kernels === 'cpu') return done(rulesPlanRecord(gpu));
  const rules = kernelRules(gpu.adapter);
  if (!rules.tune && !o.force) return done(rulesPlanRecord(gpu, 'CPU adapter: rules only'));
  const key = tuningCacheKey(gpu.adapter, o.runtime);
  let file = parseTuningCache(null);
  if (o.store) {
    try {
      file = parseTuningCache(await o.store.load());
    } catch (e) {
      log(`kernel tuning cache unreadable (${(e as Error).message}); rebuilding it`);
    }
  }
  const { entry, stale } = lookupTuningCache(file, key);
  if (stale) log('kernel tuning cache is stale for this adapter (other shaders or runtime); tuning again');
  const cached: Record<string, GpuMatmulPlan> = {};
  for (const [k, p] of Object.entries(entry?.matmul ?? {})) if (planFits(gpu.limits, p)) cached[k] = p;
  // The first MAX_SHAPES distinct shapes (callers list the largest first); the rest keep the rules.
  const keys = [...new Set(o.shapes.map(matmulShapeKey))].slice(0, MAX_SHAPES);
  const missing = o.shapes.filter((s) => keys.includes(matmulShapeKey(s)) && !(matmulShapeKey(s) in cached));
  const base = { version: 1 as const, family: gpu.kernels, adapterClass: rules.adapterClass, adapter: adapterName(gpu.adapter), reductions: planReductions(gpu) };
  const pick = (from: Record<string, GpuMatmulPlan>) => Object.fromEntries(keys.filter((k) => k in from).map((k) => [k, from[k]!]));
  if (missing.length === 0) return done({ ...base, source: 'cache', matmul: pick(cached) });
  let tuned: Awaited<ReturnType<typeof tuneMatmulShapes>>;
  try {
    tuned = await tuneMatmulShapes(gpu, missing, { ...o.tuning, log });
  } catch (e) {
    const note = `tuning failed (${(e as Error).message.split('\n')[0]}); the rules run`;
    log(note);
    return done(rulesPlanRecord(gpu, note));
  }
  const all = { ...cached };
  for (const t of tuned) if (t.winner) all[t.key] = t.winner;
  if (Object.keys(all).length === 0) {
    const note = 'tuning kept no candidate (every one was dropped); the rules run';
    log(note);
    return done(rulesPlanRecord(gpu, note));
  }
  if (o.store) {
    try {
      await o.store.save(withTuningEntry(file, { key, matmul: { ...(entry?.matmul ?? {}), ...all }, savedAt: new Date().toISOString() }));
    } catch (e) {
      log(`kernel tuning cache not saved (${(e as Error).message}); the next job tunes again`);
    }
  }
  return done({ ...base, source: 'tuning', matmul: pick(all) });
}

/**
 * The plan of work that runs no tuning pass (evaluation, generation), applied to `gpu`: every
 * cached launch for this adapter, runtime and shader hash that fits the device, where the cache
 * holds an entry; the rules on a miss, a stale entry or an unreadable cache (said in the note).
 */
export async function cachedKernelPlan(gpu: Gpu, o: Pick<ChooseOptions, 'store' | 'runtime' | 'log'>): Promise<KernelPlanRecord> {
  const done = (r: KernelPlanRecord) => (applyKernelPlan(gpu, r), r);
  if (gpu.kernels === 'cpu' || !o.store) return done(rulesPlanRecord(gpu));
  let file: TuningCacheFile;
  try {
    file = parseTuningCache(await o.store.load());
  } catch (e) {
    (o.log ?? (() => {}))(`kernel tuning cache unreadable (${(e as Error).message})`);
    return done(rulesPlanRecord(gpu, 'tuning cache unreadable'));
  }
  const { entry, stale } = lookupTuningCache(file, tuningCacheKey(gpu.adapter, o.runtime));
  const matmul = Object.fromEntries(Object.entries(entry?.matmul ?? {}).filter(([, p]) => planFits(gpu.limits, p)));
  if (Object.keys(matmul).length === 0) return done(rulesPlanRecord(gpu, stale ? 'the tuning cache is stale for this device' : 'no tuned launches cached for this device'));
  const rules = kernelRules(gpu.adapter);
  return done({ version: 1, family: gpu.kernels, source: 'cache', adapterClass: rules.adapterClass, adapter: adapterName(gpu.adapter), reductions: planReductions(gpu), matmul });
}
