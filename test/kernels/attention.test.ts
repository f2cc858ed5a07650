import { describe, expect, it, vi } from 'vitest';
import type { Gpu, KernelPlan, RecordedCommands, Recorder } from '../../src/gpu';
import {
  appendKv,
  attentionBackward,
  attentionDecode,
  attentionDecodeSplits,
  attentionDecodeWorkspaceBytes,
  attentionForward,
} from '../../src/kernels/attention';
import {
  appendKvRef,
  attentionBackwardRef,
  attentionDecodeRef,
  attentionForwardRef,
  type AttentionRefDims,
} from '../../src/kernels/reference/attention';
import { selfTestCases } from '../../src/selftest/attention';
import { expectClose, maxRelError, numericGrad } from '../helpers/compare';
import { describeSelfTestCases, getTestGpu, poisonedF32 } from '../helpers/gpu';
import { Rng } from '../helpers/random';

// Bounds, relative to the largest reference magnitude (f32 kernels vs f64 references):
const FWD_TOL = 1e-5; // out and lse
const BWD_TOL = 5e-5; // dq, dk, dv: longer f32 sums (delta, dS, accumulation over queries)

interface Shape {
  B: number;
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  pastLen?: number;
  scale?: number;
  /** Half-width of the uniform distribution of q (a larger one sharpens the softmax). */
  qRange?: number;
  /** k/v rows past pastLen + T, filled with NaN: a kernel reading them would show. */
  extraRows?: number;
}

const kvLenOf = (s: Shape) => (s.pastLen ?? 0) + s.T;
const capOf = (s: Shape) => kvLenOf(s) + (s.extraRows ?? 0);
/** Kernel and reference dims of a shape. */
const dimsOf = (s: Shape): AttentionRefDims => ({
  B: s.B,
  T: s.T,
  Hq: s.Hq,
  Hkv: s.Hkv,
  D: s.D,
  scale: s.scale,
  pastLen: s.pastLen,
  kvCapacity: capOf(s),
});

/** Rows 0 .. kvLen-1 of each sequence of a [B, cap, Hkv, D] tensor. */
function usedRows(x: ArrayLike<number>, s: Shape): Float64Array {
  const row = s.Hkv * s.D;
  const out = new Float64Array(s.B * kvLenOf(s) * row);
  for (let b = 0; b < s.B; b++)
    for (let i = 0; i < kvLenOf(s) * row; i++) out[b * kvLenOf(s) * row + i] = x[b * capOf(s) * row + i]!;
  return out;
}

const label = (s: Shape) =>
  `B=${s.B} T=${s.T} Hq=${s.Hq} Hkv=${s.Hkv} D=${s.D}` +
  (s.pastLen ? ` pastLen=${s.pastLen}` : '') +
  (s.scale !== undefined ? ` scale=${s.scale}` : '') +
  (s.extraRows ? ` capacity=${capOf(s)}` : '');

/** Random q, k, v, dout for a shape, never zeros (k/v rows past pastLen + T: NaN). */
function inputs(s: Shape, seed: number) {
  const rng = new Rng(seed);
  const r = s.qRange ?? 1;
  const k = rng.f32(s.B * capOf(s) * s.Hkv * s.D);
  const v = rng.f32(k.length);
  const row = s.Hkv * s.D;
  for (let b = 0; b < s.B; b++) {
    k.fill(NaN, (b * capOf(s) + kvLenOf(s)) * row, (b + 1) * capOf(s) * row);
    v.fill(NaN, (b * capOf(s) + kvLenOf(s)) * row, (b + 1) * capOf(s) * row);
  }
  return { q: rng.f32(s.B * s.T * s.Hq * s.D, -r, r), k, v, dout: rng.f32(s.B * s.T * s.Hq * s.D) };
}

