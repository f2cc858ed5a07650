// Plain-TypeScript references for src/kernels/embedding.ts. Tables are given as decoded values
// (f16 tables: convert with fromF16Array first), row-major [rows, cols].

type Vec = ArrayLike<number>;

/** out[t] = table[ids[t]] (+ positionTable[positions[t]]). */
export function embeddingRef(
  table: Vec,
  ids: Vec,
  cols: number,
  position?: { table: Vec; positions: Vec },
): Float64Array {
  const out = new Float64Array(ids.length * cols);
  for (let t = 0; t < ids.length; t++) {
    for (let c = 0; c < cols; c++) {
      let v = table[ids[t]! * cols + c]!;
      if (position) v += position.table[position.positions[t]! * cols + c]!;
      out[t * cols + c] = v;
    }
  }
  return out;
}

/** Gradient of embeddingRef with respect to the token table: dTable[ids[t]] += dOut[t]. */
export function embeddingBackwardRef(dOut: Vec, ids: Vec, vocab: number, cols: number): Float64Array {
  const d = new Float64Array(vocab * cols);
  for (let t = 0; t < ids.length; t++) {
    for (let c = 0; c < cols; c++) d[ids[t]! * cols + c] = d[ids[t]! * cols + c]! + dOut[t * cols + c]!;
  }
  return d;
}
