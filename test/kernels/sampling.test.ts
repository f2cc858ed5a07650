import { describe, expect, it } from 'vitest';
import type { Gpu, Recorder } from '../../src/gpu';
import { applyRepetitionPenalty, argmaxRows, sampleRows, type SamplingSettings } from '../../src/kernels/sampling';
import { argmaxRef, repetitionPenaltyRef, sampleRef } from '../../src/kernels/reference/sampling';
import { selfTestCases } from '../../src/selftest/sampling';
import { expectClose } from '../helpers/compare';
import { describeSelfTestCases, getTestGpu } from '../helpers/gpu';
import { Rng } from '../helpers/random';

const POISON_ID = 0xdeadbeef;
// Where u lands closer than this to a boundary of the cumulative distribution (relative to its
// total), f32 vs f64 rounding may legitimately pick the neighbour: only set membership is checked.
const DRAW_MARGIN = 1e-5;

async function runIds(
  gpu: Gpu,
  logits: Float32Array,
  rows: number,
  record: (rec: Recorder, lb: GPUBuffer, out: GPUBuffer) => void,
): Promise<Uint32Array> {
  const lb = gpu.upload(logits);
  const out = gpu.upload(new Uint32Array(rows).fill(POISON_ID));
  const rec = gpu.recorder();
  record(rec, lb, out);
  rec.submit();
  const ids = await gpu.readU32(out, rows);
  gpu.release(lb);
  gpu.release(out);
  return ids;
}

type Settings = SamplingSettings;

function sample(gpu: Gpu, logits: Float32Array, rows: number, V: number, s: Settings, random: number[]): Promise<Uint32Array> {
  return runIds(gpu, logits, rows, (rec, lb, out) => sampleRows(gpu, rec, { logits: lb, rows, V, out, random, ...s }));
}

/** `rows` copies of one random row, each drawn with its own u: many draws in one dispatch. */
function replicate(row: Float32Array, rows: number): Float32Array {
  const out = new Float32Array(rows * row.length);
  for (let r = 0; r < rows; r++) out.set(row, r * row.length);
  return out;
}

function uniforms(rng: Rng, n: number): number[] {
  const u = Array.from({ length: n }, () => rng.next());
  u[0] = 0; // the edges of [0, 1) too
  if (n > 1) u[n - 1] = 0.999999;
  return u;
}

async function checkSampling(
  gpu: Gpu,
  logits: Float32Array,
  rows: number,
  V: number,
  s: Settings,
  random: number[],
): Promise<Uint32Array> {
  const ids = await sample(gpu, logits, rows, V, s, random);
  const ref = sampleRef(logits, rows, V, s, random);
  for (let r = 0; r < rows; r++) {
    const want = ref[r]!;
    expect(want.topPMargin, `row ${r}: the top-p cut is borderline; pick another top_p`).toBeGreaterThan(1e-6);
    expect(want.allowed, `row ${r} (u=${random[r]})`).toContain(ids[r]);
    if (want.drawMargin > DRAW_MARGIN) expect(ids[r], `row ${r} (u=${random[r]})`).toBe(want.id);
  }
  return ids;
}

describe('argmaxRows', () => {
  for (const V of [1, 7, 33, 1000, 5003]) {
    it(`matches the reference, V=${V}`, async () => {
      const gpu = await getTestGpu();
      const rows = 3;
      const logits = new Rng(V).f32(rows * V, -4, 4);
      const ids = await runIds(gpu, logits, rows, (rec, lb, out) => argmaxRows(gpu, rec, { logits: lb, rows, V, out }));
      expect(Array.from(ids)).toEqual(Array.from(argmaxRef(logits, rows, V)));
    });
  }

  it('breaks ties toward the lowest index and handles -inf and more than 64 rows', async () => {
    const gpu = await getTestGpu();
    const V = 1000;
    const rows = 70;
    const rng = new Rng(3);
    const logits = rng.f32(rows * V, -4, 4);
    const want: number[] = [];
    for (let r = 0; r < rows; r++) {
      // Equal maxima at positions that different threads own.
      const pos = [rng.int(V), rng.int(V), rng.int(V)];
      for (const p of pos) logits[r * V + p] = 5;
      want.push(Math.min(...pos));
    }
    logits.fill(-Infinity, 0, V); // row 0: all -inf but one
    logits[317] = -Infinity;
    logits[999] = -3;
    want[0] = 999;
    logits.fill(1.5, V, 2 * V); // row 1: all equal
    want[1] = 0;
    const ids = await runIds(gpu, logits, rows, (rec, lb, out) => argmaxRows(gpu, rec, { logits: lb, rows, V, out }));
    expect(Array.from(ids)).toEqual(want);
    expect(Array.from(argmaxRef(logits, rows, V))).toEqual(want);
  });
});

