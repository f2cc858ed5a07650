import type { Gpu } from '../gpu';
import { attentionDecodeWorkspaceBytes } from '../kernels/attention';

import type { ModelConfig } from './config';

/** Keys and values of every layer for B sequences, up to `capacity` positions (generation). */
export class KvCache {
  /** Positions already in the cache (the same for every sequence). */
  length = 0;
  readonly k: GPUBuffer[] = [];
  readonly v: GPUBuffer[] = [];
  /** Split-K scratch of the decode kernel. */
  readonly scratch: GPUBuffer;
  /** The last position's hidden state of each sequence, [B, hidden]. */
  readonly lastHidden: GPUBuffer;

  constructor(
    private readonly gpu: Gpu,
    readonly config: ModelConfig,
    readonly B: number,
    readonly capacity: number,
  ) {
    if (capacity > config.maxPositions) {
      throw new Error(`prompt plus new tokens (${capacity}) exceed the model's ${config.maxPositions} positions`);
    }
    const { kvHeads: Hkv, headDim: D, heads: Hq } = config;
    for (let l = 0; l < config.layers; l++) {
      this.k.push(gpu.createBuffer(B * capacity * Hkv * D * 4, `kcache${l}`));
      this.v.push(gpu.createBuffer(B * capacity * Hkv * D * 4, `vcache${l}`));
    }
    this.scratch = gpu.createBuffer(attentionDecodeWorkspaceBytes({ B, Hq, D, capacity }), 'decode-scratch');
    this.lastHidden = gpu.createBuffer(B * config.hidden * 4, 'last-hidden');
  }

  bytes(): number {
    return [...this.k, ...this.v, this.scratch, this.lastHidden].reduce((s, b) => s + b.size, 0);
  }

  destroy(): void {
    for (const b of [...this.k, ...this.v, this.scratch, this.lastHidden]) this.gpu.release(b);
    this.k.length = 0;
    this.v.length = 0;
  }
}
