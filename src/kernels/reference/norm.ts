// Plain-TypeScript references for src/kernels/norm.ts (f64 arithmetic, row-major [rows, cols]).

type Vec = ArrayLike<number>;

/** A norm's backward: the gradients of its input and parameters from dOut, rows x cols. */
type NormBackwardRef<Grads> = (x: Vec, weight: Vec, dOut: Vec, rows: number, cols: number, eps: number) => Grads;

export function rmsNormRef(
  x: Vec,
  weight: Vec,
  rows: number,
  cols: number,
  eps: number,
): { out: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(rows * cols);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += x[r * cols + c]! ** 2;
    const k = 1 / Math.sqrt(ss / cols + eps);
    rstd[r] = k;
    for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c]! * k * weight[c]!;
  }
  return { out, rstd };
}

export const rmsNormBackwardRef: NormBackwardRef<{ dx: Float64Array; dWeight: Float64Array }> = (x, weight, dOut, rows, cols, eps) => {
  const { rstd } = rmsNormRef(x, weight, rows, cols, eps);
  const dx = new Float64Array(rows * cols);
  const dWeight = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const k = rstd[r]!;
    let s = 0;
    for (let c = 0; c < cols; c++) s += dOut[r * cols + c]! * weight[c]! * x[r * cols + c]!;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      dx[i] = k * dOut[i]! * weight[c]! - ((k * k * k) / cols) * s * x[i]!;
      dWeight[c] = dWeight[c]! + dOut[i]! * x[i]! * k;
    }
  }
  return { dx, dWeight };
};

export function layerNormRef(
  x: Vec,
  weight: Vec,
  bias: Vec,
  rows: number,
  cols: number,
  eps: number,
): { out: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(rows * cols);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[r * cols + c]!;
    const m = s / cols;
    let v = 0;
    for (let c = 0; c < cols; c++) v += (x[r * cols + c]! - m) ** 2;
    const k = 1 / Math.sqrt(v / cols + eps);
    mean[r] = m;
    rstd[r] = k;
    for (let c = 0; c < cols; c++) out[r * cols + c] = (x[r * cols + c]! - m) * k * weight[c]! + bias[c]!;
  }
  return { out, mean, rstd };
}

export const layerNormBackwardRef: NormBackwardRef<{ dx: Float64Array; dWeight: Float64Array; dBias: Float64Array }> = (x, weight, dOut, rows, cols, eps) => {
  const zeros = new Float64Array(cols);
  const { mean, rstd } = layerNormRef(x, weight, zeros, rows, cols, eps);
  const dx = new Float64Array(rows * cols);
  const dWeight = new Float64Array(cols);
  const dBias = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const m = mean[r]!;
    const k = rstd[r]!;
    let sg = 0;
    let sgx = 0;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const gh = dOut[i]! * weight[c]!;
      sg += gh;
      sgx += gh * (x[i]! - m) * k;
    }
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const xhat = (x[i]! - m) * k;
      dx[i] = k * (dOut[i]! * weight[c]! - sg / cols - (xhat * sgx) / cols);
      dWeight[c] = dWeight[c]! + dOut[i]! * xhat;
      dBias[c] = dBias[c]! + dOut[i]!;
    }
  }
  return { dx, dWeight, dBias };
};