describe('applyRepetitionPenalty', () => {
  it('matches HF semantics, once per distinct id, skipping padding', async () => {
    const gpu = await getTestGpu();
    const rows = 3;
    const V = 1000;
    const L = 300; // more ids than one workgroup
    const rng = new Rng(8);
    const logits = rng.f32(rows * V, -5, 5);
    const ids = new Uint32Array(rows * L);
    for (let i = 0; i < ids.length; i++) ids[i] = rng.int(V / 4); // plenty of repeats
    ids.fill(0xffffffff, 2 * L + 100); // row 2: a shorter list, padded
    ids[5] = V + 3; // any id >= V is padding
    const lb = gpu.upload(logits);
    const ib = gpu.upload(ids);
    const rec = gpu.recorder();
    applyRepetitionPenalty(gpu, rec, { logits: lb, rows, V, ids: ib, idsPerRow: L, penalty: 1.3 });
    rec.submit();
    const got = await gpu.readF32(lb, rows * V);
    const want = repetitionPenaltyRef(logits, rows, V, ids, L, 1.3);
    // f32 multiply/divide by f32(1.3) vs f64: 1 ulp.
    expectClose(got, want, 1e-6, 'penalised logits');
    // Every touched logit moved toward zero's far side exactly once: no double application.
    let touched = 0;
    for (let i = 0; i < got.length; i++) if (got[i] !== logits[i]) touched++;
    expect(touched).toBe(want.reduce((n, v, i) => n + (v !== logits[i] ? 1 : 0), 0));
    expect(touched).toBeGreaterThan(100);
    gpu.release(lb);
    gpu.release(ib);
  });
});

