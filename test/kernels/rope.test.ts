import { describe, expect, it } from 'vitest';
import { rope, ropeBackward, ropeInvFreq, ropeQK } from '../../src/kernels/rope';
import { ropeBackwardRef, ropeRef, sequentialPositions } from '../../src/kernels/reference/rope';
import { LLAMA_3_2_ROPE, selfTestCases } from '../../src/selftest/rope';
import { expectClose, maxRelError, numericGrad } from '../helpers/compare';
import { describeSelfTestCases, getTestGpu, poisonedF32 } from '../helpers/gpu';
import { Rng } from '../helpers/random';
import { withBuffers } from '../../src/selftest/buffers';

// Tolerance (maxRelError against the f64 reference, which rotates by the same f32 angle):
// f32 sin/cos after range reduction plus two f32 products. Measured <= 1.9e-7 on lavapipe for
// positions up to 400000.
const TOL = 1e-6;

const invFreqFor = (headDim: number, theta = 10000) => ropeInvFreq({ head_dim: headDim, rope_theta: theta }).invFreq;

interface RopeCase {
  invFreq: Float32Array;
  positions: Uint32Array;
  tokens: number;
  heads: number;
  headDim: number;
  rotaryDim?: number;
  attentionFactor?: number;
}

/**
 * Runs rope (or its backward) on x twice, out of place into a NaN-poisoned buffer and in place;
 * returns both results and checks the out-of-place source is left untouched.
 */
async function ropeBothWays(x: Float32Array, c: RopeCase, backward = false): Promise<{ out: Float32Array; inPlace: Float32Array }> {
  const gpu = await getTestGpu();
  const n = x.length;
  return withBuffers(gpu, async (t) => {
    const source = t(gpu.upload(x));
    const out = t(poisonedF32(gpu, n));
    const inPlace = t(gpu.upload(x));
    const common = { ...c, invFreq: t(gpu.upload(c.invFreq)), positions: t(gpu.upload(c.positions)) };
    const rec = gpu.recorder();
    if (backward) {
      ropeBackward(gpu, rec, { ...common, dOut: source, dx: out });
      ropeBackward(gpu, rec, { ...common, dOut: inPlace });
    } else {
      rope(gpu, rec, { ...common, x: source, out });
      rope(gpu, rec, { ...common, x: inPlace });
    }
    rec.submit();
    expect(Array.from(await gpu.readF32(source, n))).toEqual(Array.from(x));
    return { out: await gpu.readF32(out, n), inPlace: await gpu.readF32(inPlace, n) };
  });
}

