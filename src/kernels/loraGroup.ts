// LoRA of linear layers that share an input (q/k/v; gate/up), every member in one dispatch: bindings for shaders/loraGroup.wgsl.
import common from '../../shaders/loraCommon.wgsl?raw';
import own from '../../shaders/loraGroup.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type KernelSpec, type Recorder } from '../gpu';
import { dropoutTerms, LORA_TILES, passValues, type PassSeed } from './loraCommon';

// Layouts as in lora.ts (x [T, K], W_g [N_g, K], A_g [r, K], B_g [N_g, r]). A group's per-member
// activations (u_g, du_g [T, r]; y_g, dy_g [T, N_g]) live in regions of one buffer; A_g and B_g
// (and their gradients, at the same offsets) are element ranges of one flat LoRA buffer.

/** Most members a group may have (q, k, v). */
export const MAX_GROUP_MEMBERS = 3;
const code = common + own;
const { RC, DOWN_ROWS, GW_COLS, DX_COLS, DX_ROWS_PER_GROUP, LIN_BN } = LORA_TILES;

// The kernels that may mask x also bind the pass's values (the pass part of the mask seeds).
const DOWN: KernelSpec = { name: 'lora_group.down', code, entryPoint: 'group_down', bindings: ['uniform', 'read', 'read', 'write', 'values'] };
const GRAD: KernelSpec = { name: 'lora_group.grad', code, entryPoint: 'group_grad', bindings: ['uniform', 'read', 'read', 'read', 'read', 'write', 'values'] };
const LAYER_GRAD: KernelSpec = {
  name: 'lora_group.layer_grad',
  code,
  entryPoint: 'layer_grad',
  bindings: ['uniform', 'read', 'read', 'read', 'read', 'read', 'read', 'read', 'write', 'values'],
};
const DX: KernelSpec = { name: 'lora_group.dx', code, entryPoint: 'group_dx', bindings: ['uniform', 'read', 'read', 'write', 'values'] };
const linearSpecs = new Map<string, KernelSpec>();

/** group_linear, or group_input_grad (group_linear's bindings and tiles, and the pass's values). */
function linearSpec(tm: number, wF16: boolean, entryPoint: 'group_linear' | 'group_input_grad' = 'group_linear', swiglu = false): KernelSpec {
  const key = `${entryPoint}:${tm}:${wF16}:${swiglu}`;
  let spec = linearSpecs.get(key);
  if (!spec) {
    spec = {
      name: entryPoint === 'group_linear' ? 'lora_group.linear' : swiglu ? 'lora_group.input_grad_swiglu' : 'lora_group.input_grad',
      code,
      entryPoint,
      bindings: ['uniform', 'read', 'read', 'read', 'read', 'read', 'read', 'write', ...(entryPoint === 'group_input_grad' ? (['values'] as const) : [])],
      constants: { LIN_TM: tm, W_F16: wF16 ? 1 : 0, ...(swiglu ? { SWIGLU: 1 } : {}) },
    };
    linearSpecs.set(key, spec);
  }
  return spec;
}

/** One member of a group: its output width and where its tensors are. Offsets are in elements. */
export interface GroupMember {
  /** N_g, the member's output features. */
  outFeatures: number;
  /** Element offset of A_g [r, K] (and of its gradient) in the flat LoRA buffer. */
  aOffset: number;
  /** Element offset of B_g [N_g, r] (and of its gradient) in the flat LoRA buffer. */
  bOffset: number;
  /** Element offset of this member's [T, N_g] region in the y / dy buffer. */
  yOffset: number;
  /** Dropout seed of this member's mask (the same p for every member; with dropoutPass, completed per pass). */
  dropoutSeed?: number;
}

export interface GroupShape {
  T: number;
  K: number;
  r: number;
  members: readonly GroupMember[];
  /** Elements between consecutive members' regions of u / du (at least T * r). */
  region: number;
  /** LoRA dropout probability (0 or absent: none). Members' masks differ by their seeds. */
  dropoutP?: number;
  /** Every member's seed is completed per pass from this (see PassSeed); absent: fixed seeds. */
  dropoutPass?: PassSeed;
}

