import type { BufferBinding, Gpu } from '../gpu';
import { CE_STATE_STRIDE } from '../kernels/crossentropy';
import { groupRegion } from '../kernels/loraGroup';

import type { ModelConfig } from './config';
import { LORA_DU_REGIONS, SHARED_INPUT_GROUPS, type LinearRole } from './layout';
import type { TokenBatch } from './trainingPass';

/** A view of part of a buffer, as the group kernels need it: the whole buffer and element offsets. */
export type BufferView = { buffer: GPUBuffer; offset: number; size: number };

/**
 * One buffer holding tensors of `sizes` floats, each starting at a multiple of 64 floats (256
 * bytes, so each view binds alone), as views in order.
 */
function regions(f: (n: number, label: string) => GPUBuffer, sizes: readonly number[], label: string): BufferView[] {
  const starts: number[] = [];
  let at = 0;
  for (const n of sizes) {
    starts.push(at);
    at += Math.ceil(Math.max(1, n) / 64) * 64;
  }
  const buffer = f(at, label);
  return sizes.map((n, i) => ({ buffer, offset: starts[i]! * 4, size: Math.max(1, n) * 4 }));
}

const pair = (v: BufferView[]): [BufferView, BufferView] => [v[0]!, v[1]!];
const triple = (v: BufferView[]): [BufferView, BufferView, BufferView] => [v[0]!, v[1]!, v[2]!];

/**
 * Scratch buffers for one batch shape, allocated once and reused by every step of that shape:
 * allocating inside a recording could hand a buffer that recorded kernels still use to
 * another op, so nothing is released until the workspace is.
 */
export class Workspace {
  readonly buffers: GPUBuffer[] = [];
  readonly N: number;
  readonly ids: GPUBuffer;
  readonly targets: GPUBuffer;
  readonly mask: GPUBuffer;
  /** Residual stream entering each layer, and after the last one: [layers + 1][N, C]. */
  readonly xs: GPUBuffer[];
  readonly statsF: GPUBuffer;
  /** GPT-2's c_attn output, q|k|v side by side per row: [N, 3C]. */
  readonly qkv: GPUBuffer;
  readonly tmpC: GPUBuffer;
  readonly xout: GPUBuffer;
  readonly hF: GPUBuffer;
  readonly logits: GPUBuffer;
  readonly ceState: GPUBuffer;
  readonly rowLoss: GPUBuffer;
  readonly rowCorrect: GPUBuffer;
  readonly totals: GPUBuffer;
  // Backward.
  readonly dres: GPUBuffer;
  readonly dh: GPUBuffer;
  readonly dAct: GPUBuffer;
  /** dGate and dUp, dq, dk and dv: regions of one buffer each (see SHARED_INPUT_GROUPS). */
  readonly dGate: BufferBinding;
  readonly dUp: BufferBinding;
  readonly dAttn: GPUBuffer;
  readonly dq: BufferBinding;
  readonly dk: BufferBinding;
  readonly dv: BufferBinding;
  /** dL/d(c_attn output), GPT-2: [N, 3C]. */
  readonly dqkv: GPUBuffer;
  readonly delta: GPUBuffer;
  /**
   * dL/du of every adapted linear layer of a layer, each in its own region (`groupRegion(N, r)`
   * apart, at `ROLE_SEED_INDEX`): a layer's weight gradients may be taken after all of them are made.
   */
  readonly du: GPUBuffer;
  /** N ones: bias gradients are column sums, onesᵀ dy. */
  readonly ones: GPUBuffer;
  /** The embedding-gradient index of the batch (full-parameter training). */
  readonly embedIndex: GPUBuffer;
  /**
   * What a layer's backward reads from its forward: one set per kept layer, and one set shared by
   * the layers recomputed just before their backward.
   */
  readonly saved: LayerActivations[];
  /** Layers 0 .. keptLayers-1 keep their activations from the forward pass; the rest are recomputed. */
  readonly keptLayers: number;
  /**
   * With kept logits, vocabulary chunk i < chunks - 1 writes its logits here (the last chunk uses
   * `logits`), so the backward finds every chunk's from the forward pass; empty when not kept.
   */
  readonly keptLogits: GPUBuffer[];
  private readonly vocabSize: number;

