/**
 * The decoder-only transformer on WebGPU, for both families (Llama/Qwen2/Mistral/SmolLM and
 * GPT-2), forward and backward, readable top to bottom as nanoGPT is:
 *
 *   x = embed(ids) [+ wpe]
 *   per layer:  h = norm1(x); q,k,v = attnIn(h) [+ rope]; a = attention(q,k,v)
 *               x = x + attnOut(a); h = norm2(x); m = act(mlpIn(h)); x = x + mlpOut(m)
 *   logits = normF(x) headᵀ      (in vocabulary chunks: full [tokens, vocab] logits never exist)
 *
 * Only LoRA parameters are trained. The backward pass keeps one activation per layer (the
 * residual stream entering it) and recomputes the layer's internals just before its backward,
 * so memory grows with layers x tokens x hidden, not with every intermediate.
 */
import type { Gpu, Recorder } from '../gpu';
import { activation, activationBackward, swiglu, swigluBackward } from '../kernels/activation';
import { appendKv, attentionBackward, attentionDecode, attentionDecodeWorkspaceBytes, attentionForward } from '../kernels/attention';
import { crossEntropyChunkGrad, crossEntropyChunkStats, crossEntropyFinalize, CE_STATE_STRIDE } from '../kernels/crossentropy';
import { axpby, copyColumns } from '../kernels/elementwise';
import { embedding, embeddingBackward, embeddingGradIndex, packEmbeddingGradIndex } from '../kernels/embedding';
import { loraBackward, loraDown, loraLinear } from '../kernels/lora';
import { isCpuAdapter, matmul } from '../kernels/matmul';
import { layerNorm, layerNormBackward, rmsNorm, rmsNormBackward } from '../kernels/norm';
import { rope, ropeBackward } from '../kernels/rope';

import { ropeInverseFrequencies, type ModelConfig } from './config';
import type { BaseGradients } from './fullParameters';
import type { LoraAdapter, LoraModule } from './lora';
import type { LinearWeight, ModelWeights, NormWeight } from './weights';

/** A batch of B sequences of T tokens, row-major, with next-token targets and a 0/1 loss mask. */
export interface TokenBatch {
  B: number;
  T: number;
  tokens: Uint32Array;
  /** The token each position must predict; any value where mask is 0. */
  targets: Uint32Array;
  mask: Float32Array;
}

export interface LossTotals {
  /** Sum of the per-token losses over trained tokens. */
  lossSum: number;
  /** Number of trained tokens (sum of the mask). */
  tokens: number;
  /** Trained tokens whose argmax prediction is the target. */
  correct: number;
}

/** Largest number of vocabulary columns per logits chunk. */
const VOCAB_CHUNK = 8192;
const MAX_WORKSPACES = 3;

/**
 * Scratch buffers for one batch shape, allocated once and reused by every step of that shape:
 * allocating inside a recording could hand a buffer that recorded kernels still use to
 * another op, so nothing is released until the workspace is.
 */
class Workspace {
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
  readonly attnIn: GPUBuffer;
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
  readonly dAttnIn: GPUBuffer;
  readonly delta: GPUBuffer;
  readonly du: GPUBuffer;
  /** N ones: bias gradients are column sums, onesᵀ dy. */
  readonly ones: GPUBuffer;
  /** The embedding-gradient index of the batch (full-parameter training). */
  readonly embedIndex: GPUBuffer;
  /**
   * LoRA u = x Aᵀ per module slot of a layer (0..6: q, k, v, o, gate, up, down; GPT-2 uses
   * 0, 3, 4, 6), [N, r], saved for the backward pass. By slot, not by name: GPT-2 has two c_proj.
   */
  readonly u = new Map<number, GPUBuffer>();

  constructor(
    private readonly gpu: Gpu,
    cfg: ModelConfig,
    readonly B: number,
    readonly T: number,
    readonly vocabChunk: number,
    loraRank: number,
    loraSlots: readonly number[],
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
    this.attnIn = cfg.family === 'gpt2' ? f(N * 3 * C, 'qkv') : f(1, 'qkv-unused');
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
    this.dAttnIn = cfg.family === 'gpt2' ? g(N * 3 * C, 'dqkv') : g(1, 'dqkv-unused');
    this.delta = g(B * H * T, 'delta');
    this.du = g(N * Math.max(loraRank, 1), 'du');
    this.ones = f(N, 'ones');
    gpu.write(this.ones, new Float32Array(N).fill(1));
    this.embedIndex = g(3 * N + 1, 'embed-grad-index');
    for (const slot of loraSlots) this.u.set(slot, f(N * loraRank, `u.${slot}`));
  }

  bytes(): number {
    return this.buffers.reduce((s, b) => s + b.size, 0);
  }

