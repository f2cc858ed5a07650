import code from '../../shaders/elementwise.wgsl?raw';
import { Params, type Gpu, type KernelSpec, type Recorder } from '../gpu';
import { grid1d } from './grid';

const AXPBY: KernelSpec = { name: 'axpby', code, entryPoint: 'axpby', bindings: ['uniform', 'read', 'write'] };

/** y = a*x + b*y over n f32 elements, recorded into `rec`. */
export function axpby(gpu: Gpu, rec: Recorder, x: GPUBuffer, y: GPUBuffer, n: number, a: number, b: number): void {
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
