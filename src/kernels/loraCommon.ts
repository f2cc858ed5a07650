// Tile sizes of shaders/loraCommon.wgsl, which the LoRA binding modules (lora.ts, loraGroup.ts) size their dispatch grids by.

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
