import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu';
import type { PassSeed } from '../../src/kernels/loraCommon';
import { groupBackward, groupDown, groupLinear, groupRegion, layerGrad, type GroupMember, type LayerGradMember } from '../../src/kernels/loraGroup';
import { swigluBackward } from '../../src/kernels/activation';
import { swigluBackwardRef } from '../../src/kernels/reference/activation';
import { loraBackwardRef, loraDownRef, loraLinearRef, loraScale } from '../../src/kernels/reference/lora';
import { fromF16Array, toF16Array } from '../../src/util/f16';
import { expectClose } from '../helpers/compare';
import { getTestGpu, poisonedF32 } from '../helpers/gpu';
import { passSeedOf, seedBeforePass } from '../helpers/passSeed';
import { Rng } from '../helpers/random';

// Each member is checked against the single-module references (f64): a group must compute
// exactly what its members would alone. Sums run over at most a few hundred f32 terms.
const TOL = 1e-5;

interface Case {
  T: number;
  K: number;
  r: number;
  outs: number[];
  dropoutP: number;
  f16: boolean;
  accumulate: boolean;
  /** Give the kernels the members' seeds as completed per pass (PassSeed), with this pass seed. */
  passSeed?: number;
}

// Widths not multiples of any tile (a 64-column tile spans members), r below, at and past 16.
const CASES: Case[] = [
  { T: 7, K: 33, r: 4, outs: [24, 8, 8], dropoutP: 0, f16: false, accumulate: false },
  { T: 33, K: 40, r: 8, outs: [70, 30], dropoutP: 0.3, f16: true, accumulate: true },
  { T: 20, K: 65, r: 16, outs: [9, 100, 41], dropoutP: 0.1, f16: false, accumulate: false },
  { T: 5, K: 17, r: 20, outs: [13], dropoutP: 0.5, f16: true, accumulate: true },
  { T: 33, K: 40, r: 8, outs: [70, 30], dropoutP: 0.3, f16: true, accumulate: true, passSeed: 0xdeadbeef },
  { T: 20, K: 65, r: 16, outs: [9, 100, 41], dropoutP: 0.1, f16: false, accumulate: false, passSeed: 12_345 },
];

/** The members as the kernels get them: with a pass seed, seeds completed per pass that add up to the members' own. */
function kernelMembers<M extends { dropoutSeed?: number }>(members: readonly M[], passSeed: number | undefined): readonly M[] {
  return passSeed === undefined ? members : members.map((m) => ({ ...m, dropoutSeed: seedBeforePass(m.dropoutSeed!, passSeed) }));
}

/** The kernels' dropoutPass argument for a case (none without a pass seed). */
function passArg(gpu: Gpu, passSeed: number | undefined, made: GPUBuffer[]): { dropoutPass?: PassSeed } {
  if (passSeed === undefined) return {};
  const dropoutPass = passSeedOf(gpu, passSeed);
  made.push(dropoutPass.values);
  return { dropoutPass };
}

