// Plain-TypeScript reference for shaders/fmaprobe.wgsl: the recurrence step by step, and its closed form.

/** Chains per thread (8 vec4) and the distinct start patterns (thread index mod 64). */
export const FMA_PROBE_CHAINS = 32;
export const FMA_PROBE_PATTERNS = 64;

/** The value of one chain after `iters` steps of a = a*m + c, literally, in f32 (for small iters). */
export function fmaChainSteps(a0: number, iters: number, m: number, c: number): number {
  let a = Math.fround(a0);
  for (let k = 0; k < iters; k++) a = Math.fround(a * m + c);
  return a;
}

/**
 * The same chain in closed form, for m = 1 (a0 + iters*c) or m = -1 (a0 and c - a0 in turn).
 * Exact when every value is an integer below 2^24, which is why the probe uses only these.
 */
export function fmaChainClosedForm(a0: number, iters: number, m: number, c: number): number {
  if (m === 1) return a0 + iters * c;
  if (m === -1) return iters % 2 === 0 ? a0 : c - a0;
  throw new Error(`fmaChainClosedForm: m must be 1 or -1, got ${m}`);
}

/**
 * What thread i writes: the sum of its 32 chains, which start at (i mod 64) + lane, summed in the
 * shader's order (pairs of vec4s, then the four lanes).
 */
export function fmaProbeThreadRef(i: number, iters: number, m: number, c: number, chain = fmaChainClosedForm): number {
  const base = i % FMA_PROBE_PATTERNS;
  const acc = Array.from({ length: 8 }, (_, v) => [0, 1, 2, 3].map((l) => chain(base + 4 * v + l, iters, m, c)));
  const add = (x: number[], y: number[]) => x.map((e, l) => Math.fround(e + y[l]!));
  const s = add(add(add(acc[0]!, acc[1]!), add(acc[2]!, acc[3]!)), add(add(acc[4]!, acc[5]!), add(acc[6]!, acc[7]!)));
  return Math.fround(Math.fround(s[0]! + s[1]!) + Math.fround(s[2]! + s[3]!));
}

/** The probe's whole output for `threads` threads. */
export function fmaProbeRef(threads: number, iters: number, m: number, c: number, chain = fmaChainClosedForm): Float32Array {
  const patterns = Array.from({ length: Math.min(threads, FMA_PROBE_PATTERNS) }, (_, i) => fmaProbeThreadRef(i, iters, m, c, chain));
  return Float32Array.from({ length: threads }, (_, i) => patterns[i % FMA_PROBE_PATTERNS]!);
}
