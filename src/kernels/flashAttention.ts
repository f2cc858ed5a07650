// The 'gpu' plan's attention kernels (FlashAttention-2 tiles in workgroup memory), one pipeline set per head dim; attention.ts dispatches them.
import common from '../../shaders/attentionCommon.wgsl?raw';
import own from '../../shaders/flashAttention.wgsl?raw';
import type { KernelSpec } from '../gpu';

/** Threads per workgroup in every flash kernel. */
export const FLASH_THREADS = 64;
/**
 * Workgroup memory every flash kernel stays within: WebGPU's guaranteed minimum of
 * maxComputeWorkgroupStorageSize, so the kernels run on every adapter.
 */
export const FLASH_WORKGROUP_BYTES = 16384;

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
 * The workgroup memory the largest of forward, dq and dk/dv uses at head dim D and a tile:
 * two staged tiles (tile rows of D floats), two arrays of the lanes' partial dot products
 * (FLASH_THREADS per staged row) and two per-staged-row statistics.
 */
export function flashWorkgroupBytes(D: number, tile: number): number {
  return 4 * (2 * tile * D + 2 * FLASH_THREADS * tile + 2 * tile);
}

/**
 * The shape at head dim D: 4 lanes per row where D/4 allows it (at head dim 128 a lane then holds
 * 32 floats of each row it keeps, as at head dim 32 with one lane), and the largest tile of at
 * most 32 rows within FLASH_WORKGROUP_BYTES (8 rows at head dim 64 and 128, 16 at 32).
 */
export function flashShape(D: number): FlashShape {
  const d4 = D / 4;
  const lanes = d4 % 4 === 0 ? 4 : d4 % 2 === 0 ? 2 : 1;
  const rows = FLASH_THREADS / lanes;
  let tile = 32;
  while (tile > 1 && flashWorkgroupBytes(D, tile) > FLASH_WORKGROUP_BYTES) tile /= 2;
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

/** The flash kernels for head dim D (a multiple of 4, at most 128), built once per D. */
export function flashSpecs(D: number): FlashSpecs {
  let specs = cache.get(D);
  if (specs) return specs;
  const shape = flashShape(D);
  const prelude =
    `const D4: u32 = ${shape.d4}u;\nconst LANES: u32 = ${shape.lanes}u;\n` +
    `const ROWS: u32 = ${shape.rows}u;\nconst TILE: u32 = ${shape.tile}u;\n`;
  const source = prelude + common + own;
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