async function runCase(gpu: Gpu, c: Case, seed: number) {
  const { T, K, r, outs, dropoutP } = c;
  const rng = new Rng(seed);
  const region = groupRegion(T, r);
  const n = outs.length;
  // Members' tensors scattered through a flat buffer with gaps, as LoraAdapter lays them out.
  let at = 64;
  const members: GroupMember[] = [];
  let yAt = 0;
  for (const [g, N] of outs.entries()) {
    const aOffset = at;
    at += r * K + 64;
    const bOffset = at;
    at += N * r + 3;
    members.push({ outFeatures: N, aOffset, bOffset, yOffset: yAt, dropoutSeed: 100 + 7 * g });
    yAt += T * N + 5;
  }
  const flat = rng.f32(at);
  const oldGrads = rng.f32(at);
  const x = rng.f32(T * K);
  const ws32 = outs.map((N) => rng.f32(N * K));
  const wsBits = ws32.map((w) => toF16Array(w));
  const wsRef = c.f16 ? wsBits.map((w) => fromF16Array(w)) : ws32;
  const dy = rng.f32(yAt);
  const dx0 = rng.f32(T * K);
  const scale = loraScale(16, r);
  const made: GPUBuffer[] = [];
  const up = (d: Float32Array | Uint16Array) => {
    const b = gpu.upload(d);
    made.push(b);
    return b;
  };
  const poison = (count: number) => {
    const b = poisonedF32(gpu, count);
    made.push(b);
    return b;
  };
  const params = up(flat);
  const grads = up(oldGrads);
  const xb = up(x);
  const u = poison(n * region);
  const du = poison(n * region);
  const y = poison(yAt);
  const dx = up(dx0);
  const shape = { T, K, r, members: kernelMembers(members, c.passSeed), region, dropoutP, ...passArg(gpu, c.passSeed, made) };
  const rec = gpu.recorder();
  groupDown(gpu, rec, { ...shape, x: xb, params, u });
  groupLinear(gpu, rec, { ...shape, x: xb, w: (c.f16 ? wsBits : ws32).map(up), wF16: c.f16, u, params, y, scale });
  groupBackward(gpu, rec, { ...shape, x: xb, dy: up(dy), u, du, params, grads, dx, scale, accumulate: c.accumulate });
  // The same backward with the base part of dx in the same kernel (the fused path).
  const grads2 = up(oldGrads);
  const dx2 = up(dx0);
  const wBound = (c.f16 ? wsBits : ws32).map(up);
  groupBackward(gpu, rec, { ...shape, x: xb, dy: up(dy), u, du: poison(n * region), params, grads: grads2, dx: dx2, scale, accumulate: c.accumulate, w: wBound, wF16: c.f16, accumulateDx: c.accumulate });
  rec.submit();
  const [uGpu, yGpu, gGpu, dxGpu] = await Promise.all([gpu.readF32(u, n * region), gpu.readF32(y, yAt), gpu.readF32(grads, at), gpu.readF32(dx, T * K)]);
  const [g2Gpu, dx2Gpu] = await Promise.all([gpu.readF32(grads2, at), gpu.readF32(dx2, T * K)]);
  for (const b of made) gpu.release(b);

  const dxRef = Float64Array.from(dx0);
  // Base part Σ dy_g W_g, plus the old dx when accumulating, for the fused input gradient.
  const dx2Ref = c.accumulate ? Float64Array.from(dx0) : new Float64Array(T * K);
  for (const [g, m] of members.entries()) {
    const N = m.outFeatures;
    const a = flat.subarray(m.aOffset, m.aOffset + r * K);
    const b = flat.subarray(m.bOffset, m.bOffset + N * r);
    const dropout = dropoutP > 0 ? { seed: m.dropoutSeed!, p: dropoutP } : null;
    const uRef = loraDownRef(x, a, T, K, r, dropout);
    expectClose(uGpu.subarray(g * region, g * region + T * r), uRef, TOL, `u[${g}]`);
    const yRef = loraLinearRef(x, wsRef[g]!, null, uRef, b, T, K, N, r, scale);
    expectClose(yGpu.subarray(m.yOffset, m.yOffset + T * N), yRef, TOL, `y[${g}]`);
    const dyG = dy.subarray(m.yOffset, m.yOffset + T * N);
    const ref = loraBackwardRef({ x, dy: dyG, u: uRef, a, b, T, K, N, r, scale, dropout });
    const acc = (old: Float32Array, v: Float64Array) => v.map((e, i) => e + (c.accumulate ? old[i]! : 0));
    expectClose(gGpu.subarray(m.aOffset, m.aOffset + r * K), acc(oldGrads.subarray(m.aOffset), ref.gradA), TOL, `dA[${g}]`);
    expectClose(gGpu.subarray(m.bOffset, m.bOffset + N * r), acc(oldGrads.subarray(m.bOffset), ref.gradB), TOL, `dB[${g}]`);
    for (let i = 0; i < T * K; i++) dxRef[i] = dxRef[i]! + ref.dx[i]!;
    const w = wsRef[g]!;
    for (let t = 0; t < T; t++) {
      for (let k = 0; k < K; k++) {
        let s = ref.dx[t * K + k]!;
        for (let o = 0; o < N; o++) s += dyG[t * N + o]! * w[o * K + k]!;
        dx2Ref[t * K + k] = dx2Ref[t * K + k]! + s;
      }
    }
  }
  expectClose(dxGpu, dxRef, TOL, 'dx');
  expectClose(dx2Gpu, dx2Ref, TOL, 'dx with its base part');
  expect(Array.from(g2Gpu)).toEqual(Array.from(gGpu));
  // Gradient entries outside every member's tensors are left alone.
  const touched = new Uint8Array(at);
  for (const m of members) {
    touched.fill(1, m.aOffset, m.aOffset + r * K);
    touched.fill(1, m.bOffset, m.bOffset + m.outFeatures * r);
  }
  for (let i = 0; i < at; i++) if (!touched[i]) expect(gGpu[i]).toBe(oldGrads[i]);
}

