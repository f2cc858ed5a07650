/**
 * One linear layer of the transformer, forward and backward, with or without its LoRA adapter
 * and with or without full-parameter gradients: y = x Wᵀ + bias + s·(x_d Aᵀ) Bᵀ.
 */
import type { BufferBinding, Gpu, Recorder } from '../gpu';
import { loraBackward, loraDown, loraLinear, type LoraDropout } from '../kernels/lora';
import { groupBackward, groupRegion, type SwigluEpilogue } from '../kernels/loraGroup';
import { matmul } from '../kernels/matmul';
import type { MatmulLoraTerm } from '../kernels/matmulGpu';

import type { DeferredLoraGrads } from './deferredLoraGrads';
import type { BaseGradients } from './fullParameters';
import { ROLE_SEED_INDEX, type LinearRole } from './layout';
import type { LoraModule } from './lora';
import type { LinearWeight } from './weights';

/**
 * How an adapted linear layer computes y = x Wᵀ + bias + s·(x_d Aᵀ) Bᵀ: 'fused', one kernel that
 * adds the low-rank product into the base product's accumulators (on the GPU plan, matmul's
 * blocked kernel with the LoRA term as r extra K columns; on the CPU plan, `loraLinear`), or
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
  return gpu.kernels === 'cpu' ? 'unfused' : 'fused';
}

/** A LoRA dropout mask's seed (with `pass`, completed per pass) and drop probability (null: no dropout). */
export type DropoutMask = LoraDropout | null;

/** The adapter of one linear layer in one pass: its module, the saved u = x_d Aᵀ [rows, r], its scale and mask. */
export interface LoraBranch {
  module: LoraModule;
  u: BufferBinding;
  scale: number;
  dropout: DropoutMask;
}

/** y = x Wᵀ + bias (+ s·(x_d Aᵀ) Bᵀ when `lora` is given) for `rows` rows. */
export function linearForward(gpu: Gpu, rec: Recorder, path: LoraLinearPath, lin: LinearWeight, x: BufferBinding, y: BufferBinding, rows: number, lora: LoraBranch | null): void {
  if (!lora) {
    baseLinear(gpu, rec, lin, x, y, rows);
    return;
  }
  const { module, u, scale } = lora;
  loraInput(gpu, rec, path, lin, x, rows, lora);
  if (path === 'fused') {
    if (gpu.kernels === 'gpu') baseLinear(gpu, rec, lin, x, y, rows, { u, b: module.b, r: module.r, scale });
    else loraLinear(gpu, rec, { x, w: lin.w, wF16: lin.f16, bias: lin.bias, u, b: module.b, y, T: rows, K: lin.inFeatures, N: lin.outFeatures, r: module.r, scale });
    return;
  }
  baseLinear(gpu, rec, lin, x, y, rows);
  matmul(gpu, rec, { a: u, b: module.b, c: y, M: rows, N: lin.outFeatures, K: module.r, transB: true, alpha: scale, beta: 1, label: `${lin.kind}.lora_up` });
}

/**
 * u = x_d Aᵀ alone, the part of the forward a layer's backward reads (a recomputed layer needs
 * no more of its last linear layer).
 */
export function loraInput(gpu: Gpu, rec: Recorder, path: LoraLinearPath, lin: LinearWeight, x: BufferBinding, rows: number, lora: LoraBranch): void {
  const { module, u, dropout } = lora;
  // loraDown applies dropout inline; on the unfused path without dropout the register-blocked
  // matmul is used instead: 2.5-4x faster than loraDown on lavapipe at r = 16 (bench/NOTES.md).
  if (path === 'fused' || dropout) loraDown(gpu, rec, { x, a: module.a, u, T: rows, K: lin.inFeatures, r: module.r, dropout });
  else matmul(gpu, rec, { a: x, b: module.a, c: u, M: rows, N: module.r, K: lin.inFeatures, transB: true, label: `${lin.kind}.lora_down` });
}

/** y = x Wᵀ + bias (+ a folded LoRA term). */
export function baseLinear(gpu: Gpu, rec: Recorder, lin: LinearWeight, x: BufferBinding, y: BufferBinding, rows: number, lora?: MatmulLoraTerm): void {
  matmul(gpu, rec, {
    a: x,
    b: lin.w,
    c: y,
    M: rows,
    N: lin.outFeatures,
    K: lin.inFeatures,
    transB: true,
    bF16: lin.f16,
    ...(lin.bias ? { bias: lin.bias } : {}),
    ...(lora ? { lora } : {}),
    label: lin.kind,
  });
}

