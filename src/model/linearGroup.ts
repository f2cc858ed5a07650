/**
 * Adapted linear layers that read the same input (q/k/v; gate/up), forward and backward as one
 * group: each LoRA step (u, y, du, the weight gradients, dx) is one dispatch for every member
 * instead of one per member (`loraGroup.ts`). Results equal running the members one by one
 * (`linearLayer.ts`) up to f32 rounding order.
 */
import type { BufferBinding, Gpu, Recorder } from '../gpu';
import { loraLinear, type LoraDropout, type PassSeed } from '../kernels/lora';
import { groupBackward, groupDown, groupLinear, groupRegion, MAX_GROUP_MEMBERS, type GroupMember, type GroupShape } from '../kernels/loraGroup';
import { matmul } from '../kernels/matmul';

import { ROLE_SEED_INDEX, type LinearRole } from './layout';
import { baseLinear, baseLinearBackward, duRegion, fusedInputGrad, type LinearBackwardTargets, type LoraLinearPath } from './linearLayer';
import type { LoraAdapter, LoraModule } from './lora';
import type { LinearWeight } from './weights';
import type { BufferView } from './workspace';

/** The adapters of a group in one pass. */
export interface LoraGroupBranch {
  /** One per member, in member order. */
  modules: LoraModule[];
  /** u of the first member; the others follow `groupRegion(rows, r)` floats apart in the same buffer. */
  u: BufferView;
  scale: number;
  /** Each member's dropout seed (with `pass`, completed per pass) and the shared probability (null: no dropout). */
  dropout: { seeds: number[]; p: number; pass?: PassSeed } | null;
}

/**
 * Whether these modules can run as a group: all present, at most MAX_GROUP_MEMBERS, and their
 * tensors in one flat buffer (an adapter over the binding limit may split them).
 */
export function groupable(modules: readonly (LoraModule | undefined)[]): modules is LoraModule[] {
  if (modules.length < 2 || modules.length > MAX_GROUP_MEMBERS) return false;
  if (modules.some((m) => !m)) return false;
  const first = modules[0]!;
  return modules.every((m) => m!.a.buffer === first.a.buffer && m!.b.buffer === first.a.buffer && m!.r === first.r);
}

/** Multiplier of a micro-batch's dropout seed in its masks' seeds (see maskDropout). */
export const MASK_SEED_MULTIPLIER = 7919;

/**
 * The LoRA dropout of layer l's module `lin` in a training pass (null: none). Its mask seed is
 * (7919 s + 31 l + the role's index) mod 2^32, one per (micro-batch, layer, module) so that
 * recomputation regenerates the mask; the kernels read the micro-batch's seed s from u32 word 1
 * of `passValues`, written before each pass, so a recorded pass replays with new masks.
 */
export function maskDropout(p: number, passValues: GPUBuffer | null, l: number, lin: LinearWeight): LoraDropout | null {
  if (!(p > 0) || !passValues) return null;
  return { seed: l * 31 + ROLE_SEED_INDEX[lin.role], p, pass: { values: passValues, multiplier: MASK_SEED_MULTIPLIER } };
}

/**
 * The adapters of layer l's linear layers `lins`, which share an input, as one group; null when
 * they cannot run as one (not all adapted, split buffers, u not in one buffer): then they run one by one.
 * `passValues` as for maskDropout (null: no dropout in this pass).
 */
export function loraGroupBranch(adapter: LoraAdapter | null, u: ReadonlyMap<LinearRole, BufferBinding>, lins: readonly LinearWeight[], l: number, passValues: GPUBuffer | null): LoraGroupBranch | null {
  if (!adapter) return null;
  const modules = lins.map((lin) => adapter.modules.get(lin));
  const first = u.get(lins[0]!.role);
  if (!groupable(modules) || !first || !('offset' in first)) return null;
  const masks = lins.map((lin) => maskDropout(adapter.config.dropout, passValues, l, lin));
  const dropout = masks[0] ? { seeds: masks.map((m) => m!.seed), p: masks[0].p, ...(masks[0].pass ? { pass: masks[0].pass } : {}) } : null;
  return { modules, u: first as BufferView, scale: adapter.scale, dropout };
}

/** The whole buffer of a set of views, which must share it. */
function common(views: readonly BufferView[], what: string): GPUBuffer {
  const b = views[0]!.buffer;
  if (views.some((v) => v.buffer !== b)) throw new Error(`linear group: the members' ${what} must be regions of one buffer`);
  return b;
}