describe('sampleRows', () => {
  const configs: [V: number, s: SamplingSettings][] = [
    [7, { temperature: 0.8, topK: 5, topP: 1 }],
    [7, { temperature: 1.3, topK: 64, topP: 1 }], // k > V
    [33, { temperature: 1, topK: 10, topP: 0.72 }],
    [1000, { temperature: 0.7, topK: 64, topP: 0.9 }],
    [1000, { temperature: 1.2, topK: 0, topP: 0.63 }], // top-p alone: full softmax, 256 candidates
    [5003, { temperature: 1, topK: 40, topP: 1 }],
    [5003, { temperature: 0.9, topK: 0, topP: 1 }], // plain temperature: exact full draw
    [1, { temperature: 1, topK: 0, topP: 1 }],
    [1, { temperature: 1, topK: 3, topP: 0.5 }],
  ];
  for (const [V, s] of configs) {
    it(`stays in the allowed set and matches the reference: V=${V} T=${s.temperature} k=${s.topK} p=${s.topP}`, async () => {
      const gpu = await getTestGpu();
      const rng = new Rng(V * 7 + s.topK);
      const rows = 24;
      const row = rng.f32(V, -3, 3);
      const logits = replicate(row, rows);
      const ids = await checkSampling(gpu, logits, rows, V, s, uniforms(rng, rows));
      if (V > 1 && (s.topK === 0 || s.topK > 1)) expect(new Set(ids).size).toBeGreaterThan(1); // it does sample
    });
  }

  it('handles many tied logits (top-k takes the lowest indices among equals)', async () => {
    const gpu = await getTestGpu();
    const V = 1000;
    const rng = new Rng(77);
    const row = Float32Array.from({ length: V }, () => rng.int(6) - 2); // values -2..3, many equal
    const rows = 16;
    const s = { temperature: 1, topK: 12, topP: 1 };
    const random = uniforms(rng, rows);
    const ids = await checkSampling(gpu, replicate(row, rows), rows, V, s, random);
    const lowestTwelveMax = Array.from({ length: V }, (_, i) => i)
      .filter((i) => row[i] === 3)
      .slice(0, 12);
    for (const id of ids) expect(lowestTwelveMax).toContain(id);
  });

  it('uses a different uniform number per row across dispatches of 64 rows', async () => {
    const gpu = await getTestGpu();
    const V = 33;
    const rows = 70;
    const rng = new Rng(5);
    const logits = rng.f32(rows * V, -2, 2); // different logits per row too
    await checkSampling(gpu, logits, rows, V, { temperature: 1, topK: 8, topP: 0.8 }, uniforms(rng, rows));
  });

  it('draws the same ids with the uniform numbers in a buffer (written per token) as in the parameters', async () => {
    const gpu = await getTestGpu();
    const V = 33;
    const rows = 70; // two dispatches of rows
    const rng = new Rng(15);
    const logits = rng.f32(rows * V, -2, 2);
    const random = uniforms(rng, rows);
    const u = gpu.upload(Float32Array.from(random));
    for (const s of [{ temperature: 1, topK: 8, topP: 0.8 }, { temperature: 0.9, topK: 0, topP: 1 }]) {
      const inParams = await sample(gpu, logits, rows, V, s, random);
      const inBuffer = await runIds(gpu, logits, rows, (rec, lb, out) => sampleRows(gpu, rec, { logits: lb, rows, V, out, random: { buffer: u }, ...s }));
      expect(Array.from(inBuffer)).toEqual(Array.from(inParams));
    }
    gpu.release(u);
  });

  it('is reproducible for a fixed random number and follows u through the distribution', async () => {
    const gpu = await getTestGpu();
    const V = 1000;
    const rng = new Rng(99);
    const row = rng.f32(V, -3, 3);
    const s = { temperature: 1, topK: 32, topP: 0.95 };
    const u = [0.3141];
    const a = await sample(gpu, row, 1, V, s, u);
    const b = await sample(gpu, row, 1, V, s, u);
    expect(a[0]).toBe(b[0]);
    // u = 0 takes the most likely token, which is the argmax.
    const first = await sample(gpu, row, 1, V, s, [0]);
    expect(first[0]).toBe(argmaxRef(row, 1, V)[0]);
  });

  it('is greedy at temperature 0 and with top-k 1', async () => {
    const gpu = await getTestGpu();
    const V = 5003;
    const rows = 2;
    const logits = new Rng(4).f32(rows * V);
    const want = Array.from(argmaxRef(logits, rows, V));
    expect(Array.from(await sample(gpu, logits, rows, V, { temperature: 0, topK: 50, topP: 0.9 }, [0.5, 0.5]))).toEqual(want);
    expect(Array.from(await sample(gpu, logits, rows, V, { temperature: 1, topK: 1, topP: 1 }, [0.9, 0.9]))).toEqual(want);
  });

  it('rejects bad settings', async () => {
    const gpu = await getTestGpu();
    const b = gpu.createBuffer(16);
    const base = { logits: b, rows: 1, V: 4, out: b, temperature: 1, topK: 0, topP: 1, random: [0.5] };
    expect(() => sampleRows(gpu, gpu.recorder(), { ...base, topK: 257 })).toThrow(/topK/);
    expect(() => sampleRows(gpu, gpu.recorder(), { ...base, random: [1] })).toThrow(/random/);
    expect(() => sampleRows(gpu, gpu.recorder(), { ...base, topP: 0 })).toThrow(/topP/);
    gpu.release(b);
  });
});

describeSelfTestCases('sampling', selfTestCases);
