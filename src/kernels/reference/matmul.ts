import { f16BitsToF32 } from '../../util/f16';
import type { MatmulLayout } from '../matmul';

/** Arguments of {@link matmulRef}: the kernel's layout, with CPU arrays for the operands. */
export interface MatmulRefArgs extends MatmulLayout {
  a: Float32Array;
  /** f32 values, or f16 bit patterns (a Uint16Array) as the f16-weight kernel reads them. */
  b: Float32Array | Uint16Array;
  /** Current contents of C (read when beta != 0; elements outside the product are kept). */
  c?: Float32Array;
  bias?: Float32Array;
}

/**
 * C = alpha * op(A) op(B) + beta * C + bias (bias per output column), row-major, batched, in
 * plain loops with f64 accumulation. Returns a new array shaped like `c` (or exactly as long as
 * the output needs when `c` is absent). beta == 0 ignores C's old values, NaN included.
 */
export function matmulRef(args: MatmulRefArgs): Float32Array {
  const { M, N, K } = args;
  const transA = args.transA ?? false;
  const transB = args.transB ?? false;
  const batch = args.batch ?? 1;
  const lda = args.lda ?? (transA ? M : K);
  const ldb = args.ldb ?? (transB ? K : N);
  const ldc = args.ldc ?? N;
  const strideA = args.strideA ?? M * K;
  const strideB = args.strideB ?? K * N;
  const strideC = args.strideC ?? M * N;
  const alpha = args.alpha ?? 1;
  const beta = args.beta ?? 0;
  const offA = args.offsetA ?? 0;
  const offB = args.offsetB ?? 0;
  const offC = args.offsetC ?? 0;
  const offBias = args.offsetBias ?? 0;
  const bAt =
    args.b instanceof Uint16Array
      ? (i: number) => f16BitsToF32((args.b as Uint16Array)[i]!)
      : (i: number) => (args.b as Float32Array)[i]!;
  const outLen = batch * M * N === 0 ? 0 : offC + (batch - 1) * strideC + (M - 1) * ldc + N;
  const out = args.c ? Float32Array.from(args.c) : new Float32Array(outLen);
  for (let z = 0; z < batch; z++) {
    const ba = offA + z * strideA;
    const bb = offB + z * strideB;
    const bc = offC + z * strideC;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = args.a[transA ? ba + k * lda + i : ba + i * lda + k]!;
          const bv = bAt(transB ? bb + j * ldb + k : bb + k * ldb + j);
          s += av * bv;
        }
        const idx = bc + i * ldc + j;
        let v = alpha * s;
        if (beta !== 0) v += beta * (args.c ? args.c[idx]! : 0);
        if (args.bias) v += args.bias[offBias + j]!;
        out[idx] = v;
      }
    }
  }
  return out;
}
