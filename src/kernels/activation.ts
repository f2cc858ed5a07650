// Activation kernels (GELU variants, SiLU, SwiGLU), forward and backward: bindings for shaders/activation.wgsl.
import code from '../../shaders/activation.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type KernelSpec, type Recorder } from '../gpu';
import { grid1d } from './grid';

/** Activation functions the engine runs. */
export type ActivationKind = 'silu' | 'gelu_tanh' | 'gelu_erf';

const OP: Record<ActivationKind, number> = { silu: 0, gelu_tanh: 1, gelu_erf: 2 };

/** Maps a Hugging Face `hidden_act` / `activation_function` name to an ActivationKind. */
export function activationFromHf(name: string): ActivationKind {
  switch (name) {
    case 'silu':
    case 'swish':
      return 'silu';
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return 'gelu_tanh';
    case 'gelu':
      return 'gelu_erf';
    default:
      throw new Error(`Unsupported activation '${name}' (supported: silu, gelu_new, gelu_pytorch_tanh, gelu)`);
  }
}

const spec = (entryPoint: string, storage: readonly ('read' | 'write')[]): KernelSpec => ({
  name: `activation.${entryPoint}`,
  code,
  entryPoint,
  bindings: ['uniform', ...storage],
});

const ACT_FWD = spec('act_fwd', ['read', 'write']);
const ACT_BWD = spec('act_bwd', ['read', 'read', 'write']);
const GLU_FWD = spec('swiglu_fwd', ['read', 'read', 'write']);
const GLU_BWD = spec('swiglu_bwd', ['read', 'read', 'read', 'write', 'write']);
const GLU_BWD_FUSED = spec('swiglu_bwd_fused', ['read', 'read', 'read', 'write']);

const GROUP = 256;

export interface ActivationArgs {
  kind: ActivationKind;
  /** n f32 inputs. */
  x: BufferBinding;
  /** n f32 outputs (a different buffer from x). */
  out: BufferBinding;
  n: number;
}

/** out = act(x), elementwise. */
export function activation(gpu: Gpu, rec: Recorder, a: ActivationArgs): void {
  const g = grid1d(a.n, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  rec.dispatch(ACT_FWD, {
    buffers: [a.x, a.out],
    params: new Params().u32(a.n).u32(g.rowStride).u32(OP[a.kind]).bytes(),
    workgroups: g.workgroups,
    label: `activation.${a.kind}`,
  });
}

export interface ActivationBackwardArgs {
  kind: ActivationKind;
  /** The forward input. */
  x: BufferBinding;
  dOut: BufferBinding;
  dx: BufferBinding;
  n: number;
}

/** dx = dOut * act'(x), elementwise. */
export function activationBackward(gpu: Gpu, rec: Recorder, a: ActivationBackwardArgs): void {
  const g = grid1d(a.n, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  rec.dispatch(ACT_BWD, {
    buffers: [a.x, a.dOut, a.dx],
    params: new Params().u32(a.n).u32(g.rowStride).u32(OP[a.kind]).bytes(),
    workgroups: g.workgroups,
    label: `activation.${a.kind}.backward`,
  });
}

/**
 * Where gate and up live, in elements: element (r, c) of gate is gate[gateOffset + r*gateStride + c].
 * Defaults: two separate contiguous [rows, width] buffers.
 */
export interface GluLayout {
  gateOffset?: number;
  gateStride?: number;
  upOffset?: number;
  upStride?: number;
}

/** Layout of one fused [rows, 2*width] buffer holding gate in its first half, up in its second. */
export function fusedGluLayout(width: number): Required<GluLayout> {
  return { gateOffset: 0, gateStride: 2 * width, upOffset: width, upStride: 2 * width };
}

export interface SwigluArgs extends GluLayout {
  /** Pass the same buffer as gate and up for a fused layout. */
  gate: BufferBinding;
  up: BufferBinding;
  /** [rows, width] contiguous output. */
  out: BufferBinding;
  rows: number;
  width: number;
}

function gluGrid(gpu: Gpu, rows: number, width: number): { workgroups: [number, number]; rowStride: number } {
  if (rows * width >= 2 ** 32) throw new Error(`swiglu: ${rows}x${width} elements overflow u32 indices`);
  return grid1d(rows * width, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
}

/** The shader's GLU params: sizes, the gate/up layout (defaults filled in), then the gradients' layout. */
function gluParams(
  rows: number,
  width: number,
  rowStride: number,
  l: GluLayout,
  d: { dGateOffset: number; dGateStride: number; dUpOffset: number; dUpStride: number },
): Uint8Array {
  return new Params()
    .u32(rows)
    .u32(width)
    .u32(rowStride)
    .u32(l.gateOffset ?? 0)
    .u32(l.gateStride ?? width)
    .u32(l.upOffset ?? 0)
    .u32(l.upStride ?? width)
    .u32(d.dGateOffset)
    .u32(d.dGateStride)
    .u32(d.dUpOffset)
    .u32(d.dUpStride)
    .bytes();
}

/** h = silu(gate) * up (Llama / Qwen / Mistral MLP). */
export function swiglu(gpu: Gpu, rec: Recorder, a: SwigluArgs): void {
  const g = gluGrid(gpu, a.rows, a.width);
  rec.dispatch(GLU_FWD, {
    buffers: [a.gate, a.up, a.out],
    // Gradient addressing is unused by the forward kernel, but part of the struct: zeros.
    params: gluParams(a.rows, a.width, g.rowStride, a, { dGateOffset: 0, dGateStride: 0, dUpOffset: 0, dUpStride: 0 }),
    workgroups: g.workgroups,
  });
}

export interface SwigluBackwardArgs extends GluLayout {
  gate: BufferBinding;
  up: BufferBinding;
  /** [rows, width] contiguous gradient of h. */
  dOut: BufferBinding;
  /**
   * Gradients of gate and up, addressed like gate/up with their own offsets and strides. Pass the
   * same binding object twice for one fused [rows, 2*width] gradient buffer.
   */
  dGate: BufferBinding;
  dUp: BufferBinding;
  dGateOffset?: number;
  dGateStride?: number;
  dUpOffset?: number;
  dUpStride?: number;
  rows: number;
  width: number;
}

const bufferOf = (b: BufferBinding): GPUBuffer => ('buffer' in b ? b.buffer : b);

/** dGate = dOut * up * silu'(gate), dUp = dOut * silu(gate). */
export function swigluBackward(gpu: Gpu, rec: Recorder, a: SwigluBackwardArgs): void {
  const g = gluGrid(gpu, a.rows, a.width);
  const params = gluParams(a.rows, a.width, g.rowStride, a, {
    dGateOffset: a.dGateOffset ?? 0,
    dGateStride: a.dGateStride ?? a.width,
    dUpOffset: a.dUpOffset ?? 0,
    dUpStride: a.dUpStride ?? a.width,
  });
  // Two writable bindings of one buffer would alias, which WebGPU rejects: bind it once instead.
  if (bufferOf(a.dGate) === bufferOf(a.dUp)) {
    if (a.dGate !== a.dUp) throw new Error('swigluBackward: a fused gradient buffer must be passed as the same binding twice');
    rec.dispatch(GLU_BWD_FUSED, { buffers: [a.gate, a.up, a.dOut, a.dGate], params, workgroups: g.workgroups });
    return;
  }
  rec.dispatch(GLU_BWD, { buffers: [a.gate, a.up, a.dOut, a.dGate, a.dUp], params, workgroups: g.workgroups });
}