/** Runs forward (and backward) on the GPU with every output poisoned with NaN first. */
async function runAttention(gpu: Gpu, s: Shape, x: ReturnType<typeof inputs>, withBackward: boolean, kernels: KernelPlan) {
  const nq = x.q.length;
  const nkv = x.k.length;
  const nrow = s.B * s.Hq * s.T;
  const b = {
    q: gpu.upload(x.q),
    k: gpu.upload(x.k),
    v: gpu.upload(x.v),
    dout: gpu.upload(x.dout),
    out: poisonedF32(gpu, nq),
    lse: poisonedF32(gpu, nrow),
    dq: poisonedF32(gpu, nq),
    dk: poisonedF32(gpu, nkv),
    dv: poisonedF32(gpu, nkv),
    delta: poisonedF32(gpu, nrow),
  };
  try {
    const rec = gpu.recorder('attention test');
    attentionForward(gpu, rec, { ...dimsOf(s), ...b, kernels });
    if (withBackward) attentionBackward(gpu, rec, { ...dimsOf(s), ...b, kernels });
    await gpu.checked(() => rec.submit());
    return {
      out: await gpu.readF32(b.out, nq),
      lse: await gpu.readF32(b.lse, nrow),
      dq: withBackward ? await gpu.readF32(b.dq, nq) : null,
      dk: withBackward ? await gpu.readF32(b.dk, nkv) : null,
      dv: withBackward ? await gpu.readF32(b.dv, nkv) : null,
    };
  } finally {
    for (const buf of Object.values(b)) gpu.release(buf);
  }
}

describe('attention references', () => {
  it('backward reference matches central finite differences of the forward reference', () => {
    for (const dims of [
      { B: 2, T: 4, Hq: 4, Hkv: 2, D: 3 },
      { B: 1, T: 3, Hq: 2, Hkv: 1, D: 2, pastLen: 2, scale: 0.9 },
    ] as AttentionRefDims[]) {
      const kvLen = (dims.pastLen ?? 0) + dims.T;
      const rng = new Rng(11);
      const q = Float64Array.from(rng.f32(dims.B * dims.T * dims.Hq * dims.D, -2, 2));
      const k = Float64Array.from(rng.f32(dims.B * kvLen * dims.Hkv * dims.D, -2, 2));
      const v = Float64Array.from(rng.f32(k.length));
      const dout = rng.f32(q.length);
      const loss = () => {
        const { out } = attentionForwardRef(q, k, v, dims);
        return out.reduce((s, o, i) => s + o * dout[i]!, 0);
      };
      const analytic = attentionBackwardRef(dout, q, k, v, dims);
      for (const [name, x, g] of [
        ['q', q, analytic.dq],
        ['k', k, analytic.dk],
        ['v', v, analytic.dv],
      ] as const) {
        expect(maxRelError(g, numericGrad(x, loss)), `d${name}`).toBeLessThan(1e-7);
      }
    }
  });

  it('forward reference with scale 0 averages v over the visible keys', () => {
    const dims = { B: 1, T: 3, Hq: 2, Hkv: 1, D: 4, pastLen: 2, scale: 0 };
    const rng = new Rng(5);
    const q = rng.f32(1 * 3 * 2 * 4);
    const k = rng.f32(5 * 4);
    const v = rng.f32(5 * 4);
    const { out, lse } = attentionForwardRef(q, k, v, dims);
    for (let t = 0; t < 3; t++)
      for (let h = 0; h < 2; h++) {
        const nKeys = 2 + t + 1;
        expect(lse[h * 3 + t]).toBeCloseTo(Math.log(nKeys), 12);
        for (let d = 0; d < 4; d++) {
          let mean = 0;
          for (let j = 0; j < nKeys; j++) mean += v[j * 4 + d]! / nKeys;
          expect(out[(t * 2 + h) * 4 + d]).toBeCloseTo(mean, 12);
        }
      }
  });
});

const shapes: Shape[] = [
  { B: 1, T: 1, Hq: 1, Hkv: 1, D: 8 },
  { B: 2, T: 7, Hq: 4, Hkv: 2, D: 24 },
  { B: 1, T: 33, Hq: 3, Hkv: 1, D: 64 },
  { B: 1, T: 70, Hq: 2, Hkv: 2, D: 16 }, // two row blocks of 64
  { B: 1, T: 20, Hq: 4, Hkv: 1, D: 128 },
  { B: 2, T: 13, Hq: 6, Hkv: 3, D: 32, scale: 1, qRange: 3 }, // sharp softmax: large score gaps
  { B: 2, T: 9, Hq: 4, Hkv: 2, D: 12, pastLen: 5, extraRows: 4 }, // prefill continuing a cache
  // Lengths that are no multiple of any tile ('gpu' plan: 16/32/64 rows, 8/16/32 keys), at the
  // models' head dims.
  { B: 3, T: 67, Hq: 4, Hkv: 1, D: 32 },
  { B: 2, T: 131, Hq: 6, Hkv: 2, D: 64 },
  { B: 2, T: 1, Hq: 2, Hkv: 1, D: 64 },
  { B: 1, T: 37, Hq: 2, Hkv: 1, D: 128, pastLen: 30, extraRows: 3 },
];