/** dx (+)= dy W, and the base-weight gradients when `full` is given. */
export function baseLinearBackward(gpu: Gpu, rec: Recorder, lin: LinearWeight, x: BufferBinding, dy: BufferBinding, dx: BufferBinding, rows: number, accumulateDx: boolean, ones: GPUBuffer, full?: BaseGradients): void {
  matmul(gpu, rec, { a: dy, b: lin.w, c: dx, M: rows, N: lin.inFeatures, K: lin.outFeatures, bF16: lin.f16, beta: accumulateDx ? 1 : 0, label: `${lin.kind}.dx` });
  if (full) {
    // dW += dyᵀ x, dbias += onesᵀ dy (the gradients were cleared at the start of the step).
    matmul(gpu, rec, { a: dy, b: x, c: full.grad(lin.w), M: lin.outFeatures, N: lin.inFeatures, K: rows, transA: true, beta: 1, label: `${lin.kind}.dW` });
    if (lin.bias) matmul(gpu, rec, { a: ones, b: dy, c: full.grad(lin.bias), M: 1, N: lin.outFeatures, K: rows, beta: 1, label: `${lin.kind}.dbias` });
  }
}

/** What the backward of one linear layer writes besides dx. */
export interface LinearBackwardTargets {
  /** Scratch for dL/du: LORA_DU_REGIONS regions [rows, r], `groupRegion(rows, r)` apart, one per role (`duRegion`). */
  du: GPUBuffer;
  /** N ones, for bias gradients (onesᵀ dy). */
  ones: GPUBuffer;
  /** Add into the LoRA gradients instead of overwriting them. */
  accumulate: boolean;
  /** Base-weight gradients (full-parameter training). */
  full?: BaseGradients;
  /**
   * 'fused': an adapted layer's dx (base and low-rank parts) comes from one tiled kernel; else
   * from matmul plus the low-rank kernel (default 'unfused', the CPU adapters' choice).
   */
  path?: LoraLinearPath;
  /**
   * Where grouped adapters leave their weight gradients for one dispatch per layer (the caller
   * flushes it); absent: each group computes its own.
   */
  deferred?: DeferredLoraGrads;
}

/** The region of `LinearBackwardTargets.du` of a linear layer of this role (a group's: of its first member). */
export function duRegion(t: LinearBackwardTargets, role: LinearRole, rows: number, r: number): BufferBinding {
  return { buffer: t.du, offset: ROLE_SEED_INDEX[role] * groupRegion(rows, r) * 4 };
}

/** Whether dx's base part may come from the LoRA group kernel: the fused path, no base gradients. */
export function fusedInputGrad(t: LinearBackwardTargets): boolean {
  return t.path === 'fused' && !t.full;
}

/**
 * dx (+)= dy W, the base-weight gradients when training them, and the LoRA gradients when adapted.
 * With `swiglu` (x = silu(gate) * up), where the fused input gradient can, dx is not stored and
 * the SwiGLU backward is done in its epilogue instead: returns whether it was (else the caller runs it).
 */
export function linearBackward(gpu: Gpu, rec: Recorder, lin: LinearWeight, x: BufferBinding, dy: BufferBinding, dx: BufferBinding, rows: number, accumulateDx: boolean, lora: LoraBranch | null, t: LinearBackwardTargets, swiglu?: SwigluEpilogue): boolean {
  const grouped = lora !== null && lora.module.a.buffer === lora.module.b.buffer;
  const withBase = grouped && fusedInputGrad(t);
  if (!withBase) baseLinearBackward(gpu, rec, lin, x, dy, dx, rows, accumulateDx, t.ones, t.full);
  if (!lora) return false;
  const epilogue = withBase && swiglu && !accumulateDx ? { swiglu } : {};
  const { module } = lora;
  if (grouped) {
    // The group kernels with one member: three dispatches where loraBackward takes four.
    const dyAt = 'buffer' in dy ? { buffer: dy.buffer, offset: dy.offset ?? 0 } : { buffer: dy, offset: 0 };
    const member = { outFeatures: lin.outFeatures, aOffset: module.a.offset / 4, bOffset: module.b.offset / 4, yOffset: dyAt.offset / 4 };
    const shape = {
      T: rows,
      K: lin.inFeatures,
      r: module.r,
      members: [lora.dropout ? { ...member, dropoutSeed: lora.dropout.seed } : member],
      dropoutP: lora.dropout?.p ?? 0,
      ...(lora.dropout?.pass ? { dropoutPass: lora.dropout.pass } : {}),
      x,
      dy: dyAt.buffer,
      u: lora.u,
      du: duRegion(t, lin.role, rows, module.r),
      grads: module.gradA.buffer,
      scale: lora.scale,
      accumulate: t.accumulate,
    };
    groupBackward(gpu, rec, {
      ...shape,
      region: groupRegion(rows, module.r),
      params: module.a.buffer,
      dx,
      ...(withBase ? { w: [lin.w], wF16: lin.f16, accumulateDx } : {}),
      ...epilogue,
      ...(t.deferred ? { deferGrad: true } : {}),
    });
    t.deferred?.add(shape);
    return 'swiglu' in epilogue;
  }
  loraBackward(gpu, rec, {
    x,
    dy,
    u: lora.u,
    a: module.a,
    b: module.b,
    du: t.du,
    gradA: module.gradA,
    gradB: module.gradB,
    dx,
    T: rows,
    K: lin.inFeatures,
    N: lin.outFeatures,
    r: module.r,
    scale: lora.scale,
    accumulate: t.accumulate,
    accumulateDx: true,
    dropout: lora.dropout,
  });
  return false;
}