describe('rope kernel', () => {
  for (const headDim of [8, 24, 64]) {
    it(`in place and out of place, per-token positions, headDim=${headDim}`, async () => {
      for (const [tokens, heads] of [
        [1, 1],
        [7, 3],
        [33, 2],
      ] as const) {
        const rng = new Rng(headDim * 100 + tokens);
        const x = rng.f32(tokens * heads * headDim);
        const c = { tokens, heads, headDim, invFreq: invFreqFor(headDim), positions: Uint32Array.from({ length: tokens }, () => rng.int(4096)) };
        const ref = ropeRef(x, c);
        const got = await ropeBothWays(x, c);
        expectClose(got.out, ref, TOL, `rope out ${tokens}x${heads}x${headDim}`);
        expectClose(got.inPlace, ref, TOL, `rope in place ${tokens}x${heads}x${headDim}`);
      }
    });
  }

  it('positions from a start offset, batch of 3 sequences of 11', async () => {
    const gpu = await getTestGpu();
    const [batch, seqLen, heads, headDim] = [3, 11, 2, 24];
    const tokens = batch * seqLen;
    const n = tokens * heads * headDim;
    const rng = new Rng(8);
    const x = rng.f32(n);
    const invFreq = invFreqFor(headDim, 500000);
    const ref = ropeRef(x, { tokens, heads, headDim, invFreq, positions: sequentialPositions(tokens, seqLen, 37) });
    await withBuffers(gpu, async (t) => {
      const out = t(poisonedF32(gpu, n));
      const rec = gpu.recorder();
      rope(gpu, rec, {
        x: t(gpu.upload(x)),
        out,
        invFreq: t(gpu.upload(invFreq)),
        tokens,
        heads,
        headDim,
        positionStart: 37,
        seqLen,
      });
      rec.submit();
      expectClose(await gpu.readF32(out, n), ref, TOL, 'rope start offset');
    });
  });

  it('rotates q and k (GQA) inside a fused qkv buffer and leaves v alone', async () => {
    const gpu = await getTestGpu();
    const [tokens, hq, hkv, headDim] = [7, 4, 2, 8];
    const width = (hq + 2 * hkv) * headDim;
    const rng = new Rng(21);
    const qkv = rng.f32(tokens * width);
    const invFreq = invFreqFor(headDim);
    const positions = Uint32Array.from({ length: tokens }, (_, i) => 3 * i + 1);
    const slice = (off: number, w: number) => {
      const out = new Float32Array(tokens * w);
      for (let t = 0; t < tokens; t++) out.set(qkv.subarray(t * width + off, t * width + off + w), t * w);
      return out;
    };
    const qRef = ropeRef(slice(0, hq * headDim), { tokens, heads: hq, headDim, invFreq, positions });
    const kRef = ropeRef(slice(hq * headDim, hkv * headDim), { tokens, heads: hkv, headDim, invFreq, positions });
    await withBuffers(gpu, async (t) => {
      const buf = t(gpu.upload(qkv));
      const common = { invFreq: t(gpu.upload(invFreq)), positions: t(gpu.upload(positions)), tokens, headDim };
      const rec = gpu.recorder();
      rope(gpu, rec, { ...common, heads: hq, x: buf, xOffset: 0, xTokenStride: width });
      rope(gpu, rec, { ...common, heads: hkv, x: buf, xOffset: hq * headDim, xTokenStride: width });
      rec.submit();
      const got = await gpu.readF32(buf, tokens * width);
      const part = (off: number, w: number) => {
        const out = new Float32Array(tokens * w);
        for (let tk = 0; tk < tokens; tk++) out.set(got.subarray(tk * width + off, tk * width + off + w), tk * w);
        return out;
      };
      expectClose(part(0, hq * headDim), qRef, TOL, 'fused q');
      expectClose(part(hq * headDim, hkv * headDim), kRef, TOL, 'fused k');
      const vOff = (hq + hkv) * headDim;
      expect(Array.from(part(vOff, hkv * headDim))).toEqual(Array.from(slice(vOff, hkv * headDim)));
    });
  });

  it('partial rotary: only the leading rotaryDim dimensions turn', async () => {
    const [tokens, heads, headDim, rotaryDim] = [7, 3, 24, 8];
    const rng = new Rng(31);
    const x = rng.f32(tokens * heads * headDim);
    const freq = ropeInvFreq({ head_dim: headDim, partial_rotary_factor: rotaryDim / headDim });
    expect(freq.rotaryDim).toBe(rotaryDim);
    const positions = Uint32Array.from({ length: tokens }, () => rng.int(100));
    // Reference: rotate the leading block of each head, copy the rest.
    const ref = Float64Array.from(x);
    const lead = new Float32Array(tokens * heads * rotaryDim);
    for (let r = 0; r < tokens * heads; r++) lead.set(x.subarray(r * headDim, r * headDim + rotaryDim), r * rotaryDim);
    const rotated = ropeRef(lead, { tokens, heads, headDim: rotaryDim, invFreq: freq.invFreq, positions });
    for (let r = 0; r < tokens * heads; r++) ref.set(rotated.subarray(r * rotaryDim, (r + 1) * rotaryDim), r * headDim);
    const got = await ropeBothWays(x, { tokens, heads, headDim, rotaryDim, invFreq: freq.invFreq, positions });
    expectClose(got.out, ref, TOL, 'partial rotary out');
    expectClose(got.inPlace, ref, TOL, 'partial rotary in place');
  });

  it('stays accurate at large positions and applies the attention factor', async () => {
    const [tokens, heads, headDim] = [33, 1, 64];
    const rng = new Rng(41);
    const x = rng.f32(tokens * heads * headDim);
    const positions = Uint32Array.from({ length: tokens }, (_, i) => (i === 0 ? 100_000 : 8192 + rng.int(60_000)));
    const c = { tokens, heads, headDim, invFreq: invFreqFor(headDim), positions, attentionFactor: 1.25 };
    const ref = ropeRef(x, c);
    const got = await ropeBothWays(x, c);
    expectClose(got.out, ref, TOL, 'rope large positions');
    expectClose(got.inPlace, ref, TOL, 'rope large positions in place');
  });

  it('backward rotates by the opposite angle, in place and out of place', async () => {
    const [tokens, heads, headDim] = [33, 2, 24];
    const rng = new Rng(51);
    const dy = rng.f32(tokens * heads * headDim);
    const positions = Uint32Array.from({ length: tokens }, () => rng.int(2048));
    const c = { tokens, heads, headDim, invFreq: invFreqFor(headDim), positions, attentionFactor: 0.9 };
    const ref = ropeBackwardRef(dy, c);
    const got = await ropeBothWays(dy, c, true);
    expectClose(got.out, ref, TOL, 'rope backward');
    expectClose(got.inPlace, ref, TOL, 'rope backward in place');
  });

  it('rejects odd head and rotary dimensions', async () => {
    const gpu = await getTestGpu();
    const b = gpu.createBuffer(64);
    const rec = gpu.recorder();
    expect(() => rope(gpu, rec, { x: b, invFreq: b, tokens: 1, heads: 1, headDim: 7 })).toThrow(/even/);
    expect(() => rope(gpu, rec, { x: b, invFreq: b, tokens: 1, heads: 1, headDim: 8, rotaryDim: 10 })).toThrow(/rotaryDim/);
    gpu.release(b);
  });
});