describe('LoRA group kernels (q/k/v, gate/up in one dispatch each)', () => {
  for (const [i, c] of CASES.entries()) {
    it(`match the single-module references: T ${c.T}, K ${c.K}, r ${c.r}, outs ${c.outs.join('/')}, p ${c.dropoutP}${c.f16 ? ', f16 W' : ''}${c.accumulate ? ', accumulating' : ''}${c.passSeed !== undefined ? ', seeds completed per pass' : ''}`, async () => {
      await runCase(await getTestGpu(), c, 31 + i);
    });
  }

  it('gives each member its own dropout mask', async () => {
    // Two members with the same A: equal u without dropout, different u with it.
    const gpu = await getTestGpu();
    const [T, K, r] = [8, 64, 4];
    const rng = new Rng(3);
    const a = rng.f32(r * K);
    const flat = new Float32Array(2 * r * K + 128);
    flat.set(a, 0);
    flat.set(a, r * K + 64);
    const region = groupRegion(T, r);
    const members: GroupMember[] = [0, 1].map((g) => ({ outFeatures: 4, aOffset: g * (r * K + 64), bOffset: 0, yOffset: 0, dropoutSeed: 5 + g }));
    const made = [gpu.upload(rng.f32(T * K)), gpu.upload(flat), poisonedF32(gpu, 2 * region)];
    const rec = gpu.recorder();
    groupDown(gpu, rec, { T, K, r, members, region, dropoutP: 0.5, x: made[0]!, params: made[1]!, u: made[2]! });
    rec.submit();
    const u = await gpu.readF32(made[2]!, 2 * region);
    for (const b of made) gpu.release(b);
    let diff = 0;
    for (let i = 0; i < T * r; i++) diff = Math.max(diff, Math.abs(u[i]! - u[region + i]!));
    expect(diff).toBeGreaterThan(1e-3);
  });
});

// layerGrad takes the weight gradients of several groups (each with its own input and output
// gradient buffers) in one dispatch. Checked against the f64 reference (TOL) and against
// groupBackward's own gradients, which it must equal bit for bit.
interface LayerCase {
  T: number;
  r: number;
  /** Per group: member widths, input width, which dy / x binding it reads. */
  groups: { outs: number[]; K: number; dy: number; x: number }[];
  dropoutP: number;
  accumulate: boolean;
  passSeed?: number;
}

const LAYER_CASES: LayerCase[] = [
  {
    T: 19,
    r: 8,
    groups: [
      { outs: [40, 16, 16], K: 33, dy: 0, x: 0 },
      { outs: [33], K: 40, dy: 1, x: 1 },
      { outs: [70, 70], K: 33, dy: 2, x: 0 },
    ],
    dropoutP: 0,
    accumulate: false,
  },
  {
    T: 9,
    r: 20,
    groups: [
      { outs: [12, 5], K: 50, dy: 0, x: 1 },
      { outs: [65], K: 17, dy: 0, x: 0 },
      { outs: [7, 9, 3], K: 50, dy: 2, x: 1 },
    ],
    dropoutP: 0.25,
    accumulate: true,
  },
];
// The dropout case again, its seeds completed per pass.
LAYER_CASES.push({ ...LAYER_CASES[1]!, passSeed: 0xfffffff1 });