  destroy(): void {
    for (const b of this.buffers) this.gpu.release(b);
    this.buffers.length = 0;
  }
}

/** Options of one training forward/backward. */
export interface StepOptions {
  /** Seed of this micro-batch's LoRA dropout masks (same seed, same masks). */
  dropoutSeed?: number;
  /** 1 / trained tokens of the whole optimizer step (micro-batches share it). */
  gradScale: number;
  /** Add into the LoRA gradients instead of overwriting them (gradient accumulation). */
  accumulate: boolean;
  /** Also compute gradients of every base weight (pretraining); LoRA fine-tuning leaves it out. */
  full?: BaseGradients;
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

/**
 * How an adapted linear layer computes y = x Wᵀ + bias + s·(x_d Aᵀ) Bᵀ: 'fused', one tiled kernel
 * (`loraLinear`) that adds the low-rank product into the base product's accumulators, or
 * 'unfused', the plain base `matmul`, then s·u Bᵀ added onto y by a second `matmul` (beta = 1).
 * Both first compute u = x_d Aᵀ (`loraDown`; unfused uses `matmul` when there is no dropout) and
 * give the same result up to f32 rounding order.
 */
export type LoraLinearPath = 'fused' | 'unfused';

/**
 * The LoRA linear path this device gets unless told otherwise. CPU adapters (lavapipe,
 * SwiftShader) run shaders as CPU threads, where the fused kernel's workgroup-memory tiles and
 * barriers are slow and matmul's register-blocked kernel is fast: on lavapipe the fused layer was
 * ~3.4x slower than unfused at SmolLM2's gate_proj shape (bench kernels suite, 2026-11-25; see
 * bench/NOTES.md). Other adapters keep the fused kernel, which writes y once instead of twice,
 * until a real GPU measurement says otherwise.
 */
export function defaultLoraLinearPath(gpu: Gpu): LoraLinearPath {
  return isCpuAdapter(gpu) ? 'unfused' : 'fused';
}

export interface CausalLMOptions {
  /** Overrides `defaultLoraLinearPath` (tests and benchmarks run both paths). */
  loraLinearPath?: LoraLinearPath;
}

export class CausalLM {
  readonly invFreq: GPUBuffer | null;
  /** Read when a pass is recorded, so it may be switched between passes (tests, benchmarks). */
  loraLinearPath: LoraLinearPath;
  /** Workspaces by batch shape, most recently used last (training, evaluation and decoding alternate). */
  private readonly workspaces = new Map<string, Workspace>();

  constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
    options: CausalLMOptions = {},
  ) {
    this.loraLinearPath = options.loraLinearPath ?? defaultLoraLinearPath(gpu);
    this.invFreq = config.positionEncoding === 'rope' ? gpu.upload(Float32Array.from(ropeInverseFrequencies(config)), 'inv_freq') : null;
  }

  destroy(): void {
    for (const ws of this.workspaces.values()) ws.destroy();
    this.workspaces.clear();
    if (this.invFreq) this.gpu.release(this.invFreq);
    this.weights.destroy();
  }

  /** GPU bytes of the scratch buffers held for recent batch shapes. */
  workspaceBytes(): number {
    let n = 0;
    for (const ws of this.workspaces.values()) n += ws.bytes();
    return n;
  }

  /** Frees the scratch buffers (they are made again on the next batch). */
  releaseWorkspaces(): void {
    for (const ws of this.workspaces.values()) ws.destroy();
    this.workspaces.clear();
  }

  /** Position of a linear layer within its block: 0..6 = q, k, v, o, gate, up, down (GPT-2: 0, 3, 4, 6). */
  private slotOf(lin: LinearWeight): number {
    for (const layer of this.weights.layers) {
      const i = layer.attnIn.indexOf(lin);
      if (i >= 0) return i;
      if (layer.attnOut === lin) return 3;
      const j = layer.mlpIn.indexOf(lin);
      if (j >= 0) return 4 + j;
      if (layer.mlpOut === lin) return 6;
    }
    throw new Error(`${lin.name} is not a layer of this model`);
  }

  private ws(B: number, T: number, adapter: LoraAdapter | null, backward: boolean): Workspace {
    if (T > this.config.maxPositions) {
      throw new Error(`sequence length ${T} exceeds the model's maximum of ${this.config.maxPositions} positions`);
    }
    const r = adapter?.config.r ?? 0;
    const slots = adapter ? [...new Set([...adapter.modules.keys()].map((l) => this.slotOf(l)))].sort() : [];
    const key = `${B}x${T}:${r}:${slots.join(',')}:${backward}`;
    // A backward-capable workspace of the same shape also serves forward-only passes.
    const keys = backward ? [key] : [key, key.replace(/false$/, 'true')];
    for (const k of keys) {
      const hit = this.workspaces.get(k);
      if (!hit) continue;
      this.workspaces.delete(k); // re-insert: most recently used last
      this.workspaces.set(k, hit);
      return hit;
    }
    while (this.workspaces.size >= MAX_WORKSPACES) {
      const oldest = this.workspaces.keys().next().value!;
      this.workspaces.get(oldest)!.destroy();
      this.workspaces.delete(oldest);
    }
    const vocabChunk = Math.min(this.config.vocabSize, VOCAB_CHUNK);
    const ws = new Workspace(this.gpu, this.config, B, T, vocabChunk, r, slots, backward);
    this.workspaces.set(key, ws);
    return ws;
  }