function shape(lins: readonly LinearWeight[], ys: readonly BufferView[], rows: number, g: LoraGroupBranch): GroupShape {
  const r = g.modules[0]!.r;
  const members: GroupMember[] = g.modules.map((m, i) => ({
    outFeatures: lins[i]!.outFeatures,
    aOffset: m.a.offset / 4,
    bOffset: m.b.offset / 4,
    yOffset: ys[i]!.offset / 4,
    ...(g.dropout ? { dropoutSeed: g.dropout.seeds[i]! } : {}),
  }));
  const pass = g.dropout?.pass;
  return { T: rows, K: lins[0]!.inFeatures, r, members, region: groupRegion(rows, r), dropoutP: g.dropout?.p ?? 0, ...(pass ? { dropoutPass: pass } : {}) };
}

/** Member i's u [rows, r]. */
function memberU(g: LoraGroupBranch, i: number, rows: number): BufferBinding {
  const r = g.modules[0]!.r;
  return { buffer: g.u.buffer, offset: g.u.offset + i * groupRegion(rows, r) * 4, size: rows * r * 4 };
}

/** y_i = x W_iᵀ + bias_i + s·(x_di A_iᵀ) B_iᵀ for every member; the y_i are regions of one buffer. */
export function linearGroupForward(gpu: Gpu, rec: Recorder, path: LoraLinearPath, lins: readonly LinearWeight[], x: BufferBinding, ys: readonly BufferView[], rows: number, g: LoraGroupBranch): void {
  const s = shape(lins, ys, rows, g);
  const yBuffer = common(ys, 'outputs');
  const params = g.modules[0]!.a.buffer;
  const u = { buffer: g.u.buffer, offset: g.u.offset };
  // The unfused path keeps matmul for u where it can (no dropout): it is the faster kernel on CPU adapters.
  if (path === 'fused' || g.dropout) groupDown(gpu, rec, { ...s, x, params, u });
  else for (const [i, m] of g.modules.entries()) matmul(gpu, rec, { a: x, b: m.a, c: memberU(g, i, rows), M: rows, N: s.r, K: s.K, transB: true, label: `${lins[i]!.kind}.lora_down` });
  if (path === 'fused' && lins.every((l) => !l.bias && l.f16 === lins[0]!.f16)) {
    groupLinear(gpu, rec, { ...s, x, w: lins.map((l) => l.w), wF16: lins[0]!.f16, u, params, y: yBuffer, scale: g.scale });
    return;
  }
  for (const [i, m] of g.modules.entries()) {
    const lin = lins[i]!;
    const y = ys[i]!;
    if (path === 'fused') {
      loraLinear(gpu, rec, { x, w: lin.w, wF16: lin.f16, bias: lin.bias, u: memberU(g, i, rows), b: m.b, y, T: rows, K: s.K, N: lin.outFeatures, r: s.r, scale: g.scale });
    } else {
      baseLinear(gpu, rec, lin, x, y, rows);
      matmul(gpu, rec, { a: memberU(g, i, rows), b: m.b, c: y, M: rows, N: lin.outFeatures, K: s.r, transB: true, alpha: g.scale, beta: 1, label: `${lin.kind}.lora_up` });
    }
  }
}

/**
 * dx (+)= Σ dy_i W_i (one matmul per member; on the fused path inside the last group kernel), the
 * base-weight gradients when training them, and every member's LoRA gradients and low-rank part
 * of dx: three dispatches for the whole group (two when `t.deferred` takes the weight gradients).
 */
export function linearGroupBackward(gpu: Gpu, rec: Recorder, lins: readonly LinearWeight[], x: BufferBinding, dys: readonly BufferView[], dx: BufferBinding, rows: number, accumulateDx: boolean, g: LoraGroupBranch, t: LinearBackwardTargets): void {
  // On the fused path the group kernel computes dx's base part too (one tiled kernel, no matmuls).
  const withBase = fusedInputGrad(t) && lins.every((l) => l.f16 === lins[0]!.f16);
  if (!withBase) for (const [i, lin] of lins.entries()) baseLinearBackward(gpu, rec, lin, x, dys[i]!, dx, rows, accumulateDx || i > 0, t.ones, t.full);
  const s = shape(lins, dys, rows, g);
  const tensors = {
    x,
    dy: common(dys, 'output gradients'),
    u: { buffer: g.u.buffer, offset: g.u.offset },
    du: duRegion(t, lins[0]!.role, rows, s.r),
    grads: g.modules[0]!.gradA.buffer,
    scale: g.scale,
    accumulate: t.accumulate,
  };
  groupBackward(gpu, rec, {
    ...s,
    ...tensors,
    params: g.modules[0]!.a.buffer,
    dx,
    ...(withBase ? { w: lins.map((l) => l.w), wF16: lins[0]!.f16, accumulateDx } : {}),
    ...(t.deferred ? { deferGrad: true } : {}),
  });
  t.deferred?.add({ ...s, dropoutP: s.dropoutP ?? 0, ...tensors });
}