async function runLayerCase(gpu: Gpu, c: LayerCase, seed: number) {
  const { T, r, dropoutP } = c;
  const rng = new Rng(seed);
  const region = groupRegion(T, r);
  const scale = loraScale(16, r);
  let at = 32;
  let uAt = 0;
  const dyAt = [5, 3, 11];
  // x is bound at each group's offset by groupBackward: offsets of 64 floats (256 bytes).
  const xAt = [64, 128];
  const members: LayerGradMember[] = [];
  const groups: { members: GroupMember[]; K: number; dy: number; x: number; xOffset: number; uBase: number; first: number }[] = [];
  for (const [gi, grp] of c.groups.entries()) {
    const xOffset = xAt[grp.x]!;
    xAt[grp.x]! += Math.ceil((T * grp.K + 3) / 64) * 64;
    const gm: GroupMember[] = [];
    const uBase = uAt;
    for (const [i, N] of grp.outs.entries()) {
      const aOffset = at;
      at += r * grp.K + 7;
      const bOffset = at;
      at += N * r + 5;
      const yOffset = dyAt[grp.dy]!;
      dyAt[grp.dy]! += T * N + 1;
      const seedOf = 40 + 3 * members.length;
      gm.push({ outFeatures: N, aOffset, bOffset, yOffset, dropoutSeed: seedOf });
      members.push({ outFeatures: N, inFeatures: grp.K, aOffset, bOffset, dy: grp.dy, dyOffset: yOffset, x: grp.x, xOffset, uOffset: uBase + i * region, duOffset: uBase + i * region, dropoutSeed: seedOf });
      uAt += region;
    }
    groups.push({ members: gm, K: grp.K, dy: grp.dy, x: grp.x, xOffset, uBase, first: gi });
  }
  const flat = rng.f32(at);
  const oldGrads = rng.f32(at);
  const dys = dyAt.map((n) => rng.f32(n));
  const xs = xAt.map((n) => rng.f32(n));
  const u = rng.f32(uAt);
  const made: GPUBuffer[] = [];
  const up = (d: Float32Array) => {
    const b = gpu.upload(d);
    made.push(b);
    return b;
  };
  const dyB = dys.map(up);
  const xB = xs.map(up);
  const uB = up(u);
  const du = poisonedF32(gpu, uAt);
  made.push(du);
  const params = up(flat);
  const [grads1, grads2, grads3] = [up(oldGrads), up(oldGrads), up(oldGrads)];
  const pass = passArg(gpu, c.passSeed, made);
  const rec = gpu.recorder();
  for (const g of groups) {
    const shape = { T, K: g.K, r, members: kernelMembers(g.members, c.passSeed), region, dropoutP, ...pass };
    const common = { ...shape, x: { buffer: xB[g.x]!, offset: g.xOffset * 4, size: T * g.K * 4 }, dy: dyB[g.dy]!, u: { buffer: uB, offset: g.uBase * 4 }, params, scale, accumulate: c.accumulate };
    // With deferGrad the gradients are left alone; without, they are group_grad's (the du regions are the same).
    groupBackward(gpu, rec, { ...common, du: { buffer: du, offset: g.uBase * 4 }, grads: grads3, dx: up(new Float32Array(T * g.K)), deferGrad: true });
    groupBackward(gpu, rec, { ...common, du: { buffer: du, offset: g.uBase * 4 }, grads: grads1, dx: up(new Float32Array(T * g.K)) });
  }
  layerGrad(gpu, rec, { T, r, members: kernelMembers(members, c.passSeed), dy: dyB, x: xB, u: uB, du, grads: grads2, scale, dropoutP, accumulate: c.accumulate, ...pass });
  rec.submit();
  const [g1, g2, g3] = await Promise.all([gpu.readF32(grads1, at), gpu.readF32(grads2, at), gpu.readF32(grads3, at)]);
  for (const b of made) gpu.release(b);
  expect(Array.from(g3)).toEqual(Array.from(oldGrads));
  expect(Array.from(g2)).toEqual(Array.from(g1));
  const touched = new Uint8Array(at);
  for (const [i, m] of members.entries()) {
    const { outFeatures: N, inFeatures: K } = m;
    const ref = loraBackwardRef({
      x: xs[m.x]!.subarray(m.xOffset, m.xOffset + T * K),
      dy: dys[m.dy]!.subarray(m.dyOffset, m.dyOffset + T * N),
      u: u.subarray(m.uOffset, m.uOffset + T * r),
      a: flat.subarray(m.aOffset, m.aOffset + r * K),
      b: flat.subarray(m.bOffset, m.bOffset + N * r),
      T,
      K,
      N,
      r,
      scale,
      dropout: dropoutP > 0 ? { seed: m.dropoutSeed!, p: dropoutP } : null,
    });
    const acc = (old: Float32Array, v: Float64Array) => v.map((e, j) => e + (c.accumulate ? old[j]! : 0));
    expectClose(g2.subarray(m.aOffset, m.aOffset + r * K), acc(oldGrads.subarray(m.aOffset), ref.gradA), TOL, `dA[${i}]`);
    expectClose(g2.subarray(m.bOffset, m.bOffset + N * r), acc(oldGrads.subarray(m.bOffset), ref.gradB), TOL, `dB[${i}]`);
    touched.fill(1, m.aOffset, m.aOffset + r * K);
    touched.fill(1, m.bOffset, m.bOffset + N * r);
  }
  for (let i = 0; i < at; i++) if (!touched[i]) expect(g2[i]).toBe(oldGrads[i]);
}

describe('layerGrad (the weight gradients of a layer\'s groups in one dispatch)', () => {
  for (const [i, c] of LAYER_CASES.entries()) {
    it(`equals groupBackward's gradients and the reference: T ${c.T}, r ${c.r}, ${c.groups.length} groups, p ${c.dropoutP}${c.accumulate ? ', accumulating' : ''}${c.passSeed !== undefined ? ', seeds completed per pass' : ''}`, async () => {
      await runLayerCase(await getTestGpu(), c, 71 + i);
    });
  }
});