  private upload(ws: Workspace, batch: TokenBatch): void {
    const N = batch.B * batch.T;
    if (batch.tokens.length !== N || batch.targets.length !== N || batch.mask.length !== N) {
      throw new Error(`batch arrays must hold B*T = ${N} entries`);
    }
    for (const id of batch.tokens) {
      if (id >= this.config.vocabSize) throw new Error(`token id ${id} is outside the vocabulary (${this.config.vocabSize})`);
    }
    this.gpu.write(ws.ids, batch.tokens);
    // Masked rows may carry any target; give them 0 so the kernels never index past the vocabulary.
    const targets = batch.targets.map((t, i) => (batch.mask[i]! !== 0 ? t : 0));
    for (let i = 0; i < N; i++) {
      if (batch.mask[i] !== 0 && targets[i]! >= this.config.vocabSize) throw new Error(`target ${targets[i]} is outside the vocabulary`);
    }
    this.gpu.write(ws.targets, targets);
    this.gpu.write(ws.mask, batch.mask);
  }

  // ------------------------------------------------------------------ building blocks

  private norm(rec: Recorder, ws: Workspace, w: NormWeight, x: GPUBuffer, out: GPUBuffer, stats: GPUBuffer, residual?: { add: GPUBuffer; sum: GPUBuffer }): void {
    const { N } = ws;
    const cols = this.config.hidden;
    const eps = this.config.normEps;
    const res = residual ? { residual: residual.add, sum: residual.sum } : {};
    if (this.config.normType === 'rms') rmsNorm(this.gpu, rec, { x, weight: w.w, out, rstd: stats, rows: N, cols, eps, ...res });
    else layerNorm(this.gpu, rec, { x, weight: w.w, bias: w.b!, out, stats, rows: N, cols, eps, ...res });
  }

  private normBackward(rec: Recorder, ws: Workspace, w: NormWeight, x: GPUBuffer, stats: GPUBuffer, dOut: GPUBuffer, dx: GPUBuffer, accumulate: boolean, full?: BaseGradients): void {
    const rows = ws.N;
    const cols = this.config.hidden;
    const dWeight = full ? { dWeight: full.grad(w.w), accumulateWeight: true } : {};
    if (this.config.normType === 'rms') rmsNormBackward(this.gpu, rec, { x, weight: w.w, rstd: stats, dOut, dx, rows, cols, accumulate, ...dWeight });
    else layerNormBackward(this.gpu, rec, { x, weight: w.w, stats, dOut, dx, rows, cols, accumulate });
  }

  private dropout(adapter: LoraAdapter, seed: number | undefined, layer: number, slot: number) {
    if (!(adapter.config.dropout > 0) || seed === undefined) return null;
    // One mask per (micro-batch, layer, module): recomputation regenerates the same one.
    return { seed: (seed * 7919 + layer * 31 + slot) >>> 0, p: adapter.config.dropout };
  }

  /** y = x Wᵀ + bias (+ s·(x_d Aᵀ) Bᵀ when the adapter adapts this layer) for `rows` rows. */
  linear(rec: Recorder, lin: LinearWeight, x: GPUBuffer, y: GPUBuffer, rows: number, lora: LoraModule | undefined, u: GPUBuffer | undefined, scale: number, dropout: { seed: number; p: number } | null): void {
    if (lora && u) {
      if (this.loraLinearPath === 'fused') {
        loraDown(this.gpu, rec, { x, a: lora.a, u, T: rows, K: lin.inFeatures, r: lora.r, dropout });
        loraLinear(this.gpu, rec, { x, w: lin.w, wF16: lin.f16, bias: lin.bias, u, b: lora.b, y, T: rows, K: lin.inFeatures, N: lin.outFeatures, r: lora.r, scale });
        return;
      }
      // u = x_d Aᵀ: loraDown applies dropout inline; without dropout the register-blocked matmul
      // is 2.5-4x faster than loraDown on lavapipe at r = 16 (bench/NOTES.md).
      if (dropout) loraDown(this.gpu, rec, { x, a: lora.a, u, T: rows, K: lin.inFeatures, r: lora.r, dropout });
      else matmul(this.gpu, rec, { a: x, b: lora.a, c: u, M: rows, N: lora.r, K: lin.inFeatures, transB: true, label: `${lin.kind}.lora_down` });
      this.baseLinear(rec, lin, x, y, rows);
      matmul(this.gpu, rec, { a: u, b: lora.b, c: y, M: rows, N: lin.outFeatures, K: lora.r, transB: true, alpha: scale, beta: 1, label: `${lin.kind}.lora_up` });
      return;
    }
    this.baseLinear(rec, lin, x, y, rows);
  }

