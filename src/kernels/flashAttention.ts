// The 'gpu' plan's attention kernels (FlashAttention-2 tiles in workgroup memory), one pipeline set per head dim; attention.ts dispatches them.
import code from '../../shaders/flashAttention.wgsl?raw';
import type { KernelSpec } from '../gpu';

/** Threads per workgroup in every flash kernel. */
export const FLASH_THREADS = 64;
/**
 * Largest head dim the flash kernels take; attention.ts runs larger ones with the 'cpu' kernels.
 * Why: at head dim 128 every dk/dv thread holds two 128-float rows in registers, and lavapipe
 * (where CI tests these kernels) needs minutes to build that pipeline (bench/NOTES.md), too slow
 * to test; the fix is to keep those rows in workgroup memory.
 */
export const FLASH_MAX_HEAD_DIM = 64;

/** Shape constants of one head dim's pipelines (see the shader's header). */
export interface FlashShape {
  /** vec4s per head row. */
  d4: number;
  /** Threads per row: 4, 2 or 1, whichever divides d4. */
  lanes: number;
  /** Rows per workgroup: FLASH_THREADS / lanes. */
  rows: number;
  /** Keys (forward, dq) or queries (dk/dv) staged per step. */
  tile: number;
}

/**
 * Tiles are sized to keep each kernel under 16 KiB of workgroup memory (WebGPU's default
 * limit): two staged tiles of at most 1024 floats (8 KiB) and two per-row score arrays of at most
 * 512 floats (4 KiB).
 */
export function flashShape(D: number): FlashShape {
  const d4 = D / 4;
  const lanes = d4 % 4 === 0 ? 4 : d4 % 2 === 0 ? 2 : 1;
  const rows = FLASH_THREADS / lanes;
  let tile = 32;
  while (tile > 8 && (tile * D > 1024 || rows * tile > 512)) tile /= 2;
  return { d4, lanes, rows, tile };
}

export interface FlashSpecs {
  shape: FlashShape;
  forward: KernelSpec;
  dq: KernelSpec;
  dkdv: KernelSpec;
  decodePartial: KernelSpec;
}

const cache = new Map<number, FlashSpecs>();

/** The flash kernels for head dim D (a multiple of 4, <= FLASH_MAX_HEAD_DIM), built once per D. */
export function flashSpecs(D: number): FlashSpecs {
  let specs = cache.get(D);
  if (specs) return specs;
  const shape = flashShape(D);
  const prelude =
    `const D4: u32 = ${shape.d4}u;\nconst LANES: u32 = ${shape.lanes}u;\n` +
    `const ROWS: u32 = ${shape.rows}u;\nconst TILE: u32 = ${shape.tile}u;\n`;
  const source = prelude + code;
  const spec = (entryPoint: string, bindings: KernelSpec['bindings']): KernelSpec => ({
    name: `flashAttention.${entryPoint}.d${D}`,
    code: source,
    entryPoint,
    bindings,
  });
  const bwd = ['uniform', 'read', 'read', 'read', 'read', 'read', 'read', 'write', 'write'] as const;
  specs = {
    shape,
    forward: spec('flash_fwd', ['uniform', 'read', 'read', 'read', 'write', 'write']),
    dq: spec('flash_bwd_dq', bwd),
    dkdv: spec('flash_bwd_dkdv', bwd),
    decodePartial: spec('flash_decode_partial', ['uniform', 'read', 'read', 'read', 'write', 'read']),
  };
  cache.set(D, specs);
  return specs;
}