// Both kernel families run on every device (CI: lavapipe): 'cpu' is what CPU adapters pick,
// 'gpu' what real GPUs pick.
const plans: KernelPlan[] = ['cpu', 'gpu'];

describe.each(plans)('attentionForward and attentionBackward, %s kernels', (kernels) => {
  shapes.forEach((s, n) => {
    it(`match the references for ${label(s)}`, async () => {
      const gpu = await getTestGpu();
      const x = inputs(s, 100 + n);
      const got = await runAttention(gpu, s, x, true, kernels);
      const fwd = attentionForwardRef(x.q, x.k, x.v, dimsOf(s));
      const bwd = attentionBackwardRef(x.dout, x.q, x.k, x.v, dimsOf(s));
      expectClose(got.out, fwd.out, FWD_TOL, 'out');
      expectClose(got.lse, fwd.lse, FWD_TOL, 'lse');
      expectClose(got.dq!, bwd.dq, BWD_TOL, 'dq');
      // dk/dv rows past pastLen + T are not written (still NaN) and not part of the result.
      expectClose(usedRows(got.dk!, s), usedRows(bwd.dk, s), BWD_TOL, 'dk');
      expectClose(usedRows(got.dv!, s), usedRows(bwd.dv, s), BWD_TOL, 'dv');
    });
  });

  it('prefill over a cache (pastLen) equals the last rows of the whole-sequence forward', async () => {
    const gpu = await getTestGpu();
    const past = 11;
    const whole: Shape = { B: 2, T: past + 6, Hq: 4, Hkv: 2, D: 16 };
    const x = inputs(whole, 7);
    const full = await runAttention(gpu, whole, x, false, kernels);
    // The prefill's queries are the last 6 rows of each sequence; k/v are the same buffers.
    const rowElems = whole.Hq * whole.D;
    const qTail = new Float32Array(2 * 6 * rowElems);
    for (let b = 0; b < 2; b++) qTail.set(x.q.subarray((b * whole.T + past) * rowElems, (b + 1) * whole.T * rowElems), b * 6 * rowElems);
    const prefill: Shape = { ...whole, T: 6, pastLen: past };
    const part = await runAttention(gpu, prefill, { ...x, q: qTail, dout: qTail }, false, kernels);
    const expected = new Float32Array(qTail.length);
    for (let b = 0; b < 2; b++) expected.set(full.out.subarray((b * whole.T + past) * rowElems, (b + 1) * whole.T * rowElems), b * 6 * rowElems);
    expectClose(part.out, expected, 1e-6, 'prefill out vs whole forward');
  });

  it('is deterministic: the backward gives bit-identical gradients twice', async () => {
    const gpu = await getTestGpu();
    const s: Shape = { B: 1, T: 40, Hq: 6, Hkv: 2, D: 16 };
    const x = inputs(s, 3);
    const a = await runAttention(gpu, s, x, true, kernels);
    const b = await runAttention(gpu, s, x, true, kernels);
    expect(Buffer.from(a.dq!.buffer).equals(Buffer.from(b.dq!.buffer))).toBe(true);
    expect(Buffer.from(a.dk!.buffer).equals(Buffer.from(b.dk!.buffer))).toBe(true);
    expect(Buffer.from(a.dv!.buffer).equals(Buffer.from(b.dv!.buffer))).toBe(true);
  });

  it('rejects shapes it cannot run', async () => {
    const gpu = await getTestGpu();
    const buf = gpu.createBuffer(1 << 16);
    const b = { q: buf, k: buf, v: buf, out: buf, lse: buf };
    const rec = gpu.recorder();
    expect(() => attentionForward(gpu, rec, { ...b, B: 1, T: 4, Hq: 3, Hkv: 2, D: 8 })).toThrow(/divide/);
    expect(() => attentionForward(gpu, rec, { ...b, B: 1, T: 4, Hq: 2, Hkv: 1, D: 10 })).toThrow(/multiple of 4/);
    expect(() => attentionForward(gpu, rec, { ...b, B: 1, T: 4, Hq: 2, Hkv: 1, D: 256 })).toThrow(/multiple of 4/);
    expect(() => attentionForward(gpu, rec, { ...b, B: 1, T: 4, Hq: 2, Hkv: 1, D: 8, pastLen: 3, kvCapacity: 6 })).toThrow(
      /kvCapacity/,
    );
    expect(() => attentionForward(gpu, rec, { ...b, B: 64, T: 64, Hq: 4, Hkv: 1, D: 8 })).toThrow(/needs/);
    expect(rec.length).toBe(0);
    gpu.release(buf);
  });
});

