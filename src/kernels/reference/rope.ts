// Plain-TypeScript reference for src/kernels/rope.ts: contiguous [tokens, heads, headDim],
// Hugging Face rotate_half pairing (j, j + rotaryDim/2). The angle is the f32 product
// pos * inv_freq (as transformers forms it); cos, sin and the rotation are f64.

type Vec = ArrayLike<number>;

export interface RopeRefArgs {
  tokens: number;
  heads: number;
  headDim: number;
  /** [rotaryDim / 2] */
  invFreq: Vec;
  /** Position of each token. */
  positions: Vec;
  attentionFactor?: number;
}

function rotate(x: Vec, a: RopeRefArgs, sinSign: number): Float64Array {
  const { tokens, heads, headDim, invFreq, positions } = a;
  const half = invFreq.length;
  const scale = a.attentionFactor ?? 1;
  const y = Float64Array.from(x);
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < half; j++) {
      const angle = Math.fround(positions[t]! * invFreq[j]!);
      const c = Math.cos(angle) * scale;
      const s = sinSign * Math.sin(angle) * scale;
      for (let h = 0; h < heads; h++) {
        const b = (t * heads + h) * headDim;
        const x1 = x[b + j]!;
        const x2 = x[b + j + half]!;
        y[b + j] = x1 * c - x2 * s;
        y[b + j + half] = x2 * c + x1 * s;
      }
    }
  }
  return y;
}

export function ropeRef(x: Vec, a: RopeRefArgs): Float64Array {
  return rotate(x, a, 1);
}

/** Gradient of ropeRef with respect to x: the transpose rotation. */
export function ropeBackwardRef(dOut: Vec, a: RopeRefArgs): Float64Array {
  return rotate(dOut, a, -1);
}

/** Positions of `tokens` tokens in sequences of seqLen, starting at `start` (the kernel's default). */
export function sequentialPositions(tokens: number, seqLen: number, start = 0): Uint32Array {
  return Uint32Array.from({ length: tokens }, (_, t) => start + (t % seqLen));
}
