import { ropeBackwardRef, ropeRef, sequentialPositions } from '../kernels/reference/rope';
import { rope, ropeBackward, ropeInvFreq, ropeQK } from '../kernels/rope';
import { maxRelError, Rng } from './compare';
import type { SelfTestCase } from './types';
import { withBuffers } from './buffers';

/** Llama 3.2 1B's rope settings: llama3 frequency scaling (factor 32, low 1, high 4, original 8192). */
export const LLAMA_3_2_ROPE = {
  head_dim: 64,
  rope_theta: 500000,
  rope_scaling: {
    rope_type: 'llama3',
    factor: 32,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  },
};

export const selfTestCases: SelfTestCase[] = [
  {
    name: 'rope llama3 frequencies forward + backward (17 tokens, 3 heads, D=64)',
    // WGSL only promises sin/cos to 2^-11 absolute on [-pi, pi]; browsers' software adapters
    // (SwiftShader) come near that (1.5e-4 seen), so the in-browser bound is the spec's. The Node
    // tests hold lavapipe to 1e-6.
    tol: 5e-4,
    run: (gpu) =>
      withBuffers(gpu, async (t) => {
        const [tokens, heads, headDim] = [17, 3, 64];
        const n = tokens * heads * headDim;
        const rng = new Rng(505);
        const x = rng.f32(n);
        const { invFreq } = ropeInvFreq({ ...LLAMA_3_2_ROPE, head_dim: headDim });
        const positions = Uint32Array.from({ length: tokens }, () => rng.int(20000));
        const common = {
          invFreq: t(gpu.upload(invFreq)),
          positions: t(gpu.upload(positions)),
          tokens,
          heads,
          headDim,
        };
        const out = t(gpu.createBuffer(n * 4));
        const back = t(gpu.upload(x));
        const rec = gpu.recorder('selftest.rope');
        rope(gpu, rec, { ...common, x: t(gpu.upload(x)), out });
        ropeBackward(gpu, rec, { ...common, dOut: back });
        rec.submit();
        const a = { tokens, heads, headDim, invFreq, positions };
        return Math.max(
          maxRelError(await gpu.readF32(out, n), ropeRef(x, a)),
          maxRelError(await gpu.readF32(back, n), ropeBackwardRef(x, a)),
        );
      }),
  },
  {
    name: 'rope q and k in one dispatch, forward + backward (2 x 9 tokens from position 3, 4 + 2 heads, D=32)',
    // The same sin/cos bound as above (the kernel shares their code).
    tol: 5e-4,
    run: (gpu) =>
      withBuffers(gpu, async (t) => {
        const [seqLen, qHeads, kHeads, headDim, start] = [9, 4, 2, 32, 3];
        const tokens = 2 * seqLen;
        const rng = new Rng(606);
        const q = rng.f32(tokens * qHeads * headDim);
        const k = rng.f32(tokens * kHeads * headDim);
        const { invFreq } = ropeInvFreq({ head_dim: headDim, rope_theta: 10000 });
        const common = { invFreq: t(gpu.upload(invFreq)), tokens, headDim, positionStart: start, seqLen };
        const [qf, kf, qb, kb] = [t(gpu.upload(q)), t(gpu.upload(k)), t(gpu.upload(q)), t(gpu.upload(k))];
        const rec = gpu.recorder('selftest.rope-qk');
        ropeQK(gpu, rec, { ...common, q: qf, qHeads, k: kf, kHeads });
        ropeQK(gpu, rec, { ...common, q: qb, qHeads, k: kb, kHeads, backward: true });
        rec.submit();
        const positions = sequentialPositions(tokens, seqLen, start);
        const args = (heads: number) => ({ tokens, heads, headDim, invFreq, positions });
        return Math.max(
          maxRelError(await gpu.readF32(qf, q.length), ropeRef(q, args(qHeads))),
          maxRelError(await gpu.readF32(kf, k.length), ropeRef(k, args(kHeads))),
          maxRelError(await gpu.readF32(qb, q.length), ropeBackwardRef(q, args(qHeads))),
          maxRelError(await gpu.readF32(kb, k.length), ropeBackwardRef(k, args(kHeads))),
        );
      }),
  },
];
