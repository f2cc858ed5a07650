import type { Gpu } from '../gpu';
import type { SelfTestCase } from './types';

export type { SelfTestCase } from './types';

/** A self-test case with the kernel family (its file name under src/selftest/) it belongs to. */
export interface RegisteredCase extends SelfTestCase {
  family: string;
}

export interface SelfTestResult {
  family: string;
  name: string;
  tol: number;
  /** maxRelError against the TypeScript reference; Infinity when the case threw or produced NaN. */
  error: number;
  passed: boolean;
  ms: number;
  /** Why a case failed without a number: the exception's message. */
  message?: string;
}

export interface SelfTestSummary {
  total: number;
  passed: number;
  failed: number;
  ms: number;
}

export type SelfTestProgress =
  | { kind: 'start'; index: number; total: number; family: string; name: string }
  | { kind: 'result'; index: number; total: number; result: SelfTestResult };

export interface RunOptions {
  /** A case still running after this long fails (the GPU work itself cannot be cancelled). */
  caseTimeoutMs?: number;
}

/**
 * Families in the order a reader would check them: the simplest kernel first, then the forward
 * pass, then training. Families not listed here (new ones) follow alphabetically.
 */
export const FAMILY_ORDER: readonly string[] = [
  'elementwise',
  'matmul',
  'lora',
  'attention',
  'norm',
  'rope',
  'activation',
  'embedding',
  'crossentropy',
  'reduce',
  'adamw',
  'sampling',
];

// Every sibling module is loaded; those exporting `selfTestCases` are families. Adding a family
// is adding a file: nothing here needs editing.
const modules = import.meta.glob<{ selfTestCases?: unknown }>(['./*.ts', '!./index.ts'], { eager: true });

function familyOf(path: string): string {
  return path.replace(/^\.\//, '').replace(/\.ts$/, '');
}

function familyRank(family: string): number {
  const i = FAMILY_ORDER.indexOf(family);
  return i === -1 ? FAMILY_ORDER.length : i;
}

/** Why `c` is not a usable SelfTestCase, or null when it is. */
function caseProblem(c: unknown): string | null {
  if (typeof c !== 'object' || c === null) return 'is not an object';
  const o = c as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name === '') return 'has no name';
  // tol 0 is allowed: integer kernels (argmax, sampling) must match exactly.
  if (typeof o.tol !== 'number' || !(o.tol >= 0) || !Number.isFinite(o.tol)) return `has a bad tol (${String(o.tol)})`;
  if (typeof o.run !== 'function') return 'has no run()';
  return null;
}

/** A stand-in that fails with `message`, so a malformed export shows up as a failed row, not a crash. */
function brokenCase(family: string, name: string, message: string): RegisteredCase {
  return {
    family,
    name,
    tol: 0,
    run: () => Promise.reject(new Error(message)), // fails whatever tol says
  };
}

/** Builds the registry from `{ path: module }` pairs (exported for tests). */
export function collectCases(mods: Record<string, { selfTestCases?: unknown }>): RegisteredCase[] {
  const families = Object.keys(mods)
    .filter((p) => mods[p] && 'selfTestCases' in mods[p])
    .map((p) => ({ family: familyOf(p), exported: mods[p]!.selfTestCases }))
    .sort((a, b) => familyRank(a.family) - familyRank(b.family) || a.family.localeCompare(b.family));
  const out: RegisteredCase[] = [];
  for (const { family, exported } of families) {
    if (!Array.isArray(exported)) {
      out.push(brokenCase(family, `${family}: selfTestCases`, `${family}: selfTestCases is not an array`));
      continue;
    }
    exported.forEach((c: unknown, i) => {
      const problem = caseProblem(c);
      if (problem) out.push(brokenCase(family, `${family} case #${i}`, `${family} case #${i} ${problem}`));
      else out.push({ ...(c as SelfTestCase), family });
    });
  }
  return out;
}

let registry: RegisteredCase[] | null = null;

/** Every self-test case of every kernel family, in FAMILY_ORDER. */
export function allSelfTestCases(): RegisteredCase[] {
  registry ??= collectCases(modules);
  return registry;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs cases one at a time (so a slow software GPU shows steady progress and one failure does not
 * hide the rest). Each run sits inside GPU error scopes: a validation error fails its own case.
 */
export async function runSelfTest(
  gpu: Gpu,
  onProgress?: (p: SelfTestProgress) => void,
  cases: readonly RegisteredCase[] = allSelfTestCases(),
  options: RunOptions = {},
): Promise<SelfTestResult[]> {
  const timeoutMs = options.caseTimeoutMs ?? 120_000;
  const results: SelfTestResult[] = [];
  const total = cases.length;
  for (let index = 0; index < total; index++) {
    const c = cases[index]!;
    onProgress?.({ kind: 'start', index, total, family: c.family, name: c.name });
    const t0 = performance.now();
    let error = Infinity;
    let message: string | undefined;
    try {
      error = await withTimeout(
        gpu.checked(() => c.run(gpu)),
        timeoutMs,
        c.name,
      );
      if (typeof error !== 'number' || Number.isNaN(error)) {
        message = `returned ${String(error)} instead of an error measure`;
        error = Infinity;
      }
    } catch (e) {
      message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    const result: SelfTestResult = {
      family: c.family,
      name: c.name,
      tol: c.tol,
      error,
      passed: message === undefined && error <= c.tol,
      ms: performance.now() - t0,
    };
    if (message !== undefined) result.message = message;
    results.push(result);
    onProgress?.({ kind: 'result', index, total, result });
  }
  return results;
}

export function summarize(results: readonly SelfTestResult[]): SelfTestSummary {
  const passed = results.filter((r) => r.passed).length;
  return {
    total: results.length,
    passed,
    failed: results.length - passed,
    ms: results.reduce((s, r) => s + r.ms, 0),
  };
}