  constructor(
    private readonly gpu: Gpu,
    cfg: ModelConfig,
    readonly B: number,
    readonly T: number,
    readonly vocabChunk: number,
    loraRank: number,
    loraRoles: readonly LinearRole[],
    withBackward: boolean,
    keptLayers = 0,
    keptLogitChunks = 0,
  ) {
    const N = (this.N = B * T);
    this.vocabSize = cfg.vocabSize;
    const { hidden: C, intermediate: I, heads: H, kvHeads: Hkv, headDim: D, layers: L } = cfg;
    const f = (n: number, label: string) => {
      const b = gpu.createBuffer(Math.max(1, n) * 4, label);
      this.buffers.push(b);
      return b;
    };
    this.ids = f(N, 'ids');
    this.targets = f(N, 'targets');
    this.mask = f(N, 'mask');
    this.xs = Array.from({ length: L + 1 }, (_, i) => f(N * C, `x${i}`));
    this.statsF = f(N * 2, 'statsF');
    this.qkv = cfg.family === 'gpt2' ? f(N * 3 * C, 'qkv') : f(1, 'qkv-unused');
    this.tmpC = f(N * C, 'tmpC');
    this.xout = f(N * C, 'xout');
    this.hF = f(N * C, 'hF');
    this.logits = f(N * vocabChunk, 'logits');
    this.ceState = f(N * CE_STATE_STRIDE, 'ceState');
    this.rowLoss = f(N, 'rowLoss');
    this.rowCorrect = f(N, 'rowCorrect');
    this.totals = f(4, 'totals');
    const g = withBackward ? f : (_n: number, label: string) => f(1, label);
    this.dres = g(N * C, 'dres');
    this.dh = g(N * C, 'dh');
    this.dAct = g(N * I, 'dAct');
    const b = withBackward ? 1 : 0;
    [this.dGate, this.dUp] = pair(regions(f, [b * N * I, b * (cfg.family === 'llama' ? N * I : 1)], 'dGate|dUp'));
    this.dAttn = g(N * H * D, 'dAttn');
    [this.dq, this.dk, this.dv] = triple(regions(f, [b * N * H * D, b * N * Hkv * D, b * N * Hkv * D], 'dq|dk|dv'));
    this.dqkv = cfg.family === 'gpt2' ? g(N * 3 * C, 'dqkv') : g(1, 'dqkv-unused');
    this.delta = g(B * H * T, 'delta');
    this.du = g(LORA_DU_REGIONS * groupRegion(N, Math.max(loraRank, 1)), 'du');
    this.ones = f(N, 'ones');
    gpu.write(this.ones, new Float32Array(N).fill(1));
    this.embedIndex = g(3 * N + 1, 'embed-grad-index');
    this.keptLayers = withBackward ? Math.min(L, Math.max(0, keptLayers)) : 0;
    const sets = this.keptLayers === L ? L : this.keptLayers + 1;
    this.saved = Array.from({ length: sets }, (_, l) => new LayerActivations(f, cfg, B, T, loraRank, loraRoles, l));
    this.keptLogits = Array.from({ length: withBackward ? Math.max(0, keptLogitChunks - 1) : 0 }, (_, i) => f(N * vocabChunk, `logits.${i}`));
  }

  /** Checks a batch of this shape against the vocabulary and writes its tokens, targets and mask. */
  upload(batch: TokenBatch): void {
    const N = this.N;
    if (batch.B * batch.T !== N || batch.tokens.length !== N || batch.targets.length !== N || batch.mask.length !== N) {
      throw new Error(`batch arrays must hold B*T = ${N} entries`);
    }
    for (const id of batch.tokens) {
      if (id >= this.vocabSize) throw new Error(`token id ${id} is outside the vocabulary (${this.vocabSize})`);
    }
    this.gpu.write(this.ids, batch.tokens);
    // Masked rows may carry any target; give them 0 so the kernels never index past the vocabulary.
    const targets = batch.targets.map((t, i) => (batch.mask[i]! !== 0 ? t : 0));
    for (let i = 0; i < N; i++) {
      if (batch.mask[i] !== 0 && targets[i]! >= this.vocabSize) throw new Error(`target ${targets[i]} is outside the vocabulary`);
    }
    this.gpu.write(this.targets, targets);
    this.gpu.write(this.mask, batch.mask);
  }

