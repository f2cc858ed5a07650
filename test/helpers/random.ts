import { Rng } from '../../src/selftest/compare';

export { Rng };

/** Row data with a per-row offset and scale, so that the mean and variance actually matter. */
export function rowData(rng: Rng, rows: number, cols: number): Float32Array {
  const x = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const shift = rng.uniform(-2, 2);
    const scale = rng.uniform(0.3, 3);
    for (let c = 0; c < cols; c++) x[r * cols + c] = shift + scale * rng.uniform();
  }
  return x;
}