/** Elements between members' [T, r] regions: T * r rounded up to 256 bytes, so a region is bindable alone. */
export function groupRegion(T: number, r: number): number {
  return Math.ceil((T * r) / 64) * 64;
}

function floats(b: BufferBinding): number {
  const bytes = 'buffer' in b ? (b.size ?? b.buffer.size - (b.offset ?? 0)) : b.size;
  return Math.floor(bytes / 4);
}

function need(what: string, name: string, b: BufferBinding, n: number): void {
  if (floats(b) < n) throw new Error(`${what}: ${name} holds ${floats(b)} floats, needs ${n}`);
}

/** These kernels bind whole tensors (a group's regions, the flat LoRA buffer): each must fit one binding. */
function bindable(gpu: Gpu, what: string, bindings: Record<string, BufferBinding>): void {
  const max = gpu.limits.maxStorageBufferBindingSize;
  for (const [name, b] of Object.entries(bindings)) {
    if (floats(b) * 4 > max) throw new Error(`${what}: ${name} binds ${floats(b) * 4} bytes, over maxStorageBufferBindingSize ${max}`);
  }
}

function check(what: string, s: GroupShape): void {
  const { T, K, r, members } = s;
  for (const [k, v] of Object.entries({ T, K, r, region: s.region })) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${what}: ${k} must be a non-negative integer, got ${v}`);
  }
  if (r < 1) throw new Error(`${what}: r must be >= 1`);
  if (members.length < 1 || members.length > MAX_GROUP_MEMBERS) throw new Error(`${what}: ${members.length} members (1..${MAX_GROUP_MEMBERS})`);
  if (s.region < T * r) throw new Error(`${what}: region ${s.region} < T * r = ${T * r}`);
  const p = s.dropoutP ?? 0;
  if (p > 0 && members.some((m) => m.dropoutSeed === undefined)) throw new Error(`${what}: dropout needs every member's seed`);
}

/** Where the SwiGLU epilogue of groupBackward's input gradient reads gate/up and writes their gradients (element offsets). */
export interface SwigluEpilogue {
  /** gate [T, K] and up [T, K] (K = the down projection's input width), regions of one buffer. */
  gateUp: BufferBinding;
  gateOffset: number;
  upOffset: number;
  /** Output: dL/dgate and dL/dup [T, K], regions of one buffer. */
  dGateUp: BufferBinding;
  dGateOffset: number;
  dUpOffset: number;
}

function params(s: GroupShape, scale: number, flag: number, dropout: boolean, swiglu?: SwigluEpilogue): Uint8Array {
  const { T, K, r, members } = s;
  const p = dropout ? (s.dropoutP ?? 0) : 0;
  const terms = members.map((m) => (p > 0 ? dropoutTerms({ seed: m.dropoutSeed!, p, ...(s.dropoutPass ? { pass: s.dropoutPass } : {}) }) : null));
  const k0 = terms[0];
  const total = members.reduce((n, m) => n + m.outFeatures, 0);
  const out = new Params(256).u32(T).u32(K).u32(r).u32(members.length).f32(scale).u32(flag);
  out.u32(k0 ? 1 : 0).u32(k0?.threshold ?? 0).f32(k0?.invKeep ?? 1).u32(s.region).u32(total).u32(Math.ceil(r / RC));
  let start = 0;
  for (let g = 0; g < 4; g++) {
    const m = members[g];
    out.u32(m ? start : 0).u32(m?.outFeatures ?? 0).u32(m?.yOffset ?? 0).u32(m?.aOffset ?? 0);
    start += m?.outFeatures ?? 0;
  }
  for (let g = 0; g < 3; g++) out.u32(members[g]?.bOffset ?? 0).u32(terms[g]?.add ?? 0).u32(terms[g]?.mul ?? 0).u32(0);
  // Slot 3 (no group has a fourth member) holds the SwiGLU epilogue's offsets.
  out.u32(swiglu?.gateOffset ?? 0).u32(swiglu?.upOffset ?? 0).u32(swiglu?.dGateOffset ?? 0).u32(swiglu?.dUpOffset ?? 0);
  return out.bytes();
}

