/**
 * The decoder-only transformer on WebGPU, for both families (Llama/Qwen2/Mistral/SmolLM and
 * GPT-2), forward and backward, readable top to bottom as nanoGPT is:
 *
 *   x = embed(ids) [+ wpe]
 *   per layer:  h = norm1(x); q,k,v = attnIn(h) [+ rope]; a = attention(q,k,v)
 *               x = x + attnOut(a); h = norm2(x); m = act(mlpIn(h)); x = x + mlpOut(m)
 *   logits = normF(x) headᵀ      (in vocabulary chunks: full [tokens, vocab] logits never exist)
 *
 * What is trained: a LoRA adapter (the base weights stay frozen), or, in full-parameter mode
 * (`StepOptions.full`), every base weight: linear layers, norms, embedding and head. The backward
 * pass keeps the residual stream entering each layer, and each layer's internals as far as the
 * memory budget holds them (`recompute`); a layer whose internals were not kept is recomputed
 * just before its backward. Linear layers that share an input (q/k/v, gate/up) run their LoRA as
 * one group (`linearGroup.ts`).
 */
import type { BufferBinding, Gpu, Recorder } from '../gpu';
import { activation, activationBackward, swiglu, swigluBackward } from '../kernels/activation';
import { appendKv, attentionBackward, attentionDecode, attentionForward } from '../kernels/attention';
import { crossEntropyChunkGrad, crossEntropyChunkStats, crossEntropyFinalize } from '../kernels/crossentropy';
import { axpby, copyColumns } from '../kernels/elementwise';
import { embedding, embeddingBackward, embeddingGradIndex, packEmbeddingGradIndex } from '../kernels/embedding';
import type { SwigluEpilogue } from '../kernels/loraGroup';
import { matmul } from '../kernels/matmul';
import { layerNorm, layerNormBackward, rmsNorm, rmsNormBackward } from '../kernels/norm';
import { ropeQK } from '../kernels/rope';

import { activationKind, ropeInverseFrequencies, type ModelConfig } from './config';
import type { BaseGradients } from './fullParameters';
import { positionArgs, type KvCache, type StepTail } from './kvCache';
import { DEFAULT_MEMORY_BUDGET_BYTES, estimateLoraJobMemory, type MemoryEstimate, type RecomputePolicy } from './memoryEstimate';
import { TrainingReplays } from './stepReplay';
import { linearGroupBackward, linearGroupForward, loraGroupBranch, maskDropout } from './linearGroup';
import { DeferredLoraGrads } from './deferredLoraGrads';
import { defaultLoraLinearPath, linearBackward, linearForward, loraInput, type LinearBackwardTargets, type LoraBranch, type LoraLinearPath } from './linearLayer';
import type { LoraAdapter } from './lora';
import type { LinearWeight, ModelWeights, NormWeight } from './weights';
import type { LossTotals, StepOptions, TokenBatch } from './trainingPass';
import { Workspace, type BufferView, type LayerActivations } from './workspace';

export { defaultLoraLinearPath, type LoraLinearPath } from './linearLayer';
export { KvCache, type StepTail } from './kvCache';
export type { LossTotals, StepOptions, TokenBatch } from './trainingPass';

/** Largest number of vocabulary columns per logits chunk. */
const VOCAB_CHUNK = 8192;
const MAX_WORKSPACES = 3;

export interface CausalLMOptions {
  /** Overrides `defaultLoraLinearPath` (tests and benchmarks run both paths). */
  loraLinearPath?: LoraLinearPath;
  /** Keep or recompute each layer's activations for the backward (default 'auto'). */
  recompute?: RecomputePolicy;
  /** What 'auto' must fit the training step's memory estimate in (default DEFAULT_MEMORY_BUDGET_BYTES). */
  memoryBudgetBytes?: number;
}

export class CausalLM {
  readonly invFreq: GPUBuffer | null;
  /** Read when a pass is recorded, so it may be switched between passes (tests, benchmarks). */
  loraLinearPath: LoraLinearPath;
  /** Read when a training workspace is made (see `keepsActivations`); may be switched between steps. */
  recompute: RecomputePolicy;
  /** Set by a running trainer: this many layers keep their activations, whatever `recompute` says. */
  pinnedKeptLayers: number | null = null;
  memoryBudgetBytes: number;
  /** Workspaces by batch shape, most recently used last (training, evaluation and decoding alternate). */
  private readonly workspaces = new Map<string, Workspace>();
  /** Recorded training passes, replayed by later steps; they bind workspace buffers, so go with them. */
  private readonly replays: TrainingReplays;

  constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
    options: CausalLMOptions = {},
  ) {
    this.loraLinearPath = options.loraLinearPath ?? defaultLoraLinearPath(gpu);
    this.recompute = options.recompute ?? 'auto';
    this.memoryBudgetBytes = options.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES;
    this.invFreq = config.positionEncoding === 'rope' ? gpu.upload(Float32Array.from(ropeInverseFrequencies(config)), 'inv_freq') : null;
    this.replays = new TrainingReplays(gpu);
  }

  destroy(): void {
    this.replays.destroy();
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
    this.replays.clear();
    for (const ws of this.workspaces.values()) ws.destroy();
    this.workspaces.clear();
  }

  private ws(B: number, T: number, adapter: LoraAdapter | null, backward: boolean): Workspace {
    if (T > this.config.maxPositions) {
      throw new Error(`sequence length ${T} exceeds the model's maximum of ${this.config.maxPositions} positions`);
    }
    const r = adapter?.config.r ?? 0;
    const roles = adapter ? [...new Set([...adapter.modules.keys()].map((l) => l.role))].sort() : [];
    const kept = backward ? this.keptLayers(B, T, adapter) : 0;
    const keptLogits = backward && this.keepsLogits(B, T, adapter);
    const base = `${B}x${T}:${r}:${roles.join(',')}`;
    const key = `${base}:${backward ? `train-keep${kept}${keptLogits ? '-logits' : ''}` : 'forward'}`;
    // A training workspace of the same shape also serves forward-only passes.
    const keys = backward ? [key] : [key, ...[...this.workspaces.keys()].filter((k) => k.startsWith(`${base}:train-`))];
    for (const k of keys) {
      const hit = this.workspaces.get(k);
      if (!hit) continue;
      this.workspaces.delete(k); // re-insert: most recently used last
      this.workspaces.set(k, hit);
      return hit;
    }
    while (this.workspaces.size >= MAX_WORKSPACES) {
      this.replays.clear();
      const oldest = this.workspaces.keys().next().value!;
      this.workspaces.get(oldest)!.destroy();
      this.workspaces.delete(oldest);
    }
    const vocabChunk = Math.min(this.config.vocabSize, VOCAB_CHUNK);
    const chunks = keptLogits ? this.weights.head.reduce((n, shard) => n + Math.ceil(shard.rowCount / vocabChunk), 0) : 0;
    const ws = new Workspace(this.gpu, this.config, B, T, vocabChunk, r, roles, backward, kept, chunks);
    this.workspaces.set(key, ws);
    return ws;
  }

  /** Whether a training step of B x T keeps every layer's activations (`recompute`, resolved). */
  keepsActivations(B: number, T: number, adapter: LoraAdapter | null): boolean {
    return this.keptLayers(B, T, adapter) === this.config.layers;
  }

  /**
   * How many layers of a training step of B x T keep their activations (`recompute`, resolved:
   * 'auto' keeps as many as the memory budget holds); the others are recomputed.
   */
  keptLayers(B: number, T: number, adapter: LoraAdapter | null): number {
    if (this.pinnedKeptLayers !== null) return Math.min(this.pinnedKeptLayers, this.config.layers);
    if (this.recompute !== 'auto') return this.recompute === 'never' ? this.config.layers : 0;
    return this.estimate(B, T, adapter, 'auto').keptLayers;
  }

  /** The memory estimate of a training step of B x T under `recompute` and this model's budget. */
  private estimate(B: number, T: number, adapter: LoraAdapter | null, recompute: RecomputePolicy): MemoryEstimate {
    const { r: rank = 0, targetModules = [] } = adapter?.config ?? {};
    const { maxStorageBufferBindingSize } = this.gpu.limits;
    const shape = { batch: B, seq: T, rank, dtype: this.weights.dtype, targetModules, maxStorageBufferBindingSize };
    return estimateLoraJobMemory(this.config, { ...shape, recompute, budgetBytes: this.memoryBudgetBytes });
  }

  /**
   * Whether a training step of B x T keeps every vocabulary chunk's logits for the backward
   * instead of recomputing them: when every layer's activations are kept and the memory estimate
   * with the logits still fits the budget (see MemoryEstimate.keptLogits). The gradients are the
   * same bit for bit either way.
   */
  keepsLogits(B: number, T: number, adapter: LoraAdapter | null): boolean {
    return this.keptLayers(B, T, adapter) === this.config.layers && this.estimate(B, T, adapter, 'never').keptLogits;
  }

  // ------------------------------------------------------------------ building blocks

  private norm(rec: Recorder, ws: Workspace, w: NormWeight, x: GPUBuffer, out: BufferBinding, stats: GPUBuffer, residual?: { add: GPUBuffer; sum: GPUBuffer }): void {
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

  /** The adapter branch of linear layer `lin` of layer `l` in this pass, or null when it is not adapted. */
  private loraBranch(ws: Workspace, adapter: LoraAdapter | null, lin: LinearWeight, l: number, dropoutSeed: number | undefined): LoraBranch | null {
    const module = adapter?.modules.get(lin);
    if (!adapter || !module) return null;
    const dropout = maskDropout(adapter.config.dropout, this.passValues(dropoutSeed), l, lin);
    return { module, u: ws.activations(l).u.get(lin.role)!, scale: adapter.scale, dropout };
  }

  /** Where the kernels read a pass's dropout seed (replays.begin writes it there), or null: a pass without dropout. */
  private passValues = (dropoutSeed: number | undefined): GPUBuffer | null => (dropoutSeed === undefined ? null : this.replays.stepValues);

  /** Positions: the first token's (a number) or, decoding, a buffer of each token's (see KvCache.positions). */
  private embed(rec: Recorder, ws: Workspace, position: number | GPUBuffer = 0): void {
    const w = this.weights;
    embedding(this.gpu, rec, {
      ids: ws.ids,
      tokens: ws.N,
      cols: this.config.hidden,
      shards: w.embed,
      dtype: w.dtype,
      out: ws.xs[0]!,
      ...(w.positions ? { positionTable: w.positions, positionDtype: 'f32' as const, ...positionArgs(position), seqLen: ws.T } : {}),
    });
  }

  /** hF = normF(x + add), the sum (the last layer's output) kept in ws.xs[layers] for the backward. */
  private finalNorm(rec: Recorder, ws: Workspace, last: { x: GPUBuffer; add: GPUBuffer }): void {
    this.norm(rec, ws, this.weights.finalNorm, last.x, ws.hF, ws.statsF, { add: last.add, sum: ws.xs[this.config.layers]! });
  }

  private attnDims(ws: Workspace) {
    const { heads: Hq, kvHeads: Hkv, headDim: D } = this.config;
    return { B: ws.B, T: ws.T, Hq, Hkv, D };
  }

  /** Rotates q and k (backward: dq and dk) in place, in one dispatch. */
  private rope(rec: Recorder, ws: Workspace, q: BufferBinding, k: BufferBinding, backward: boolean, position: number | GPUBuffer = 0): void {
    const { heads, kvHeads, headDim } = this.config;
    ropeQK(this.gpu, rec, { invFreq: this.invFreq!, tokens: ws.N, q, qHeads: heads, k, kHeads: kvHeads, headDim, ...positionArgs(position), seqLen: ws.T, backward });
  }

  /**
   * Every layer forward. Layer l's MLP output stays in ws.xout, apart from the residual stream
   * (its xmid): the next layer's first norm adds the two as it normalises, writing the sum into
   * ws.xs[l + 1], so no separate residual-add kernel runs. Returns that pending pair after the
   * last layer (the final norm, or the caller, completes ws.xs[layers]).
   */
  private layersForward(rec: Recorder, ws: Workspace, adapter: LoraAdapter | null, dropoutSeed: number | undefined, kv?: KvCache): { add: GPUBuffer; x: GPUBuffer } {
    for (let l = 0; l < this.config.layers; l++) {
      const input = l === 0 ? ws.xs[0]! : { x: ws.xout, add: ws.activations(l - 1).xmid, sum: ws.xs[l]! };
      this.layerForward(rec, ws, l, input, ws.xout, adapter, dropoutSeed, kv);
    }
    return { x: ws.xout, add: ws.activations(this.config.layers - 1).xmid };
  }

  /**
   * One layer forward from its input (`xin`, or the previous layer's pending residual pair, which
   * norm1 sums into `sum`) to `mlpOut`, the MLP's output without the residual stream (in xmid).
   * Leaves its internals in the workspace. With `mlpOut` null (recomputing the layer for its
   * backward, which never reads the output), the last linear layer computes only its LoRA u.
   */
  private layerForward(rec: Recorder, ws: Workspace, l: number, input: GPUBuffer | { x: GPUBuffer; add: GPUBuffer; sum: GPUBuffer }, mlpOut: GPUBuffer | null, adapter: LoraAdapter | null, dropoutSeed: number | undefined, kv?: KvCache): void {
    // Decoding reads the position from a buffer, so its recorded step serves every token.
    const pos = kv ? (ws.T === 1 ? kv.positions : kv.length) : 0;
    const cfg = this.config;
    const layer = this.weights.layers[l]!;
    const C = cfg.hidden;
    const N = ws.N;
    const a = ws.activations(l);
    const xin = 'sum' in input ? input.sum : input;
    const lin = (w: LinearWeight, x: BufferBinding, y: BufferBinding) => linearForward(this.gpu, rec, this.loraLinearPath, w, x, y, N, this.loraBranch(ws, adapter, w, l, dropoutSeed));
    // Layers sharing an input run as one group when all are adapted, else one by one.
    const shared = (lins: readonly LinearWeight[], x: BufferBinding, ys: BufferBinding[], g = loraGroupBranch(adapter, a.u, lins, l, this.passValues(dropoutSeed))) =>
      g ? linearGroupForward(this.gpu, rec, this.loraLinearPath, lins, x, ys as BufferView[], N, g) : lins.forEach((w, i) => lin(w, x, ys[i]!));
    if ('sum' in input) this.norm(rec, ws, layer.norm1, input.x, a.h1, a.stats1, { add: input.add, sum: input.sum });
    else this.norm(rec, ws, layer.norm1, xin, a.h1, a.stats1);
    if (cfg.family === 'llama') {
      shared(layer.attnIn, a.h1, [a.q, a.k, a.v]);
      this.rope(rec, ws, a.q, a.k, false, pos);
    } else {
      lin(layer.attnIn[0]!, a.h1, ws.qkv);
      for (const [i, dst] of [a.q, a.k, a.v].entries()) {
        copyColumns(this.gpu, rec, { src: ws.qkv, dst, rows: N, width: C, srcStride: 3 * C, srcOffset: i * C, dstStride: C, dstOffset: 0 });
      }
    }
    if (!kv) {
      attentionForward(this.gpu, rec, { ...this.attnDims(ws), q: a.q, k: a.k, v: a.v, out: a.attn, lse: a.lse });
    } else {
      this.cachedAttention(rec, ws, a, kv, l);
    }
    lin(layer.attnOut, a.attn, ws.tmpC);
    // xmid = xin + attention output, normalised into h2 in the same kernel.
    this.norm(rec, ws, layer.norm2, ws.tmpC, a.h2, a.stats2, { add: xin, sum: a.xmid });
    if (cfg.family === 'llama') {
      shared(layer.mlpIn, a.h2, [a.gate, a.up]);
      swiglu(this.gpu, rec, { gate: a.gate, up: a.up, out: a.act, rows: N, width: cfg.intermediate });
    } else {
      lin(layer.mlpIn[0]!, a.h2, a.gate);
      activation(this.gpu, rec, { kind: activationKind(cfg), x: a.gate, out: a.act, n: N * cfg.intermediate });
    }
    if (mlpOut) {
      lin(layer.mlpOut, a.act, mlpOut);
      return;
    }
    const branch = this.loraBranch(ws, adapter, layer.mlpOut, l, dropoutSeed);
    if (branch) loraInput(this.gpu, rec, this.loraLinearPath, layer.mlpOut, a.act, N, branch);
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
    // Kept activations are still in the workspace from the forward pass; else redo this layer's forward.
    // The last layer is the last to write its activations (kept, or the recomputed layers' shared
    // set), and the forward pass has just ended: they are all still there.
    if (!ws.keeps(l) && l !== cfg.layers - 1) this.layerForward(rec, ws, l, xin, null, adapter, opts.dropoutSeed);
    const a = ws.activations(l);
    const now = { du: ws.du, ones: ws.ones, accumulate: opts.accumulate, path: this.loraLinearPath, ...(opts.full ? { full: opts.full } : {}) };
    // The weight gradients of every adapter but mlpOut's (whose dy, ws.dres, norm2's backward
    // changes) wait for one dispatch just before norm1's backward, when all their inputs exist.
    const deferred = new DeferredLoraGrads();
    const later = { ...now, deferred };
    const back = (w: LinearWeight, x: BufferBinding, dy: BufferBinding, dx: GPUBuffer, accumulateDx: boolean, targets: LinearBackwardTargets = later, swiglu?: SwigluEpilogue) =>
      linearBackward(this.gpu, rec, w, x, dy, dx, N, accumulateDx, this.loraBranch(ws, adapter, w, l, opts.dropoutSeed), targets, swiglu);
    // dx = the sum over layers sharing input x (written by the first, added by the rest).
    const sharedBack = (lins: readonly LinearWeight[], x: BufferBinding, dys: BufferBinding[], dx: GPUBuffer, g = loraGroupBranch(adapter, a.u, lins, l, this.passValues(opts.dropoutSeed))) =>
      g ? linearGroupBackward(this.gpu, rec, lins, x, dys as BufferView[], dx, N, false, g, later) : lins.forEach((w, i) => back(w, x, dys[i]!, dx, i > 0));

    // MLP: output = xmid + mlpOut(act(mlpIn(h2)))
    if (cfg.family === 'llama') {
      // dGate and dUp are regions of one buffer: bound once, addressed by offsets. The fused
      // path does the SwiGLU backward in mlpOut's input-gradient kernel (dAct is never stored).
      const [dGate, dUp, gate, up] = [ws.dGate as BufferView, ws.dUp as BufferView, a.gate as BufferView, a.up as BufferView];
      const dBoth = { dGate: dGate.buffer, dUp: dGate.buffer, dGateOffset: dGate.offset / 4, dUpOffset: dUp.offset / 4 };
      const epilogue = { gateUp: gate.buffer, gateOffset: gate.offset / 4, upOffset: up.offset / 4, dGateUp: dGate.buffer, dGateOffset: dGate.offset / 4, dUpOffset: dUp.offset / 4 };
      if (!back(layer.mlpOut, a.act, ws.dres, ws.dAct, false, now, epilogue)) {
        swigluBackward(this.gpu, rec, { gate: a.gate, up: a.up, dOut: ws.dAct, ...dBoth, rows: N, width: cfg.intermediate });
      }
      sharedBack(layer.mlpIn, a.h2, [ws.dGate, ws.dUp], ws.dh);
    } else {
      back(layer.mlpOut, a.act, ws.dres, ws.dAct, false, now);
      activationBackward(this.gpu, rec, { kind: activationKind(cfg), x: a.gate, dOut: ws.dAct, dx: ws.dGate, n: N * cfg.intermediate });
      back(layer.mlpIn[0]!, a.h2, ws.dGate, ws.dh, false);
    }
    this.normBackward(rec, ws, layer.norm2, a.xmid, a.stats2, ws.dh, ws.dres, true, opts.full);

    // Attention: xmid = xin + attnOut(attention(q, k, v))
    back(layer.attnOut, a.attn, ws.dres, ws.dAttn, false);
    attentionBackward(this.gpu, rec, { ...this.attnDims(ws), q: a.q, k: a.k, v: a.v, out: a.attn, lse: a.lse, dout: ws.dAttn, dq: ws.dq, dk: ws.dk, dv: ws.dv, delta: ws.delta });
    if (cfg.family === 'llama') {
      this.rope(rec, ws, ws.dq, ws.dk, true);
      sharedBack(layer.attnIn, a.h1, [ws.dq, ws.dk, ws.dv], ws.dh);
    } else {
      for (const [i, src] of [ws.dq, ws.dk, ws.dv].entries()) {
        copyColumns(this.gpu, rec, { src, dst: ws.dqkv, rows: N, width: C, srcStride: C, srcOffset: 0, dstStride: 3 * C, dstOffset: i * C });
      }
      back(layer.attnIn[0]!, a.h1, ws.dqkv, ws.dh, false);
    }
    deferred.flush(this.gpu, rec);
    this.normBackward(rec, ws, layer.norm1, xin, a.stats1, ws.dh, ws.dres, true, opts.full);
  }

  /** Appends this pass's keys/values to the cache and attends over everything cached so far. */
  private cachedAttention(rec: Recorder, ws: Workspace, a: LayerActivations, kv: KvCache, l: number): void {
    const { heads: Hq, kvHeads: Hkv, headDim: D } = this.config;
    const pos = ws.T === 1 ? { buffer: kv.positions } : kv.length;
    appendKv(this.gpu, rec, { kNew: a.k, vNew: a.v, kCache: kv.k[l]!, vCache: kv.v[l]!, B: ws.B, rows: ws.T, Hkv, D, capacity: kv.capacity, pos });
    if (ws.T === 1) {
      attentionDecode(this.gpu, rec, { q: a.q, kCache: kv.k[l]!, vCache: kv.v[l]!, out: a.attn, workspace: kv.scratch, B: ws.B, Hq, Hkv, D, capacity: kv.capacity, kvLen: { buffer: kv.positions } });
    } else {
      attentionForward(this.gpu, rec, { ...this.attnDims(ws), q: a.q, k: kv.k[l]!, v: kv.v[l]!, out: a.attn, lse: a.lse, pastLen: kv.length, kvCapacity: kv.capacity });
    }
  }

  /**
   * Feeds `tokens` [B, T] on top of the cache (a prompt when the cache is empty, one token per
   * sequence when decoding) and records the logits of each sequence's last position into
   * `logitsOut` [B, vocab], then `tail` (sampling), if any. Submits; the cache then holds T more
   * positions. A decode step (T = 1) is recorded once and replayed for every later token of the
   * same cache, adapter, output, plan and tail (see KvCache.positions).
   */
  forwardCached(tokens: Uint32Array, T: number, kv: KvCache, adapter: LoraAdapter | null, logitsOut: GPUBuffer, tail?: StepTail): void {
    const { B } = kv;
    const cfg = this.config;
    if (tokens.length !== B * T) throw new Error(`forwardCached: ${tokens.length} tokens for ${B} x ${T}`);
    if (kv.length + T > kv.capacity) throw new Error(`the KV cache holds ${kv.capacity} positions; ${kv.length + T} needed`);
    for (const id of tokens) if (id >= cfg.vocabSize) throw new Error(`token id ${id} is outside the vocabulary (${cfg.vocabSize})`);
    const ws = this.ws(B, T, adapter, false);
    this.gpu.write(ws.ids, tokens);
    const rec = T === 1 ? kv.beginStep([ws, adapter, logitsOut], `${this.loraLinearPath}|${tail?.key ?? ''}`) : this.gpu.recorder('prefill');
    if (!rec) {
      kv.length += T; // a recorded step was replayed
      return;
    }
    this.embed(rec, ws, T === 1 ? kv.positions : kv.length);
    const last = this.layersForward(rec, ws, adapter, undefined, kv);
    axpby(this.gpu, rec, last.add, last.x, ws.N * cfg.hidden, 1, 1);
    // Only the last position of each sequence needs logits.
    copyColumns(this.gpu, rec, { src: last.x, dst: ws.tmpC, rows: B, width: cfg.hidden, srcStride: T * cfg.hidden, srcOffset: (T - 1) * cfg.hidden, dstStride: cfg.hidden, dstOffset: 0 });
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
    tail?.record(rec);
    rec.submit();
    if (T === 1) kv.endStep(rec);
    kv.length += T;
  }

  /** Vocabulary chunks of the head: [vStart, vc) ranges that each lie inside one head shard. */
  private *headChunks(ws: Workspace): Generator<{ index: number; vStart: number; vc: number; shard: GPUBuffer; rowInShard: number }> {
    let index = 0;
    for (const shard of this.weights.head) {
      for (let r = 0; r < shard.rowCount; r += ws.vocabChunk) {
        const buffer = 'buffer' in shard.buffer ? shard.buffer.buffer : shard.buffer;
        yield { index: index++, vStart: shard.rowStart + r, vc: Math.min(ws.vocabChunk, shard.rowCount - r), shard: buffer, rowInShard: r };
      }
    }
  }

  /** The logits of one vocabulary chunk into `out` ([N, vc]). */
  private headLogits(rec: Recorder, ws: Workspace, chunk: { vc: number; shard: GPUBuffer; rowInShard: number }, out: GPUBuffer): void {
    const C = this.config.hidden;
    matmul(this.gpu, rec, {
      a: ws.hF,
      b: chunk.shard,
      offsetB: chunk.rowInShard * C,
      c: out,
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
    this.finalNorm(rec, ws, this.layersForward(rec, ws, adapter, dropoutSeed));
    for (const chunk of this.headChunks(ws)) {
      const logits = ws.logitsOf(chunk.index);
      this.headLogits(rec, ws, chunk, logits);
      crossEntropyChunkStats(this.gpu, rec, { logits, targets: ws.targets, mask: ws.mask, state: ws.ceState, rows: ws.N, vStart: chunk.vStart, vc: chunk.vc });
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

  /** The buffer of readStepTotals, [loss sum, tokens, correct] f32, for a caller to copy out late. */
  stepTotals(B: number, T: number, adapter: LoraAdapter | null): GPUBuffer {
    return this.ws(B, T, adapter, true).totals;
  }

  /** Loss totals of a batch (no gradients). */
  async evaluate(batch: TokenBatch, adapter: LoraAdapter | null = null): Promise<LossTotals> {
    const ws = this.ws(batch.B, batch.T, adapter, false);
    ws.upload(batch);
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
    ws.upload(batch);
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
    ws.upload({ B, T, tokens, targets: new Uint32Array(N), mask: new Float32Array(N) });
    const V = this.config.vocabSize;
    const out = new Float32Array(N * V);
    const rec = this.gpu.recorder('logits');
    this.embed(rec, ws);
    this.finalNorm(rec, ws, this.layersForward(rec, ws, adapter, undefined));
    rec.submit();
    for (const chunk of this.headChunks(ws)) {
      const r = this.gpu.recorder('logits-chunk');
      this.headLogits(r, ws, chunk, ws.logits);
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
    ws.upload(batch);
    const rec = this.replays.begin(ws, adapter, this.loraLinearPath, opts);
    if (!rec) return readLoss ? this.readTotals(ws) : null; // a recorded pass was replayed
    const full = opts.full;
    if (full && !opts.accumulate) for (const st of full.states.values()) rec.clear(st.grad, 0, st.n * 4);
    this.recordForward(rec, ws, adapter, opts.dropoutSeed, opts.accumulate);
    // Loss -> final norm: dL/dhF = sum over chunks of dlogits · head[chunk]. Last chunk first:
    // the forward pass left its logits in ws.logits, so only the other chunks are recomputed
    // (with one chunk, e.g. a vocabulary up to VOCAB_CHUNK, the head runs once per step, not twice),
    // and none when the workspace keeps every chunk's logits (see keepsLogits).
    let first = true;
    const chunks = [...this.headChunks(ws)];
    for (const chunk of chunks.reverse()) {
      const logits = ws.logitsOf(chunk.index);
      if (!ws.keepsLogits(chunk.index, chunks.length)) this.headLogits(rec, ws, chunk, logits);
      crossEntropyChunkGrad(this.gpu, rec, { logits, targets: ws.targets, mask: ws.mask, state: ws.ceState, rows: ws.N, vStart: chunk.vStart, vc: chunk.vc, gradScale: { buffer: this.replays.stepValues } });
      if (full) {
        // dHead[chunk] += dlogitsᵀ hF
        matmul(this.gpu, rec, { a: logits, b: ws.hF, c: full.grad(chunk.shard), offsetC: chunk.rowInShard * cfg.hidden, M: chunk.vc, N: cfg.hidden, K: ws.N, transA: true, beta: 1, label: 'lm_head.dW' });
      }
      matmul(this.gpu, rec, {
        a: logits,
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
    this.replays.end(rec);
    return readLoss ? this.readTotals(ws) : null;
  }
}