  /** y = x Wᵀ + bias. */
  private baseLinear(rec: Recorder, lin: LinearWeight, x: GPUBuffer, y: GPUBuffer, rows: number): void {
    matmul(this.gpu, rec, {
      a: x,
      b: lin.w,
      c: y,
      M: rows,
      N: lin.outFeatures,
      K: lin.inFeatures,
      transB: true,
      bF16: lin.f16,
      ...(lin.bias ? { bias: lin.bias } : {}),
      label: lin.kind,
    });
  }

  /** dx (+)= dy W, and the LoRA gradients of this layer when it is adapted. */
  private linearBackward(rec: Recorder, ws: Workspace, lin: LinearWeight, slot: number, x: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer, accumulateDx: boolean, adapter: LoraAdapter | null, opts: StepOptions, dropout: { seed: number; p: number } | null): void {
    matmul(this.gpu, rec, { a: dy, b: lin.w, c: dx, M: ws.N, N: lin.inFeatures, K: lin.outFeatures, bF16: lin.f16, beta: accumulateDx ? 1 : 0, label: `${lin.kind}.dx` });
    if (opts.full) {
      // dW += dyᵀ x, dbias += onesᵀ dy (the gradients were cleared at the start of the step).
      const gW = opts.full.grad(lin.w);
      matmul(this.gpu, rec, { a: dy, b: x, c: gW, M: lin.outFeatures, N: lin.inFeatures, K: ws.N, transA: true, beta: 1, label: `${lin.kind}.dW` });
      if (lin.bias) matmul(this.gpu, rec, { a: ws.ones, b: dy, c: opts.full.grad(lin.bias), M: 1, N: lin.outFeatures, K: ws.N, beta: 1, label: `${lin.kind}.dbias` });
    }
    const lora = adapter?.modules.get(lin);
    if (!adapter || !lora) return;
    loraBackward(this.gpu, rec, {
      x,
      dy,
      u: ws.u.get(slot)!,
      a: lora.a,
      b: lora.b,
      du: ws.du,
      gradA: lora.gradA,
      gradB: lora.gradB,
      dx,
      T: ws.N,
      K: lin.inFeatures,
      N: lin.outFeatures,
      r: lora.r,
      scale: adapter.scale,
      accumulate: opts.accumulate,
      accumulateDx: true,
      dropout,
    });
  }

  private embed(rec: Recorder, ws: Workspace, positionStart = 0): void {
    const w = this.weights;
    embedding(this.gpu, rec, {
      ids: ws.ids,
      tokens: ws.N,
      cols: this.config.hidden,
      shards: w.embed,
      dtype: w.dtype,
      out: ws.xs[0]!,
      ...(w.positions ? { positionTable: w.positions, positionDtype: 'f32' as const, positionStart, seqLen: ws.T } : {}),
    });
  }

  private attnDims(ws: Workspace) {
    const { heads: Hq, kvHeads: Hkv, headDim: D } = this.config;
    return { B: ws.B, T: ws.T, Hq, Hkv, D };
  }

  private rope(rec: Recorder, ws: Workspace, x: GPUBuffer, heads: number, backward: boolean, positionStart = 0): void {
    const common = { invFreq: this.invFreq!, tokens: ws.N, heads, headDim: this.config.headDim, positionStart, seqLen: ws.T };
    if (backward) ropeBackward(this.gpu, rec, { ...common, dOut: x });
    else rope(this.gpu, rec, { ...common, x });
  }

