import type { Gpu } from '../gpu';
import { CE_STATE_STRIDE } from '../kernels/crossentropy';

import type { ModelConfig } from './config';
import type { LinearRole } from './layout';

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
  readonly h1: GPUBuffer;
  readonly h2: GPUBuffer;
  readonly stats1: GPUBuffer;
  readonly stats2: GPUBuffer;
  readonly statsF: GPUBuffer;
  /** GPT-2's c_attn output, q|k|v side by side per row: [N, 3C]. */
  readonly qkv: GPUBuffer;
  readonly q: GPUBuffer;
  readonly k: GPUBuffer;
  readonly v: GPUBuffer;
  readonly attn: GPUBuffer;
  readonly lse: GPUBuffer;
  readonly xmid: GPUBuffer;
  readonly tmpC: GPUBuffer;
  readonly xout: GPUBuffer;
  readonly gate: GPUBuffer;
  readonly up: GPUBuffer;
  readonly act: GPUBuffer;
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
  readonly dGate: GPUBuffer;
  readonly dUp: GPUBuffer;
  readonly dAttn: GPUBuffer;
  readonly dq: GPUBuffer;
  readonly dk: GPUBuffer;
  readonly dv: GPUBuffer;
  /** dL/d(c_attn output), GPT-2: [N, 3C]. */
  readonly dqkv: GPUBuffer;
  readonly delta: GPUBuffer;
  readonly du: GPUBuffer;
  /** N ones: bias gradients are column sums, onesᵀ dy. */
  readonly ones: GPUBuffer;
  /** The embedding-gradient index of the batch (full-parameter training). */
  readonly embedIndex: GPUBuffer;
  /**
   * LoRA u = x Aᵀ per adapted role of a layer, [N, r], saved for the backward pass. By role, not
   * by module name: GPT-2 has two c_proj (attention output and MLP output).
   */
  readonly u = new Map<LinearRole, GPUBuffer>();

  constructor(
    private readonly gpu: Gpu,
    cfg: ModelConfig,
    readonly B: number,
    readonly T: number,
    readonly vocabChunk: number,
    loraRank: number,
    loraRoles: readonly LinearRole[],
    withBackward: boolean,
  ) {
    const N = (this.N = B * T);
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
    this.h1 = f(N * C, 'h1');
    this.h2 = f(N * C, 'h2');
    this.stats1 = f(N * 2, 'stats1');
    this.stats2 = f(N * 2, 'stats2');
    this.statsF = f(N * 2, 'statsF');
    this.qkv = cfg.family === 'gpt2' ? f(N * 3 * C, 'qkv') : f(1, 'qkv-unused');
    this.q = f(N * H * D, 'q');
    this.k = f(N * Hkv * D, 'k');
    this.v = f(N * Hkv * D, 'v');
    this.attn = f(N * H * D, 'attn');
    this.lse = f(B * H * T, 'lse');
    this.xmid = f(N * C, 'xmid');
    this.tmpC = f(N * C, 'tmpC');
    this.xout = f(N * C, 'xout');
    this.gate = f(N * I, 'gate');
    this.up = f(cfg.family === 'llama' ? N * I : 1, 'up');
    this.act = f(N * I, 'act');
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
    this.dGate = g(N * I, 'dGate');
    this.dUp = g(cfg.family === 'llama' ? N * I : 1, 'dUp');
    this.dAttn = g(N * H * D, 'dAttn');
    this.dq = g(N * H * D, 'dq');
    this.dk = g(N * Hkv * D, 'dk');
    this.dv = g(N * Hkv * D, 'dv');
    this.dqkv = cfg.family === 'gpt2' ? g(N * 3 * C, 'dqkv') : g(1, 'dqkv-unused');
    this.delta = g(B * H * T, 'delta');
    this.du = g(N * Math.max(loraRank, 1), 'du');
    this.ones = f(N, 'ones');
    gpu.write(this.ones, new Float32Array(N).fill(1));
    this.embedIndex = g(3 * N + 1, 'embed-grad-index');
    for (const role of loraRoles) this.u.set(role, f(N * loraRank, `u.${role}`));
  }

  bytes(): number {
    return this.buffers.reduce((s, b) => s + b.size, 0);
  }

  destroy(): void {
    for (const b of this.buffers) this.gpu.release(b);
    this.buffers.length = 0;
  }
}