describe('ropeQK (q and k in one dispatch)', () => {
  it.each([false, true])('backward=%s: matches the reference for q and k, and two single-tensor dispatches bit for bit', async (backward) => {
    const gpu = await getTestGpu();
    // Two sequences of 13 tokens starting at position 5, 6 query heads over 2 key heads, D = 16.
    const [seqLen, B, qHeads, kHeads, headDim, start] = [13, 2, 6, 2, 16, 5];
    const tokens = B * seqLen;
    const rng = new Rng(71);
    const q = rng.f32(tokens * qHeads * headDim);
    const k = rng.f32(tokens * kHeads * headDim);
    const invFreq = invFreqFor(headDim);
    await withBuffers(gpu, async (t) => {
      const common = { invFreq: t(gpu.upload(invFreq)), tokens, headDim, positionStart: start, seqLen };
      const [qb, kb, q1, k1] = [t(gpu.upload(q)), t(gpu.upload(k)), t(gpu.upload(q)), t(gpu.upload(k))];
      const rec = gpu.recorder('rope-qk');
      ropeQK(gpu, rec, { ...common, q: qb, qHeads, k: kb, kHeads, backward });
      for (const [x, heads] of [[q1, qHeads], [k1, kHeads]] as const) {
        if (backward) ropeBackward(gpu, rec, { ...common, heads, dOut: x });
        else rope(gpu, rec, { ...common, heads, x });
      }
      rec.submit();
      const positions = sequentialPositions(tokens, seqLen, start);
      const ref = backward ? ropeBackwardRef : ropeRef;
      const gotQ = await gpu.readF32(qb, q.length);
      const gotK = await gpu.readF32(kb, k.length);
      expectClose(gotQ, ref(q, { tokens, heads: qHeads, headDim, invFreq, positions }), TOL, 'q');
      expectClose(gotK, ref(k, { tokens, heads: kHeads, headDim, invFreq, positions }), TOL, 'k');
      expect(Array.from(gotQ)).toEqual(Array.from(await gpu.readF32(q1, q.length)));
      expect(Array.from(gotK)).toEqual(Array.from(await gpu.readF32(k1, k.length)));
    });
  });
});