  /** One layer forward from `xin` to `xout`, leaving its internals in the workspace. */
  private layerForward(rec: Recorder, ws: Workspace, l: number, xin: GPUBuffer, xout: GPUBuffer, adapter: LoraAdapter | null, dropoutSeed: number | undefined, kv?: KvCache): void {
    const pos = kv?.length ?? 0;
    const cfg = this.config;
    const layer = this.weights.layers[l]!;
    const C = cfg.hidden;
    const N = ws.N;
    const lin = (w: LinearWeight, x: GPUBuffer, y: GPUBuffer, slot: number) => {
      const lora = adapter?.modules.get(w);
      this.linear(rec, w, x, y, N, lora, ws.u.get(slot), adapter?.scale ?? 0, adapter && lora ? this.dropout(adapter, dropoutSeed, l, slot) : null);
    };
    this.norm(rec, ws, layer.norm1, xin, ws.h1, ws.stats1);
    if (cfg.family === 'llama') {
      lin(layer.attnIn[0]!, ws.h1, ws.q, 0);
      lin(layer.attnIn[1]!, ws.h1, ws.k, 1);
      lin(layer.attnIn[2]!, ws.h1, ws.v, 2);
      this.rope(rec, ws, ws.q, cfg.heads, false, pos);
      this.rope(rec, ws, ws.k, cfg.kvHeads, false, pos);
    } else {
      lin(layer.attnIn[0]!, ws.h1, ws.attnIn, 0);
      for (const [i, dst] of [ws.q, ws.k, ws.v].entries()) {
        copyColumns(this.gpu, rec, { src: ws.attnIn, dst, rows: N, width: C, srcStride: 3 * C, srcOffset: i * C, dstStride: C, dstOffset: 0 });
      }
    }
    if (!kv) {
      attentionForward(this.gpu, rec, { ...this.attnDims(ws), q: ws.q, k: ws.k, v: ws.v, out: ws.attn, lse: ws.lse });
    } else {
      this.cachedAttention(rec, ws, kv, l);
    }
    lin(layer.attnOut, ws.attn, ws.tmpC, 3);
    // xmid = xin + attention output, normalised into h2 in the same kernel.
    this.norm(rec, ws, layer.norm2, ws.tmpC, ws.h2, ws.stats2, { add: xin, sum: ws.xmid });
    if (cfg.family === 'llama') {
      lin(layer.mlpIn[0]!, ws.h2, ws.gate, 4);
      lin(layer.mlpIn[1]!, ws.h2, ws.up, 5);
      swiglu(this.gpu, rec, { gate: ws.gate, up: ws.up, out: ws.act, rows: N, width: cfg.intermediate });
    } else {
      lin(layer.mlpIn[0]!, ws.h2, ws.gate, 4);
      activation(this.gpu, rec, { kind: actKind(cfg), x: ws.gate, out: ws.act, n: N * cfg.intermediate });
    }
    lin(layer.mlpOut, ws.act, xout, 6);
    axpby(this.gpu, rec, ws.xmid, xout, N * C, 1, 1);
  }

  /**
   * One layer backward: recomputes the layer from its saved input, then turns ws.dres from
   * dL/d(output) into dL/d(input), adding the LoRA gradients on the way.
   */
  private layerBackward(rec: Recorder, ws: Workspace, l: number, adapter: LoraAdapter | null, opts: StepOptions): void {
    const cfg = this.config;
    const layer = this.weights.layers[l]!;
    const C = cfg.hidden;
    const N = ws.N;
    const xin = ws.xs[l]!;
    this.layerForward(rec, ws, l, xin, ws.xout, adapter, opts.dropoutSeed);
    const drop = (w: LinearWeight, slot: number) => (adapter && adapter.modules.has(w) ? this.dropout(adapter, opts.dropoutSeed, l, slot) : null);
    const back = (w: LinearWeight, x: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer, acc: boolean, slot: number) =>
      this.linearBackward(rec, ws, w, slot, x, dy, dx, acc, adapter, opts, drop(w, slot));

    // MLP: xout = xmid + mlpOut(act(mlpIn(h2)))
    back(layer.mlpOut, ws.act, ws.dres, ws.dAct, false, 6);
    if (cfg.family === 'llama') {
      swigluBackward(this.gpu, rec, { gate: ws.gate, up: ws.up, dOut: ws.dAct, dGate: ws.dGate, dUp: ws.dUp, rows: N, width: cfg.intermediate });
      back(layer.mlpIn[0]!, ws.h2, ws.dGate, ws.dh, false, 4);
      back(layer.mlpIn[1]!, ws.h2, ws.dUp, ws.dh, true, 5);
    } else {
      activationBackward(this.gpu, rec, { kind: actKind(cfg), x: ws.gate, dOut: ws.dAct, dx: ws.dGate, n: N * cfg.intermediate });
      back(layer.mlpIn[0]!, ws.h2, ws.dGate, ws.dh, false, 4);
    }
    this.normBackward(rec, ws, layer.norm2, ws.xmid, ws.stats2, ws.dh, ws.dres, true, opts.full);

    // Attention: xmid = xin + attnOut(attention(q, k, v))
    back(layer.attnOut, ws.attn, ws.dres, ws.dAttn, false, 3);
    attentionBackward(this.gpu, rec, {
      ...this.attnDims(ws),
      q: ws.q,
      k: ws.k,
      v: ws.v,
      out: ws.attn,
      lse: ws.lse,
      dout: ws.dAttn,
      dq: ws.dq,
      dk: ws.dk,
      dv: ws.dv,
      delta: ws.delta,
    });
    if (cfg.family === 'llama') {
      this.rope(rec, ws, ws.dq, cfg.heads, true);
      this.rope(rec, ws, ws.dk, cfg.kvHeads, true);
      back(layer.attnIn[0]!, ws.h1, ws.dq, ws.dh, false, 0);
      back(layer.attnIn[1]!, ws.h1, ws.dk, ws.dh, true, 1);
      back(layer.attnIn[2]!, ws.h1, ws.dv, ws.dh, true, 2);
    } else {
      for (const [i, src] of [ws.dq, ws.dk, ws.dv].entries()) {
        copyColumns(this.gpu, rec, { src, dst: ws.dAttnIn, rows: N, width: C, srcStride: C, srcOffset: 0, dstStride: 3 * C, dstOffset: i * C });
      }
      back(layer.attnIn[0]!, ws.h1, ws.dAttnIn, ws.dh, false, 0);
    }
    this.normBackward(rec, ws, layer.norm1, xin, ws.stats1, ws.dh, ws.dres, true, opts.full);
  }