  /** The logits buffer of vocabulary chunk `i` (of the head's chunks, in order). */
  logitsOf(i: number): GPUBuffer {
    return this.keptLogits[i] ?? this.logits;
  }

  /** Whether chunk `i` of `chunks` still holds its forward logits when the backward reaches it. */
  keepsLogits(i: number, chunks: number): boolean {
    return i === chunks - 1 || i < this.keptLogits.length;
  }

  /** Whether layer l's activations stay from the forward pass to its backward. */
  keeps(l: number): boolean {
    return l < this.keptLayers;
  }

  /** The activations layer `l` writes in its forward and reads in its backward. */
  activations(l: number): LayerActivations {
    return this.saved[Math.min(l, this.saved.length - 1)]!;
  }

  bytes(): number {
    return this.buffers.reduce((s, b) => s + b.size, 0);
  }

  destroy(): void {
    for (const b of this.buffers) this.gpu.release(b);
    this.buffers.length = 0;
  }
}


/** The internals of one layer's forward that its backward needs. */
export class LayerActivations {
  /** norm1(x) and norm2(xmid): the inputs of the attention and MLP linear layers, regions of one buffer. */
  readonly h1: BufferView;
  readonly h2: BufferView;
  readonly stats1: GPUBuffer;
  readonly stats2: GPUBuffer;
  /** Queries and keys after RoPE, values: regions of one buffer. */
  readonly q: BufferBinding;
  readonly k: BufferBinding;
  readonly v: BufferBinding;
  readonly attn: GPUBuffer;
  readonly lse: GPUBuffer;
  /** The residual stream after attention. */
  readonly xmid: GPUBuffer;
  /** MLP input projections (GPT-2: c_fc output in `gate`) and the activation's output. */
  readonly gate: BufferBinding;
  readonly up: BufferBinding;
  readonly act: GPUBuffer;
  /**
   * LoRA u = x Aᵀ per adapted role of a layer, [N, r]. By role, not by module name: GPT-2 has
   * two c_proj (attention output and MLP output). All are regions of one buffer, `groupRegion(N,
   * r)` apart, the members of a fully adapted group (SHARED_INPUT_GROUPS) next to each other.
   */
  readonly u = new Map<LinearRole, BufferView>();

  constructor(f: (n: number, label: string) => GPUBuffer, cfg: ModelConfig, B: number, T: number, loraRank: number, loraRoles: readonly LinearRole[], layer: number) {
    const N = B * T;
    const { hidden: C, intermediate: I, heads: H, kvHeads: Hkv, headDim: D } = cfg;
    const name = (what: string) => `${what}.${layer}`;
    [this.h1, this.h2] = pair(regions(f, [N * C, N * C], name('h1|h2')));
    this.stats1 = f(N * 2, name('stats1'));
    this.stats2 = f(N * 2, name('stats2'));
    [this.q, this.k, this.v] = triple(regions(f, [N * H * D, N * Hkv * D, N * Hkv * D], name('q|k|v')));
    this.attn = f(N * H * D, name('attn'));
    this.lse = f(B * H * T, name('lse'));
    this.xmid = f(N * C, name('xmid'));
    [this.gate, this.up] = pair(regions(f, [N * I, cfg.family === 'llama' ? N * I : 1], name('gate|up')));
    this.act = f(N * I, name('act'));
    const order = loraUOrder(loraRoles);
    if (order.length) {
      const views = regions(f, order.map(() => N * loraRank), name(`u.${order.join('|')}`));
      for (const [i, role] of order.entries()) this.u.set(role, views[i]!);
    }
  }
}

/** The adapted roles in the order of their u regions: fully adapted groups' members next to each other, then the rest. */
export function loraUOrder(roles: readonly LinearRole[]): LinearRole[] {
  const grouped = SHARED_INPUT_GROUPS.filter((m) => m.every((role) => roles.includes(role))).flat();
  return [...grouped, ...roles.filter((r) => !grouped.includes(r))];
}