describe.each(plans)('attentionDecode and appendKv, %s kernels', (kernels) => {
  it('appendKv writes rows at pos and leaves the rest of the cache alone', async () => {
    const gpu = await getTestGpu();
    const d = { B: 2, rows: 3, Hkv: 2, D: 8, capacity: 10, pos: 4 };
    const rng = new Rng(21);
    const kNew = rng.f32(d.B * d.rows * d.Hkv * d.D);
    const vNew = rng.f32(kNew.length);
    const kc = rng.f32(d.B * d.capacity * d.Hkv * d.D);
    const vc = rng.f32(kc.length);
    const b = { kNew: gpu.upload(kNew), vNew: gpu.upload(vNew), kCache: gpu.upload(kc), vCache: gpu.upload(vc) };
    const rec = gpu.recorder();
    appendKv(gpu, rec, { ...d, ...b });
    rec.submit();
    const ref = appendKvRef(kNew, vNew, kc, vc, d);
    expect(Array.from(await gpu.readF32(b.kCache, kc.length))).toEqual(Array.from(ref.kCache));
    expect(Array.from(await gpu.readF32(b.vCache, vc.length))).toEqual(Array.from(ref.vCache));
    for (const buf of Object.values(b)) gpu.release(buf);
  });

  // The cache is filled by appendKv (prompt rows, then the new token's row), rows past kvLen
  // are NaN (so reading one would show), and decode must equal the GPU forward's last row.
  const decodeCases = [
    { B: 2, Hq: 9, Hkv: 3, D: 64, kvLen: 150, capacity: 160 },
    { B: 1, Hq: 4, Hkv: 4, D: 24, kvLen: 1, capacity: 5 },
    { B: 3, Hq: 8, Hkv: 2, D: 128, kvLen: 70, capacity: 72, chunk: 7 },
    { B: 1, Hq: 2, Hkv: 1, D: 8, kvLen: 300, capacity: 300, chunk: 1 },
    { B: 2, Hq: 4, Hkv: 1, D: 32, kvLen: 131, capacity: 140, chunk: 67 }, // a split past one 64-key step
    { B: 1, Hq: 6, Hkv: 2, D: 24, kvLen: 67, capacity: 67, chunk: 5 }, // key groups of 6-wide columns
  ];
  for (const c of decodeCases) {
    it(`matches the forward's last row for B=${c.B} Hq=${c.Hq} Hkv=${c.Hkv} D=${c.D} kvLen=${c.kvLen}${c.chunk ? ` chunk=${c.chunk}` : ''}`, async () => {
      const gpu = await getTestGpu();
      const s: Shape = { B: c.B, T: c.kvLen, Hq: c.Hq, Hkv: c.Hkv, D: c.D };
      const x = inputs(s, c.kvLen + c.D);
      const full = await runAttention(gpu, s, x, false, kernels);
      const qRow = c.Hq * c.D;
      const kvRow = c.Hkv * c.D;
      const qLast = new Float32Array(c.B * qRow);
      const kLast = new Float32Array(c.B * kvRow);
      const vLast = new Float32Array(c.B * kvRow);
      const kPrompt = new Float32Array(c.B * (c.kvLen - 1) * kvRow);
      const vPrompt = new Float32Array(kPrompt.length);
      const wantOut = new Float32Array(c.B * qRow);
      for (let b = 0; b < c.B; b++) {
        const qEnd = (b + 1) * c.kvLen * qRow;
        qLast.set(x.q.subarray(qEnd - qRow, qEnd), b * qRow);
        wantOut.set(full.out.subarray(qEnd - qRow, qEnd), b * qRow);
        const kvEnd = (b + 1) * c.kvLen * kvRow;
        kLast.set(x.k.subarray(kvEnd - kvRow, kvEnd), b * kvRow);
        vLast.set(x.v.subarray(kvEnd - kvRow, kvEnd), b * kvRow);
        kPrompt.set(x.k.subarray(b * c.kvLen * kvRow, kvEnd - kvRow), b * (c.kvLen - 1) * kvRow);
        vPrompt.set(x.v.subarray(b * c.kvLen * kvRow, kvEnd - kvRow), b * (c.kvLen - 1) * kvRow);
      }
      const cacheN = c.B * c.capacity * kvRow;
      const b = {
        q: gpu.upload(qLast),
        kCache: poisonedF32(gpu, cacheN),
        vCache: poisonedF32(gpu, cacheN),
        kPrompt: gpu.upload(kPrompt.length ? kPrompt : new Float32Array(1)),
        vPrompt: gpu.upload(vPrompt.length ? vPrompt : new Float32Array(1)),
        kLast: gpu.upload(kLast),
        vLast: gpu.upload(vLast),
        out: poisonedF32(gpu, c.B * qRow),
        workspace: gpu.createBuffer(
          c.chunk ? c.B * c.Hq * Math.ceil(c.kvLen / c.chunk) * (c.D + 4) * 4 : attentionDecodeWorkspaceBytes(c),
        ),
      };
      const rec = gpu.recorder();
      const cache = { kCache: b.kCache, vCache: b.vCache, B: c.B, Hkv: c.Hkv, D: c.D, capacity: c.capacity };
      if (c.kvLen > 1) appendKv(gpu, rec, { ...cache, kNew: b.kPrompt, vNew: b.vPrompt, rows: c.kvLen - 1, pos: 0 });
      appendKv(gpu, rec, { ...cache, kNew: b.kLast, vNew: b.vLast, rows: 1, pos: c.kvLen - 1 });
      attentionDecode(gpu, rec, { ...c, q: b.q, kCache: b.kCache, vCache: b.vCache, out: b.out, workspace: b.workspace, kernels });
      await gpu.checked(() => rec.submit());
      const got = await gpu.readF32(b.out, c.B * qRow);
      expectClose(got, wantOut, 1e-5, 'decode vs forward last row');
      const kc = await gpu.readF32(b.kCache, cacheN);
      const vc = await gpu.readF32(b.vCache, cacheN);
      expectClose(got, attentionDecodeRef(qLast, kc, vc, c), FWD_TOL, 'decode vs reference');
      for (const buf of Object.values(b)) gpu.release(buf);
    });
  }

  // Generation records a decode step once and replays it for every token, the position in a
  // buffer: at each length the replay must give the bits of a step recorded with that length.
  it('reads the position from a buffer: one recorded step equals, at every length, a step recorded for it', async () => {
    const gpu = await getTestGpu();
    const c = { B: 2, Hq: 4, Hkv: 2, D: 32, capacity: 200 };
    const rng = new Rng(31);
    const kvRow = c.Hkv * c.D;
    const cacheN = c.B * c.capacity * kvRow;
    const kc0 = rng.f32(cacheN);
    const vc0 = rng.f32(cacheN);
    const b = {
      q: gpu.upload(rng.f32(c.B * c.Hq * c.D)),
      kNew: gpu.upload(rng.f32(c.B * kvRow)),
      vNew: gpu.upload(rng.f32(c.B * kvRow)),
      position: gpu.createBuffer(c.B * 4),
      kLive: gpu.upload(kc0),
      vLive: gpu.upload(vc0),
      kFixed: gpu.upload(kc0),
      vFixed: gpu.upload(vc0),
      outLive: poisonedF32(gpu, c.B * c.Hq * c.D),
      outFixed: poisonedF32(gpu, c.B * c.Hq * c.D),
      workspace: gpu.createBuffer(attentionDecodeWorkspaceBytes(c)),
    };
    const step = (rec: Recorder, k: GPUBuffer, v: GPUBuffer, out: GPUBuffer, pos: number | { buffer: GPUBuffer }) => {
      const kvLen = typeof pos === 'number' ? pos + 1 : pos;
      appendKv(gpu, rec, { ...c, kCache: k, vCache: v, kNew: b.kNew, vNew: b.vNew, rows: 1, pos });
      attentionDecode(gpu, rec, { ...c, q: b.q, kCache: k, vCache: v, out, workspace: b.workspace, kvLen, kernels });
    };
    let recorded: RecordedCommands | null = null;
    const mismatches: string[] = [];
    for (const kvLen of [33, 1, 31, 32, 64, 65, 127, 128, 129, 191, 200]) {
      for (const [k, v] of [[b.kLive, b.vLive], [b.kFixed, b.vFixed]] as const) {
        gpu.write(k, kc0);
        gpu.write(v, vc0);
      }
      gpu.write(b.position, new Uint32Array(c.B).fill(kvLen - 1));
      if (recorded) recorded.submit();
      else {
        const rec = gpu.recorder('live', { capture: true });
        step(rec, b.kLive, b.vLive, b.outLive, { buffer: b.position });
        await gpu.checked(() => rec.submit());
        recorded = rec.recorded();
        expect(recorded).not.toBeNull();
      }
      const rec = gpu.recorder('fixed');
      step(rec, b.kFixed, b.vFixed, b.outFixed, kvLen - 1);
      await gpu.checked(() => rec.submit());
      const same = async (x: GPUBuffer, y: GPUBuffer, n: number) =>
        Buffer.from((await gpu.readF32(x, n)).buffer).equals(Buffer.from((await gpu.readF32(y, n)).buffer));
      if (!(await same(b.outLive, b.outFixed, c.B * c.Hq * c.D))) mismatches.push(`out at kvLen ${kvLen}`);
      if (!(await same(b.kLive, b.kFixed, cacheN)) || !(await same(b.vLive, b.vFixed, cacheN))) mismatches.push(`cache at kvLen ${kvLen}`);
    }
    expect(mismatches).toEqual([]);
    recorded!.release();
    for (const buf of Object.values(b)) gpu.release(buf);
  });

  it('sizes the workspace for every kvLen up to the capacity', () => {
    for (const d of [
      { B: 1, Hq: 9, D: 64, capacity: 2048 },
      { B: 4, Hq: 32, D: 128, capacity: 333 },
      { B: 1, Hq: 1, D: 8, capacity: 7000 },
    ]) {
      const bytes = attentionDecodeWorkspaceBytes(d);
      let most = 0;
      const bad: number[] = [];
      for (let kvLen = 1; kvLen <= d.capacity; kvLen++) {
        const { chunk, nSplits } = attentionDecodeSplits({ ...d, kvLen }, kernels);
        // Every key is in a split and no split is empty.
        if (nSplits * chunk < kvLen || (nSplits - 1) * chunk >= kvLen) bad.push(kvLen);
        most = Math.max(most, d.B * d.Hq * nSplits * (d.D + 4) * 4);
      }
      expect(bad).toEqual([]);
      expect(bytes).toBeGreaterThanOrEqual(most);
    }
  });
});

