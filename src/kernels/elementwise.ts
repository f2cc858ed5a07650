// Elementwise vector ops (y = a*x + b*y, column copies) with CPU references: bindings for shaders/elementwise.wgsl.
import code from '../../shaders/elementwise.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type Recorder } from '../gpu';
import { kernelSpec } from './kernelSpec';
import { grid1d } from './grid';

const AXPBY = kernelSpec(code, 'axpby', 'axpby', ['uniform', 'read', 'write']);

/** y = a*x + b*y over n f32 elements, recorded into `rec`. */
export function axpby(gpu: Gpu, rec: Recorder, x: BufferBinding, y: BufferBinding, n: number, a: number, b: number): void {
  const g = grid1d(n, 256, gpu.limits.maxComputeWorkgroupsPerDimension);
  rec.dispatch(AXPBY, {
    buffers: [x, y],
    params: new Params().u32(n).u32(g.rowStride).f32(a).f32(b).bytes(),
    workgroups: g.workgroups,
  });
}

/** Plain-TypeScript reference of axpby. */
export function axpbyRef(x: Float32Array, y: Float32Array, a: number, b: number): Float32Array {
  return y.map((v, i) => a * x[i]! + b * v);
}

const COPY_COLUMNS = kernelSpec(code, 'copy_columns', 'copy_columns', ['uniform', 'read', 'write']);

export interface CopyColumnsArgs {
  src: BufferBinding;
  dst: BufferBinding;
  rows: number;
  /** Columns copied per row. */
  width: number;
  srcStride: number;
  srcOffset: number;
  dstStride: number;
  dstOffset: number;
  /** dst += src instead of dst = src. */
  accumulate?: boolean;
}

/** dst[r, dstOffset + c] (+)= src[r, srcOffset + c] for c < width: column blocks of row-major matrices. */
export function copyColumns(gpu: Gpu, rec: Recorder, a: CopyColumnsArgs): void {
  const g = grid1d(a.rows * a.width, 256, gpu.limits.maxComputeWorkgroupsPerDimension);
  rec.dispatch(COPY_COLUMNS, {
    buffers: [a.src, a.dst],
    params: new Params()
      .u32(a.rows)
      .u32(a.width)
      .u32(a.srcStride)
      .u32(a.srcOffset)
      .u32(a.dstStride)
      .u32(a.dstOffset)
      .u32(g.rowStride)
      .u32(a.accumulate ? 1 : 0)
      .bytes(),
    workgroups: g.workgroups,
  });
}

export function copyColumnsRef(src: Float32Array, dst: Float32Array, a: Omit<CopyColumnsArgs, 'src' | 'dst'>): Float32Array {
  const out = dst.slice();
  for (let r = 0; r < a.rows; r++) {
    for (let c = 0; c < a.width; c++) {
      const v = src[r * a.srcStride + a.srcOffset + c]!;
      const d = r * a.dstStride + a.dstOffset + c;
      out[d] = a.accumulate ? out[d]! + v : v;
    }
  }
  return out;
}