describe('ropeInvFreq', () => {
  // Expected values: transformers' _compute_default_rope_parameters / _compute_llama3_parameters
  // transcribed to numpy float32 (same operation order), printed with repr().
  it('default: 1 / theta^(2i/dim), f32', () => {
    const f = ropeInvFreq({ head_dim: 64, rope_theta: 1_000_000 });
    expect(f.attentionFactor).toBe(1);
    expect(f.rotaryDim).toBe(64);
    expect(f.invFreq[1]).toBe(0.6493816375732422);
    expect(f.invFreq[8]).toBe(0.03162277862429619);
    expect(f.invFreq[16]).toBe(0.0010000000474974513);
    // head_dim from hidden_size / heads when absent; theta defaults to 10000
    const g = ropeInvFreq({ hidden_size: 96, num_attention_heads: 4 });
    expect(g.invFreq.length).toBe(12);
    expect(g.invFreq[3]).toBe(Math.fround(1 / Math.fround(10000 ** Math.fround(6 / 24))));
  });

  it('llama3 (Llama 3.2 1B: factor 32, low 1, high 4, original 8192)', () => {
    const f = ropeInvFreq(LLAMA_3_2_ROPE);
    expect(f.attentionFactor).toBe(1);
    const want: Record<number, number> = {
      0: 1.0,
      5: 0.12868738174438477,
      13: 0.00483942124992609, // high frequency: unchanged
      14: 0.0032114461064338684,
      15: 0.0012905480107292533, // medium band: blended
      16: 0.000429556705057621,
      17: 9.708286233944818e-5,
      18: 1.9461638657958247e-5,
      19: 1.291476746700937e-5, // low frequency: divided by 32
      31: 9.418306490260875e-8,
    };
    for (const [i, v] of Object.entries(want)) expect(f.invFreq[Number(i)], `inv_freq[${i}]`).toBe(v);
  });

  it('llama3 (Llama 3.1 8B: factor 8, head_dim from hidden_size, old-style `type` key)', () => {
    const f = ropeInvFreq({
      hidden_size: 4096,
      num_attention_heads: 32,
      rope_theta: 500000,
      rope_scaling: {
        type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    });
    const want: Record<number, number> = {
      29: 0.0021665706299245358,
      30: 0.0013718936825171113,
      31: 0.0008567514596506953,
      32: 0.0005248460220173001,
      33: 0.0003126936499029398,
      34: 0.0001785077911335975,
      35: 9.556212171446532e-5,
      63: 3.068925877869333e-7,
    };
    for (const [i, v] of Object.entries(want)) expect(f.invFreq[Number(i)], `inv_freq[${i}]`).toBe(v);
  });

  it('linear scaling, and errors for unsupported types and missing fields', () => {
    const base = ropeInvFreq({ head_dim: 16 }).invFreq;
    const lin = ropeInvFreq({ head_dim: 16, rope_scaling: { rope_type: 'linear', factor: 4 } }).invFreq;
    expect(Array.from(lin)).toEqual(Array.from(base, (v) => Math.fround(v / 4)));
    expect(() => ropeInvFreq({ head_dim: 16, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(/not supported/);
    expect(() => ropeInvFreq({ head_dim: 16, rope_scaling: { rope_type: 'llama3', factor: 4 } })).toThrow(/missing/);
    expect(() => ropeInvFreq({ rope_theta: 10 })).toThrow(/head_dim/);
  });
});

describe('rope reference: backward = finite differences of forward', () => {
  it('ropeBackwardRef', () => {
    const [tokens, heads, headDim] = [3, 2, 8];
    const rng = new Rng(61);
    const n = tokens * heads * headDim;
    const x = Float64Array.from(rng.f32(n));
    const G = rng.f32(n);
    const a = { tokens, heads, headDim, invFreq: invFreqFor(headDim), positions: [0, 5, 900], attentionFactor: 1.1 };
    const loss = () => ropeRef(x, a).reduce((s, v, i) => s + v * G[i]!, 0);
    expect(maxRelError(ropeBackwardRef(G, a), numericGrad(x, loss))).toBeLessThan(1e-8);
  });
});

describeSelfTestCases('rope', selfTestCases);