  /** Appends this pass's keys/values to the cache and attends over everything cached so far. */
  private cachedAttention(rec: Recorder, ws: Workspace, kv: KvCache, l: number): void {
    const { heads: Hq, kvHeads: Hkv, headDim: D } = this.config;
    const pos = kv.length;
    appendKv(this.gpu, rec, { kNew: ws.k, vNew: ws.v, kCache: kv.k[l]!, vCache: kv.v[l]!, B: ws.B, rows: ws.T, Hkv, D, capacity: kv.capacity, pos });
    if (ws.T === 1) {
      attentionDecode(this.gpu, rec, { q: ws.q, kCache: kv.k[l]!, vCache: kv.v[l]!, out: ws.attn, workspace: kv.scratch, B: ws.B, Hq, Hkv, D, capacity: kv.capacity, kvLen: pos + 1 });
    } else {
      attentionForward(this.gpu, rec, { ...this.attnDims(ws), q: ws.q, k: kv.k[l]!, v: kv.v[l]!, out: ws.attn, lse: ws.lse, pastLen: pos, kvCapacity: kv.capacity });
    }
  }

  /**
   * Feeds `tokens` [B, T] on top of the cache (a prompt when the cache is empty, one token per
   * sequence when decoding) and records the logits of each sequence's last position into
   * `logitsOut` [B, vocab]. Submits; the cache then holds T more positions.
   */
  forwardCached(tokens: Uint32Array, T: number, kv: KvCache, adapter: LoraAdapter | null, logitsOut: GPUBuffer): void {
    const { B } = kv;
    const cfg = this.config;
    if (tokens.length !== B * T) throw new Error(`forwardCached: ${tokens.length} tokens for ${B} x ${T}`);
    if (kv.length + T > kv.capacity) throw new Error(`the KV cache holds ${kv.capacity} positions; ${kv.length + T} needed`);
    for (const id of tokens) if (id >= cfg.vocabSize) throw new Error(`token id ${id} is outside the vocabulary (${cfg.vocabSize})`);
    const ws = this.ws(B, T, adapter, false);
    this.gpu.write(ws.ids, tokens);
    const rec = this.gpu.recorder(T === 1 ? 'decode' : 'prefill');
    this.embed(rec, ws, kv.length);
    for (let l = 0; l < cfg.layers; l++) this.layerForward(rec, ws, l, ws.xs[l]!, ws.xs[l + 1]!, adapter, undefined, kv);
    // Only the last position of each sequence needs logits.
    copyColumns(this.gpu, rec, { src: ws.xs[cfg.layers]!, dst: ws.tmpC, rows: B, width: cfg.hidden, srcStride: T * cfg.hidden, srcOffset: (T - 1) * cfg.hidden, dstStride: cfg.hidden, dstOffset: 0 });
    const lastRows = { N: B } as Workspace;
    this.norm(rec, lastRows, this.weights.finalNorm, ws.tmpC, kv.lastHidden, ws.statsF);
    for (const chunk of this.headChunks(ws)) {
      matmul(this.gpu, rec, {
        a: kv.lastHidden,
        b: chunk.shard,
        offsetB: chunk.rowInShard * cfg.hidden,
        c: logitsOut,
        offsetC: chunk.vStart,
        ldc: cfg.vocabSize,
        M: B,
        N: chunk.vc,
        K: cfg.hidden,
        transB: true,
        bF16: this.weights.dtype === 'f16',
        label: 'lm_head',
      });
    }
    rec.submit();
    kv.length += T;
  }

