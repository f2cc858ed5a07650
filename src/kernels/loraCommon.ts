// What the LoRA binding modules (lora.ts, loraGroup.ts) share from shaders/loraCommon.wgsl: its tile sizes, and the dropout seed a kernel completes per pass.
import type { Gpu } from '../gpu';
import { DROPOUT_KEY_OFFSET, dropoutKey, type DropoutSpec } from './reference/lora';

/** Each must match the constant of the same name in shaders/loraCommon.wgsl. */
export const LORA_TILES = {
  /** Columns of u (or of a weight gradient) per workgroup in the skinny kernels. */
  RC: 16,
  /** Rows per workgroup of the skinny products (lora_down, group_down). */
  DOWN_ROWS: 4,
  /** Columns per workgroup of the weight gradients. */
  GW_COLS: 32,
  /** Columns k per workgroup of the low-rank input gradient. */
  DX_COLS: 64,
  /** Rows per workgroup of the low-rank input gradient: DX_LANES * DX_ROWS. */
  DX_ROWS_PER_GROUP: 16,
  /** Columns per workgroup of the tiled products. */
  LIN_BN: 64,
} as const;

/**
 * A mask seed the GPU completes per pass: (seed + multiplier * S) mod 2^32, where S is u32 word 1
 * of `values` (16 bytes, UNIFORM usage) when the pass runs. A caller writes S with
 * queue.writeBuffer before each pass, so a recorded pass replays with new masks.
 */
export interface PassSeed {
  values: GPUBuffer;
  multiplier: number;
}

/** A LoRA dropout mask: its seed (with `pass`, the part fixed for the pass) and drop probability. */
export interface LoraDropout extends DropoutSpec {
  pass?: PassSeed;
}

/** The dropout fields of a kernel's parameters: seed = add + mul * S, so add holds the key offset too. */
export interface DropoutTerms {
  on: number;
  mul: number;
  add: number;
  threshold: number;
  invKeep: number;
}

export function dropoutTerms(d: LoraDropout | null | undefined): DropoutTerms {
  if (!d) return { on: 0, mul: 0, add: 0, threshold: 0, invKeep: 1 };
  const { threshold, invKeep } = dropoutKey(d); // validates seed and p
  const mul = d.pass?.multiplier ?? 0;
  if (!Number.isInteger(mul)) throw new Error(`dropout seed multiplier must be an integer, got ${mul}`);
  return { on: 1, mul: mul >>> 0, add: (d.seed + DROPOUT_KEY_OFFSET) >>> 0, threshold, invKeep };
}

const noPassValues = new WeakMap<Gpu, GPUBuffer>();

/**
 * What a masking kernel binds as its pass values: the pass seed's buffer, or (fixed seeds, no
 * dropout) 16 zero bytes of this device's, which those kernels read and multiply by 0.
 */
export function passValues(gpu: Gpu, pass: PassSeed | undefined): GPUBuffer {
  if (pass) return pass.values;
  let zeros = noPassValues.get(gpu);
  if (!zeros) noPassValues.set(gpu, (zeros = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM, label: 'no-pass-values' })));
  return zeros;
}