function paramFloats(s: GroupShape): number {
  return Math.max(...s.members.map((m) => Math.max(m.aOffset + s.r * s.K, m.bOffset + m.outFeatures * s.r)));
}

export interface GroupDownArgs extends GroupShape {
  /** [T, K], the shared input (raw: each member's dropout is applied inline). */
  x: BufferBinding;
  /** The flat LoRA parameter buffer holding every A_g. */
  params: BufferBinding;
  /** Output: u_g [T, r] at g * region. */
  u: BufferBinding;
}

/** u_g = x_dg A_gᵀ for every member (lora.ts's loraDown, once per group). */
export function groupDown(gpu: Gpu, rec: Recorder, a: GroupDownArgs): void {
  check('groupDown', a);
  const n = a.members.length;
  need('groupDown', 'x', a.x, a.T * a.K);
  need('groupDown', 'params', a.params, paramFloats(a));
  need('groupDown', 'u', a.u, (n - 1) * a.region + a.T * a.r);
  bindable(gpu, 'groupDown', { x: a.x, params: a.params, u: a.u });
  rec.dispatch(DOWN, {
    buffers: [a.x, a.params, a.u, passValues(gpu, a.dropoutPass)],
    params: params(a, 1, 0, true),
    workgroups: [Math.ceil(a.T / DOWN_ROWS), n * Math.ceil(a.r / RC)],
    label: 'lora_group.down',
  });
}

export interface GroupLinearArgs extends GroupShape {
  x: BufferBinding;
  /** W_g [N_g, K] of each member: f32, or packed f16 when wF16. */
  w: readonly BufferBinding[];
  wF16?: boolean;
  /** u_g [T, r] at g * region, from groupDown. */
  u: BufferBinding;
  params: BufferBinding;
  /** Output: y_g [T, N_g] at each member's yOffset. */
  y: BufferBinding;
  scale: number;
}

/** y_g = x W_gᵀ + scale · u_g B_gᵀ for every member in one tiled kernel (no bias). */
export function groupLinear(gpu: Gpu, rec: Recorder, a: GroupLinearArgs): void {
  check('groupLinear', a);
  const { T, K, members } = a;
  if (a.w.length !== members.length) throw new Error(`groupLinear: ${a.w.length} weights for ${members.length} members`);
  const wF16 = a.wF16 ?? false;
  need('groupLinear', 'x', a.x, T * K);
  need('groupLinear', 'u', a.u, (members.length - 1) * a.region + T * a.r);
  need('groupLinear', 'params', a.params, paramFloats(a));
  for (const [g, m] of members.entries()) {
    need('groupLinear', `w[${g}]`, a.w[g]!, wF16 ? Math.ceil((m.outFeatures * K) / 2) : m.outFeatures * K);
    need('groupLinear', 'y', a.y, m.yOffset + T * m.outFeatures);
  }
  bindable(gpu, 'groupLinear', { x: a.x, u: a.u, params: a.params, y: a.y });
  const total = members.reduce((n, m) => n + m.outFeatures, 0);
  const tm = T <= 16 ? 1 : 4;
  const w = [...a.w];
  while (w.length < 3) w.push(w.at(-1)!);
  rec.dispatch(linearSpec(tm, wF16), {
    buffers: [a.x, ...w, a.u, a.params, a.y],
    params: params(a, a.scale, 0, false),
    workgroups: [Math.ceil(total / LIN_BN), Math.ceil(T / (16 * tm))],
    label: 'lora_group.linear',
  });
}