  /** Vocabulary chunks of the head: [vStart, vc) ranges that each lie inside one head shard. */
  private *headChunks(ws: Workspace): Generator<{ vStart: number; vc: number; shard: GPUBuffer; rowInShard: number }> {
    for (const shard of this.weights.head) {
      for (let r = 0; r < shard.rowCount; r += ws.vocabChunk) {
        const buffer = 'buffer' in shard.buffer ? shard.buffer.buffer : shard.buffer;
        yield { vStart: shard.rowStart + r, vc: Math.min(ws.vocabChunk, shard.rowCount - r), shard: buffer, rowInShard: r };
      }
    }
  }

  private headLogits(rec: Recorder, ws: Workspace, chunk: { vc: number; shard: GPUBuffer; rowInShard: number }): void {
    const C = this.config.hidden;
    matmul(this.gpu, rec, {
      a: ws.hF,
      b: chunk.shard,
      offsetB: chunk.rowInShard * C,
      c: ws.logits,
      M: ws.N,
      N: chunk.vc,
      K: C,
      transB: true,
      bF16: this.weights.dtype === 'f16',
      label: 'lm_head',
    });
  }

  /** Forward through every layer and the loss; leaves the totals on the GPU. */
  private recordForward(rec: Recorder, ws: Workspace, adapter: LoraAdapter | null, dropoutSeed: number | undefined, accumulateTotals: boolean): void {
    this.embed(rec, ws);
    for (let l = 0; l < this.config.layers; l++) this.layerForward(rec, ws, l, ws.xs[l]!, ws.xs[l + 1]!, adapter, dropoutSeed);
    this.norm(rec, ws, this.weights.finalNorm, ws.xs[this.config.layers]!, ws.hF, ws.statsF);
    for (const chunk of this.headChunks(ws)) {
      this.headLogits(rec, ws, chunk);
      crossEntropyChunkStats(this.gpu, rec, { logits: ws.logits, targets: ws.targets, mask: ws.mask, state: ws.ceState, rows: ws.N, vStart: chunk.vStart, vc: chunk.vc });
    }
    crossEntropyFinalize(this.gpu, rec, {
      targets: ws.targets,
      mask: ws.mask,
      state: ws.ceState,
      rows: ws.N,
      rowLoss: ws.rowLoss,
      rowCorrect: ws.rowCorrect,
      totals: ws.totals,
      accumulate: accumulateTotals,
    });
  }

  private async readTotals(ws: Workspace): Promise<LossTotals> {
    const t = await this.gpu.readF32(ws.totals, 3);
    return { lossSum: t[0]!, tokens: t[1]!, correct: t[2]! };
  }

  /**
   * The loss totals the last forwardBackward of this batch shape left on the GPU, read now: a
   * trainer records the optimizer step first, so one read serves the whole step.
   */
  async readStepTotals(B: number, T: number, adapter: LoraAdapter | null): Promise<LossTotals> {
    return this.readTotals(this.ws(B, T, adapter, true));
  }

  /** Loss totals of a batch (no gradients). */
  async evaluate(batch: TokenBatch, adapter: LoraAdapter | null = null): Promise<LossTotals> {
    const ws = this.ws(batch.B, batch.T, adapter, false);
    this.upload(ws, batch);
    const rec = this.gpu.recorder('evaluate');
    this.recordForward(rec, ws, adapter, undefined, false);
    rec.submit();
    return this.readTotals(ws);
  }

  /**
   * Loss totals of each row (one example per row) of a batch, no gradients: the per-position
   * losses of the same forward pass as evaluate(), summed per row on the CPU.
   */
  async evaluateRows(batch: TokenBatch, adapter: LoraAdapter | null = null): Promise<LossTotals[]> {
    const ws = this.ws(batch.B, batch.T, adapter, false);
    this.upload(ws, batch);
    const rec = this.gpu.recorder('evaluate-rows');
    this.recordForward(rec, ws, adapter, undefined, false);
    rec.submit();
    const N = batch.B * batch.T;
    // Both reads are queued before either awaits, so no other user of the workspace comes between.
    const [loss, correct] = await Promise.all([this.gpu.readF32(ws.rowLoss, N), this.gpu.readF32(ws.rowCorrect, N)]);
    return Array.from({ length: batch.B }, (_, b) => {
      const t: LossTotals = { lossSum: 0, tokens: 0, correct: 0 };
      for (let i = b * batch.T; i < (b + 1) * batch.T; i++) {
        t.lossSum += loss[i]!;
        t.tokens += batch.mask[i]!;
        t.correct += correct[i]!;
      }
      return t;
    });
  }

