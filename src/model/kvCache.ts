import { ReplayCache, type Gpu, type Recorder } from '../gpu';
import { attentionDecodeWorkspaceBytes } from '../kernels/attention';

import type { ModelConfig } from './config';

/**
 * What a generation step records after the logits (sampling). `key` names all that it records:
 * a step recorded with it is replayed for later tokens, so the buffers it binds must live as
 * long as the cache, and its per-token inputs live in buffers written before each step.
 */
export interface StepTail {
  key: string;
  record(rec: Recorder): void;
}

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
  /**
   * u32 [B]: the position of the token a decode step feeds (every entry `length`), written before
   * each step, so the step's kernels (embedding, RoPE, KV append, attention) read it at run time
   * and one recorded step serves every token.
   */
  readonly positions: GPUBuffer;
  /** Recorded decode steps (they bind this cache's buffers, so they go with it). */
  private readonly replays = new ReplayCache(2);

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
    this.positions = gpu.createBuffer(B * 4, 'decode-positions');
  }

  /**
   * Starts a decode step at the current length: writes `positions`, then replays the step
   * recorded for the same `objects` (by identity: the workspace, adapter and buffers it binds) and `plan`
   * (returns null), or returns the recorder to record it with (hand it to endStep() after its
   * submit). Like training's replays: record once, then encode from the recorded list.
   */
  beginStep(objects: readonly (object | null)[], plan: string): Recorder | null {
    if (this.length >= this.capacity) throw new Error(`the KV cache holds ${this.capacity} positions; ${this.length + 1} needed`);
    this.gpu.write(this.positions, new Uint32Array(this.B).fill(this.length));
    return this.replays.begin(this.gpu, `${objects.map((o) => (o ? this.replays.idOf(o) : 0)).join('|')}|${plan}`, 'decode');
  }

  /** Keeps what `rec` (from beginStep(), submitted) recorded for the next tokens. */
  endStep(rec: Recorder): void {
    this.replays.end(rec);
  }

  bytes(): number {
    return [...this.k, ...this.v, this.scratch, this.lastHidden, this.positions].reduce((s, b) => s + b.size, 0);
  }

  destroy(): void {
    this.replays.clear();
    for (const b of [...this.k, ...this.v, this.scratch, this.lastHidden, this.positions]) this.gpu.release(b);
    this.k.length = 0;
    this.v.length = 0;
  }
}

/** A kernel's position arguments: a fixed first position, or the cache's positions buffer (what a replayed decode step reads). */
export function positionArgs(position: number | GPUBuffer): { positionStart: number } | { positions: GPUBuffer } {
  return typeof position === 'number' ? { positionStart: position } : { positions: position };
}