export interface GroupBackwardArgs extends GroupShape {
  /** The shared input [T, K], raw (dropout is regenerated per member). */
  x: BufferBinding;
  /** dy_g [T, N_g] at each member's yOffset. */
  dy: BufferBinding;
  /** u_g at g * region, saved or recomputed from the forward. */
  u: BufferBinding;
  /** Scratch for du_g at g * region (caller-owned: the kernels run after this returns). */
  du: BufferBinding;
  params: BufferBinding;
  /** The flat gradient buffer (gradients at the parameters' offsets). */
  grads: BufferBinding;
  /**
   * dL/dx [T, K]. Without `w` it already holds the base part Σ dy_g W_g and the low-rank part
   * is added; with `w`, one tiled kernel writes (or, with accumulateDx, adds) both parts.
   */
  dx: BufferBinding;
  /** W_g of each member (f32, or packed f16 when wF16): compute the base part of dx here too. */
  w?: readonly BufferBinding[];
  wF16?: boolean;
  /** With `w`: add into dx instead of overwriting it. */
  accumulateDx?: boolean;
  /**
   * With `w` and one member (the MLP's down projection): dx is dL/d(silu(gate) * up), and instead
   * of storing it the kernel writes dL/dgate and dL/dup (`dx` is then left alone).
   */
  swiglu?: SwigluEpilogue;
  scale: number;
  /** Add into the gradients (gradient accumulation) instead of overwriting them. */
  accumulate: boolean;
  /**
   * Leave out the weight gradients (dA, dB): the caller computes them later with layerGrad, from
   * this call's dy, u, x and du (which must then stay untouched until it does).
   */
  deferGrad?: boolean;
}

/**
 * Backward of every member's low-rank path in three dispatches (lora.ts's loraBackward takes
 * four per member): du_g = scale · dy_g B_g; then dB_g (+)= scale · dy_gᵀ u_g and dA_g (+)= du_gᵀ x_dg
 * together; then dx += Σ_g mask_g/(1-p) ∘ (du_g A_g), with `w` also dx's base part Σ_g dy_g W_g.
 */
export function groupBackward(gpu: Gpu, rec: Recorder, a: GroupBackwardArgs): void {
  check('groupBackward', a);
  const { T, K, r, members } = a;
  const n = members.length;
  const regions = (n - 1) * a.region + T * r;
  need('groupBackward', 'x', a.x, T * K);
  need('groupBackward', 'u', a.u, regions);
  need('groupBackward', 'du', a.du, regions);
  need('groupBackward', 'dx', a.dx, T * K);
  need('groupBackward', 'params', a.params, paramFloats(a));
  need('groupBackward', 'grads', a.grads, paramFloats(a));
  for (const m of members) need('groupBackward', 'dy', a.dy, m.yOffset + T * m.outFeatures);
  bindable(gpu, 'groupBackward', { x: a.x, dy: a.dy, u: a.u, du: a.du, params: a.params, grads: a.grads, dx: a.dx });
  const rChunks = Math.ceil(r / RC);
  const values = passValues(gpu, a.dropoutPass);
  rec.dispatch(DOWN, {
    buffers: [a.dy, a.params, a.du, values],
    params: params(a, a.scale, 1, false),
    workgroups: [Math.ceil(T / DOWN_ROWS), n * rChunks],
    label: 'lora_group.du',
  });
  const widest = Math.max(K, ...members.map((m) => m.outFeatures));
  if (!a.deferGrad) rec.dispatch(GRAD, {
    buffers: [a.dy, a.u, a.x, a.du, a.grads, values],
    params: params(a, a.scale, a.accumulate ? 1 : 0, true),
    workgroups: [Math.ceil(widest / GW_COLS), 2 * n * rChunks],
    label: 'lora_group.grad',
  });
  if (!a.w) {
    rec.dispatch(DX, {
      buffers: [a.du, a.params, a.dx, values],
      params: params(a, 1, 1, true),
      workgroups: [Math.ceil(K / DX_COLS), Math.ceil(T / DX_ROWS_PER_GROUP)],
      label: 'lora_group.dx',
    });
    return;
  }
  const wF16 = a.wF16 ?? false;
  if (a.w.length !== n) throw new Error(`groupBackward: ${a.w.length} weights for ${n} members`);
  for (const [g, m] of members.entries()) need('groupBackward', `w[${g}]`, a.w[g]!, wF16 ? Math.ceil((m.outFeatures * K) / 2) : m.outFeatures * K);
  const tm = T <= 16 ? 1 : 4;
  const w = [...a.w];
  const sw = a.swiglu;
  if (sw) {
    if (n !== 1 || a.accumulateDx) throw new Error('groupBackward: the SwiGLU epilogue takes one member and no accumulateDx');
    need('groupBackward', 'gateUp', sw.gateUp, Math.max(sw.gateOffset, sw.upOffset) + T * K);
    need('groupBackward', 'dGateUp', sw.dGateUp, Math.max(sw.dGateOffset, sw.dUpOffset) + T * K);
    bindable(gpu, 'groupBackward', { gateUp: sw.gateUp, dGateUp: sw.dGateUp });
    w.push(sw.gateUp); // read as gl_w1
  }
  while (w.length < 3) w.push(w.at(-1)!);
  rec.dispatch(linearSpec(tm, wF16, 'group_input_grad', !!sw), {
    buffers: [a.dy, ...w, a.du, a.params, sw ? sw.dGateUp : a.dx, values],
    params: params(a, 1, a.accumulateDx ? 1 : 0, true, sw),
    workgroups: [Math.ceil(K / LIN_BN), Math.ceil(T / (16 * tm))],
    label: sw ? 'lora_group.input_grad_swiglu' : 'lora_group.input_grad',
  });
}