  /** Full logits [B*T, vocab] of a batch (tests, small models; training never builds these). */
  async logits(tokens: Uint32Array, B: number, T: number, adapter: LoraAdapter | null = null): Promise<Float32Array> {
    const ws = this.ws(B, T, adapter, false);
    const N = B * T;
    this.upload(ws, { B, T, tokens, targets: new Uint32Array(N), mask: new Float32Array(N) });
    const V = this.config.vocabSize;
    const out = new Float32Array(N * V);
    const rec = this.gpu.recorder('logits');
    this.embed(rec, ws);
    for (let l = 0; l < this.config.layers; l++) this.layerForward(rec, ws, l, ws.xs[l]!, ws.xs[l + 1]!, adapter, undefined);
    this.norm(rec, ws, this.weights.finalNorm, ws.xs[this.config.layers]!, ws.hF, ws.statsF);
    rec.submit();
    for (const chunk of this.headChunks(ws)) {
      const r = this.gpu.recorder('logits-chunk');
      this.headLogits(r, ws, chunk);
      r.submit();
      const part = await this.gpu.readF32(ws.logits, N * chunk.vc);
      for (let i = 0; i < N; i++) out.set(part.subarray(i * chunk.vc, (i + 1) * chunk.vc), i * V + chunk.vStart);
    }
    return out;
  }

  /**
   * Forward and backward of one micro-batch: LoRA gradients (scaled by opts.gradScale, the
   * inverse of the optimizer step's trained tokens) are written or accumulated in the adapter.
   * Returns the totals buffer's contents after this micro-batch when `readLoss` (else null,
   * so that a step's micro-batches can run without waiting on the GPU).
   */
  async forwardBackward(batch: TokenBatch, adapter: LoraAdapter | null, opts: StepOptions, readLoss = true): Promise<LossTotals | null> {
    const cfg = this.config;
    if (!adapter && !opts.full) throw new Error('forwardBackward needs an adapter or full-parameter gradients');
    const ws = this.ws(batch.B, batch.T, adapter, true);
    this.upload(ws, batch);
    const rec = this.gpu.recorder('train-step');
    const full = opts.full;
    if (full && !opts.accumulate) for (const st of full.states.values()) rec.clear(st.grad, 0, st.n * 4);
    this.recordForward(rec, ws, adapter, opts.dropoutSeed, opts.accumulate);
    // Loss -> final norm: dL/dhF = sum over chunks of dlogits · head[chunk]. Last chunk first:
    // the forward pass left its logits in ws.logits, so only the other chunks are recomputed
    // (with one chunk, e.g. a vocabulary up to VOCAB_CHUNK, the head runs once per step, not twice).
    let first = true;
    for (const chunk of [...this.headChunks(ws)].reverse()) {
      if (!first) this.headLogits(rec, ws, chunk);
      crossEntropyChunkGrad(this.gpu, rec, { logits: ws.logits, targets: ws.targets, mask: ws.mask, state: ws.ceState, rows: ws.N, vStart: chunk.vStart, vc: chunk.vc, gradScale: opts.gradScale });
      if (full) {
        // dHead[chunk] += dlogitsᵀ hF
        matmul(this.gpu, rec, { a: ws.logits, b: ws.hF, c: full.grad(chunk.shard), offsetC: chunk.rowInShard * cfg.hidden, M: chunk.vc, N: cfg.hidden, K: ws.N, transA: true, beta: 1, label: 'lm_head.dW' });
      }
      matmul(this.gpu, rec, {
        a: ws.logits,
        b: chunk.shard,
        offsetB: chunk.rowInShard * cfg.hidden,
        c: ws.dh,
        M: ws.N,
        N: cfg.hidden,
        K: chunk.vc,
        bF16: this.weights.dtype === 'f16',
        beta: first ? 0 : 1,
        label: 'lm_head.dx',
      });
      first = false;
    }
    this.normBackward(rec, ws, this.weights.finalNorm, ws.xs[cfg.layers]!, ws.statsF, ws.dh, ws.dres, false, full);
    for (let l = cfg.layers - 1; l >= 0; l--) this.layerBackward(rec, ws, l, adapter, opts);
    if (full) {
      // ws.dres is now dL/d(embedding output): scatter it into the embedding rows.
      const index = embeddingGradIndex(batch.tokens);
      this.gpu.write(ws.embedIndex, packEmbeddingGradIndex(index));
      embeddingBackward(this.gpu, rec, { index, indexBuffer: ws.embedIndex, dOut: ws.dres, cols: cfg.hidden, shards: full.embedGrad });
    }
    rec.submit();
    return readLoss ? this.readTotals(ws) : null;
  }
}

function actKind(cfg: ModelConfig): 'gelu_tanh' | 'gelu_erf' | 'silu' {
  if (cfg.hiddenAct === 'gelu_new') return 'gelu_tanh';
  if (cfg.hiddenAct === 'gelu') return 'gelu_erf';
  return 'silu';
}