// The SwiGLU epilogue of the down projection's input gradient: dL/dgate and dL/dup from the
// dL/d(act) the kernel computes, checked against the f64 reference (TOL, which the swiglu
// factors, each below 1.2 in size, keep) and against groupBackward + swigluBackward bit for bit.
describe('groupBackward with the SwiGLU epilogue', () => {
  for (const [i, c] of [
    { T: 21, K: 70, N: 33, r: 8, f16: true, dropoutP: 0 },
    { T: 6, K: 130, N: 17, r: 16, f16: false, dropoutP: 0.2 },
  ].entries()) {
    it(`writes the gate and up gradients: T ${c.T}, K ${c.K}, N ${c.N}, r ${c.r}${c.f16 ? ', f16 W' : ''}, p ${c.dropoutP}`, async () => {
      const gpu = await getTestGpu();
      const { T, K, N, r } = c;
      const rng = new Rng(91 + i);
      const region = groupRegion(T, r);
      const members: GroupMember[] = [{ outFeatures: N, aOffset: 0, bOffset: r * K + 64, yOffset: 0, dropoutSeed: 9 }];
      const flat = rng.f32(r * K + 64 + N * r);
      const x = rng.f32(T * K);
      const w32 = rng.f32(N * K);
      const wRef = c.f16 ? fromF16Array(toF16Array(w32)) : w32;
      const dy = rng.f32(T * N);
      const u = rng.f32(T * r);
      // gate|up and dgate|dup as regions of one buffer each, at offsets of 64 floats.
      const span = Math.ceil((T * K) / 64) * 64;
      const gateUp = rng.f32(2 * span);
      const made: GPUBuffer[] = [];
      const up = (d: Float32Array | Uint16Array) => {
        const b = gpu.upload(d);
        made.push(b);
        return b;
      };
      const poison = (n: number) => {
        const b = poisonedF32(gpu, n);
        made.push(b);
        return b;
      };
      const shape = { T, K, r, members, region, dropoutP: c.dropoutP };
      const common = { ...shape, x: up(x), dy: up(dy), u: up(u), params: up(flat), scale: loraScale(16, r), accumulate: false, w: [up(c.f16 ? toF16Array(w32) : w32)], wF16: c.f16 };
      const gu = up(gateUp);
      const dFused = poison(2 * span);
      const dAct = poison(T * K);
      const dSplit = poison(2 * span);
      const rec = gpu.recorder();
      const epilogue = { gateUp: gu, gateOffset: 0, upOffset: span, dGateUp: dFused, dGateOffset: 0, dUpOffset: span };
      groupBackward(gpu, rec, { ...common, du: poison(region), grads: poison(flat.length), dx: poison(T * K), swiglu: epilogue });
      groupBackward(gpu, rec, { ...common, du: poison(region), grads: poison(flat.length), dx: dAct });
      swigluBackward(gpu, rec, { gate: { buffer: gu, offset: 0, size: T * K * 4 }, up: { buffer: gu, offset: span * 4, size: T * K * 4 }, dOut: dAct, dGate: dSplit, dUp: dSplit, dGateOffset: 0, dUpOffset: span, rows: T, width: K });
      rec.submit();
      const [fused, split] = await Promise.all([gpu.readF32(dFused, 2 * span), gpu.readF32(dSplit, 2 * span)]);
      for (const b of made) gpu.release(b);
      const dropout = c.dropoutP > 0 ? { seed: 9, p: c.dropoutP } : null;
      const ref = loraBackwardRef({ x, dy, u, a: flat.subarray(0, r * K), b: flat.subarray(r * K + 64), T, K, N, r, scale: loraScale(16, r), dropout });
      const dActRef = ref.dx.map((v, j) => {
        const [t, k] = [Math.floor(j / K), j % K];
        let s = v;
        for (let o = 0; o < N; o++) s += dy[t * N + o]! * wRef[o * K + k]!;
        return s;
      });
      const want = swigluBackwardRef(gateUp.subarray(0, T * K), gateUp.subarray(span, span + T * K), dActRef);
      expectClose(fused.subarray(0, T * K), want.dGate, TOL, 'dgate');
      expectClose(fused.subarray(span, span + T * K), want.dUp, TOL, 'dup');
      expect(Array.from(fused.subarray(0, T * K))).toEqual(Array.from(split.subarray(0, T * K)));
      expect(Array.from(fused.subarray(span, span + T * K))).toEqual(Array.from(split.subarray(span, span + T * K)));
    });
  }
});