/** Most members layerGrad takes in one dispatch. */
export const MAX_LAYER_GRAD_MEMBERS = 6;
/** Bindings layerGrad has for output gradients and for inputs. */
export const LAYER_GRAD_DY_BINDINGS = 3;
export const LAYER_GRAD_X_BINDINGS = 2;

/** A member of any group of a layer, with each of its tensors located in layerGrad's bindings. Offsets in elements. */
export interface LayerGradMember {
  outFeatures: number;
  inFeatures: number;
  /** A_g [r, K_g] and B_g [N_g, r] in the flat gradient buffer. */
  aOffset: number;
  bOffset: number;
  /** dy_g [T, N_g]: which dy binding, and where in it. */
  dy: number;
  dyOffset: number;
  /** x_g [T, K_g] (raw: the dropout mask is regenerated): which x binding, and where in it. */
  x: number;
  xOffset: number;
  /** u_g and du_g [T, r] in the u and du bindings: multiples of groupRegion(T, r) (at most 255 of them). */
  uOffset: number;
  duOffset: number;
  dropoutSeed?: number;
}

export interface LayerGradArgs {
  T: number;
  r: number;
  members: readonly LayerGradMember[];
  /** 1..3 buffers holding the members' dy. */
  dy: readonly BufferBinding[];
  /** 1..2 buffers holding the members' inputs. */
  x: readonly BufferBinding[];
  u: BufferBinding;
  du: BufferBinding;
  grads: BufferBinding;
  scale: number;
  dropoutP?: number;
  /** Every member's seed is completed per pass from this (see PassSeed); absent: fixed seeds. */
  dropoutPass?: PassSeed;
  accumulate: boolean;
}

/**
 * dB_g (+)= scale · dy_gᵀ u_g and dA_g (+)= du_gᵀ x_dg for members of several groups in one
 * dispatch (groupBackward's weight-gradient kernel, with per-member inputs): what a layer's
 * groups left out with `deferGrad`. Equal to groupBackward's gradients bit for bit.
 */
