import type { Gpu } from '../gpu';
import { attentionBackward, attentionDecode, attentionDecodeWorkspaceBytes, attentionForward } from '../kernels/attention';
import { attentionBackwardRef, attentionDecodeRef, attentionForwardRef } from '../kernels/reference/attention';
import { maxRelError, Rng } from './compare';
import type { SelfTestCase } from './types';

const dims = { B: 1, T: 19, Hq: 4, Hkv: 2, D: 16 };

async function forwardAndBackward(gpu: Gpu, withBackward: boolean): Promise<number> {
  const { B, T, Hq, Hkv, D } = dims;
  const rng = new Rng(7);
  const q = rng.f32(B * T * Hq * D);
  const k = rng.f32(B * T * Hkv * D);
  const v = rng.f32(B * T * Hkv * D);
  const dout = rng.f32(B * T * Hq * D);
  const bufs = {
    q: gpu.upload(q),
    k: gpu.upload(k),
    v: gpu.upload(v),
    out: gpu.upload(new Float32Array(q.length).fill(NaN)),
    lse: gpu.upload(new Float32Array(B * Hq * T).fill(NaN)),
    dout: gpu.upload(dout),
    dq: gpu.upload(new Float32Array(q.length).fill(NaN)),
    dk: gpu.upload(new Float32Array(k.length).fill(NaN)),
    dv: gpu.upload(new Float32Array(v.length).fill(NaN)),
    delta: gpu.createBuffer(B * Hq * T * 4),
  };
  try {
    const rec = gpu.recorder('selftest attention');
    attentionForward(gpu, rec, { ...dims, ...bufs });
    if (withBackward) attentionBackward(gpu, rec, { ...dims, ...bufs });
    rec.submit();
    const ref = attentionForwardRef(q, k, v, dims);
    let err = Math.max(
      maxRelError(await gpu.readF32(bufs.out, q.length), ref.out),
      maxRelError(await gpu.readF32(bufs.lse, B * Hq * T), ref.lse),
    );
    if (withBackward) {
      const g = attentionBackwardRef(dout, q, k, v, dims);
      err = Math.max(
        err,
        maxRelError(await gpu.readF32(bufs.dq, q.length), g.dq),
        maxRelError(await gpu.readF32(bufs.dk, k.length), g.dk),
        maxRelError(await gpu.readF32(bufs.dv, v.length), g.dv),
      );
    }
    return err;
  } finally {
    for (const b of Object.values(bufs)) gpu.release(b);
  }
}

async function decode(gpu: Gpu): Promise<number> {
  const d = { B: 2, Hq: 6, Hkv: 2, D: 32, capacity: 90, kvLen: 77 };
  const rng = new Rng(8);
  const q = rng.f32(d.B * d.Hq * d.D);
  const kc = rng.f32(d.B * d.capacity * d.Hkv * d.D);
  const vc = rng.f32(kc.length);
  const bufs = {
    q: gpu.upload(q),
    kCache: gpu.upload(kc),
    vCache: gpu.upload(vc),
    out: gpu.upload(new Float32Array(q.length).fill(NaN)),
    workspace: gpu.createBuffer(attentionDecodeWorkspaceBytes(d)),
  };
  try {
    const rec = gpu.recorder('selftest attention decode');
    attentionDecode(gpu, rec, { ...d, ...bufs });
    rec.submit();
    return maxRelError(await gpu.readF32(bufs.out, q.length), attentionDecodeRef(q, kc, vc, d));
  } finally {
    for (const b of Object.values(bufs)) gpu.release(b);
  }
}

export const selfTestCases: SelfTestCase[] = [
  { name: 'attention forward (causal GQA, f32)', tol: 1e-5, run: (gpu) => forwardAndBackward(gpu, false) },
  { name: 'attention backward (dq, dk, dv)', tol: 1e-4, run: (gpu) => forwardAndBackward(gpu, true) },
  { name: 'attention decode (split KV cache)', tol: 1e-5, run: decode },
];