describe('kernel plans', () => {
  it("the 'gpu' plan runs flashAttention's kernels at every head dim, the 'cpu' plan attention.wgsl's", async () => {
    const gpu = await getTestGpu();
    const buf = gpu.createBuffer(1 << 16);
    const kernelNames = (kernels: KernelPlan, D: number) => {
      const rec = gpu.recorder();
      const dispatch = vi.spyOn(rec, 'dispatch').mockImplementation(() => rec);
      const b = { q: buf, k: buf, v: buf, out: buf, lse: buf, dout: buf, dq: buf, dk: buf, dv: buf, delta: buf };
      const dims = { B: 1, T: 4, Hq: 2, Hkv: 1, D, kernels };
      attentionForward(gpu, rec, { ...dims, ...b });
      attentionBackward(gpu, rec, { ...dims, ...b });
      attentionDecode(gpu, rec, { ...b, kCache: buf, vCache: buf, workspace: buf, ...dims, capacity: 4, kvLen: 4 });
      return dispatch.mock.calls.map(([spec]) => spec.name);
    };
    const cpu = ['fwd', 'bwd_dq', 'bwd_dkdv', 'decode_partial', 'decode_combine'].map((k) => `attention.attn_${k}`);
    expect(kernelNames('cpu', 64)).toEqual(cpu);
    expect(kernelNames('gpu', 64)).toEqual([
      ...['fwd', 'bwd_dq', 'bwd_dkdv', 'decode_partial'].map((k) => `flashAttention.flash_${k}.d64`),
      'attention.attn_decode_combine',
    ]);
    expect(kernelNames('cpu', 128)).toEqual(cpu);
    expect(kernelNames('gpu', 128)).toEqual([
      ...['fwd', 'bwd_dq', 'bwd_dkdv', 'decode_partial'].map((k) => `flashAttention.flash_${k}.d128`),
      'attention.attn_decode_combine',
    ]);
    gpu.release(buf);
  });
});

describeSelfTestCases('attention', selfTestCases);