export function layerGrad(gpu: Gpu, rec: Recorder, a: LayerGradArgs): void {
  const { T, r, members } = a;
  const what = 'layerGrad';
  if (members.length < 1 || members.length > MAX_LAYER_GRAD_MEMBERS) throw new Error(`${what}: ${members.length} members (1..${MAX_LAYER_GRAD_MEMBERS})`);
  if (a.dy.length < 1 || a.dy.length > LAYER_GRAD_DY_BINDINGS) throw new Error(`${what}: ${a.dy.length} dy buffers (1..${LAYER_GRAD_DY_BINDINGS})`);
  if (a.x.length < 1 || a.x.length > LAYER_GRAD_X_BINDINGS) throw new Error(`${what}: ${a.x.length} x buffers (1..${LAYER_GRAD_X_BINDINGS})`);
  if (!Number.isInteger(T) || T < 0 || !Number.isInteger(r) || r < 1) throw new Error(`${what}: T must be >= 0 and r >= 1, got T=${T} r=${r}`);
  const p = a.dropoutP ?? 0;
  if (p > 0 && members.some((m) => m.dropoutSeed === undefined)) throw new Error(`${what}: dropout needs every member's seed`);
  for (const [g, m] of members.entries()) {
    if (m.dy < 0 || m.dy >= a.dy.length || m.x < 0 || m.x >= a.x.length) throw new Error(`${what}: member ${g} names a missing binding`);
    need(what, `dy[${m.dy}]`, a.dy[m.dy]!, m.dyOffset + T * m.outFeatures);
    need(what, `x[${m.x}]`, a.x[m.x]!, m.xOffset + T * m.inFeatures);
    need(what, 'u', a.u, m.uOffset + T * r);
    need(what, 'du', a.du, m.duOffset + T * r);
    need(what, 'grads', a.grads, Math.max(m.aOffset + r * m.inFeatures, m.bOffset + m.outFeatures * r));
  }
  const dy = [...a.dy];
  while (dy.length < LAYER_GRAD_DY_BINDINGS) dy.push(dy.at(-1)!);
  const x = [...a.x];
  while (x.length < LAYER_GRAD_X_BINDINGS) x.push(x.at(-1)!);
  bindable(gpu, what, { ...Object.fromEntries(dy.map((b, i) => [`dy[${i}]`, b])), ...Object.fromEntries(x.map((b, i) => [`x[${i}]`, b])), u: a.u, du: a.du, grads: a.grads });
  const rChunks = Math.ceil(r / RC);
  const terms = members.map((m) => (p > 0 ? dropoutTerms({ seed: m.dropoutSeed!, p, ...(a.dropoutPass ? { pass: a.dropoutPass } : {}) }) : null));
  const k0 = terms[0];
  const region = groupRegion(T, r);
  const regionOf = (what: string, offset: number) => {
    const i = offset / region;
    if (!Number.isInteger(i) || i > 255) throw new Error(`layerGrad: ${what} offset ${offset} is not a multiple (up to 255) of the region ${region}`);
    return i;
  };
  const out = new Params(256).u32(T).u32(r).u32(members.length).u32(rChunks).f32(a.scale).u32(a.accumulate ? 1 : 0);
  out.u32(k0 ? 1 : 0).u32(k0?.threshold ?? 0).f32(k0?.invKeep ?? 1).u32(region).u32(k0?.mul ?? 0).u32(0);
  const slot = (f: (m: LayerGradMember, g: number) => number[]) => {
    for (let g = 0; g < MAX_LAYER_GRAD_MEMBERS; g++) for (const v of members[g] ? f(members[g]!, g) : [0, 0, 0, 0]) out.u32(v);
  };
  slot((m) => [m.dyOffset, m.outFeatures, m.xOffset, m.inFeatures]);
  slot((m, g) => [m.aOffset, m.bOffset, terms[g]?.add ?? 0, regionOf('u', m.uOffset) | (regionOf('du', m.duOffset) << 8) | (m.dy << 16) | (m.x << 24)]);
  const widest = Math.max(...members.map((m) => Math.max(m.inFeatures, m.outFeatures)));
  rec.dispatch(LAYER_GRAD, {
    buffers: [...dy, ...x, a.u, a.du, a.grads, passValues(gpu, a.dropoutPass)],
    params: out.bytes(),
    workgroups: [Math.ceil(widest / GW_COLS), 2 * members.length * rChunks],
    label: 'lora_group.layer_grad',
  });
}
