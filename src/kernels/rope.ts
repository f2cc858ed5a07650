// Rotary position embeddings (Hugging Face rotate_half layout), forward and backward: bindings for shaders/rope.wgsl.
import code from '../../shaders/rope.wgsl?raw';
import { Params, type BufferBinding, type Gpu, type KernelSpec, type Recorder } from '../gpu';
import { kernelSpec } from './kernelSpec';
import { grid1d } from './grid';

/** `rope_scaling` (or `rope_parameters`) of a Hugging Face config.json. */
export interface RopeScalingConfig {
  rope_type?: string;
  /** Older configs spell rope_type as `type`. */
  type?: string;
  rope_theta?: number;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
  partial_rotary_factor?: number;
}

/** The fields of a Hugging Face config.json that decide the rotary frequencies. */
export interface RopeConfig {
  rope_theta?: number;
  head_dim?: number;
  hidden_size?: number;
  num_attention_heads?: number;
  partial_rotary_factor?: number;
  rope_scaling?: RopeScalingConfig | null;
  /** Newer transformers versions keep theta and scaling together here. */
  rope_parameters?: RopeScalingConfig | null;
}

export interface RopeFrequencies {
  /** [rotaryDim / 2] inverse frequencies, f32 as transformers computes them. */
  invFreq: Float32Array;
  /** Multiplies cos and sin (transformers' attention_scaling); 1 for the supported types. */
  attentionFactor: number;
  /** Number of leading head dimensions that rotate (head_dim * partial_rotary_factor). */
  rotaryDim: number;
}

const f32 = Math.fround;

/**
 * Rotary inverse frequencies following transformers' modeling_rope_utils:
 * - default: inv_freq[i] = 1 / theta^(2i / dim)
 * - linear:  default / factor
 * - llama3:  wavelengths 2 pi / inv_freq longer than original_max_position_embeddings /
 *            low_freq_factor are divided by factor, those shorter than .../high_freq_factor are
 *            kept, and those in between are blended with
 *            smooth = (original_max_position_embeddings / wavelen - low) / (high - low),
 *            inv = (1 - smooth) * inv / factor + smooth * inv.
 * Intermediate values are rounded to f32 where transformers holds them in f32 tensors.
 */
export function ropeInvFreq(config: RopeConfig): RopeFrequencies {
  const scaling = config.rope_parameters ?? config.rope_scaling ?? null;
  const base = scaling?.rope_theta ?? config.rope_theta ?? 10000;
  const headDim =
    config.head_dim ??
    (config.hidden_size !== undefined && config.num_attention_heads
      ? Math.floor(config.hidden_size / config.num_attention_heads)
      : undefined);
  if (headDim === undefined) throw new Error('ropeInvFreq: config needs head_dim or hidden_size and num_attention_heads');
  const partial = scaling?.partial_rotary_factor ?? config.partial_rotary_factor ?? 1;
  const dim = Math.floor(headDim * partial);
  if (dim < 2 || dim % 2 !== 0) throw new Error(`ropeInvFreq: rotary dimension ${dim} must be even and >= 2`);

  const invFreq = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) invFreq[i] = f32(1 / f32(base ** f32((2 * i) / dim)));

  const type = scaling?.rope_type ?? scaling?.type ?? 'default';
  switch (type) {
    case 'default':
      break;
    case 'linear': {
      const factor = need(scaling, 'factor');
      for (let i = 0; i < invFreq.length; i++) invFreq[i] = f32(invFreq[i]! / factor);
      break;
    }
    case 'llama3': {
      const factor = need(scaling, 'factor');
      const low = need(scaling, 'low_freq_factor');
      const high = need(scaling, 'high_freq_factor');
      const oldContext = need(scaling, 'original_max_position_embeddings');
      const lowFreqWavelen = oldContext / low;
      const highFreqWavelen = oldContext / high;
      for (let i = 0; i < invFreq.length; i++) {
        const inv = invFreq[i]!;
        // Same operation order as the torch expression, each step rounded to f32.
        const wavelen = f32(f32(2 * Math.PI) / inv);
        if (wavelen > lowFreqWavelen) invFreq[i] = f32(inv / factor);
        else if (wavelen >= highFreqWavelen) {
          const smooth = f32(f32(f32(oldContext / wavelen) - low) / (high - low));
          invFreq[i] = f32(f32(f32(f32(1 - smooth) * inv) / factor) + f32(smooth * inv));
        }
      }
      break;
    }
    default:
      throw new Error(`ropeInvFreq: rope_type '${type}' is not supported (default, linear, llama3)`);
  }
  return { invFreq, attentionFactor: 1, rotaryDim: dim };
}

function need(scaling: RopeScalingConfig | null, key: keyof RopeScalingConfig): number {
  const v = scaling?.[key];
  if (typeof v !== 'number') throw new Error(`ropeInvFreq: rope_scaling.${key} is missing`);
  return v;
}

const ROPE_INPLACE = kernelSpec(code, 'rope.inplace', 'rope_inplace', ['uniform', 'read', 'read', 'write']);
const ROPE_COPY = kernelSpec(code, 'rope.copy', 'rope_copy', ['uniform', 'read', 'read', 'read', 'write']);

const ROPE_QK_INPLACE = kernelSpec(code, 'rope.qk_inplace', 'rope_qk_inplace', ['uniform', 'read', 'read', 'write', 'write']);

interface RopeCommon {
  /** [rotaryDim / 2] f32, from ropeInvFreq. */
  invFreq: BufferBinding;
  /** Rows of the tensor: batch * seqLen. */
  tokens: number;
  heads: number;
  headDim: number;
  /** Leading dimensions of each head that rotate; the default is headDim. */
  rotaryDim?: number;
  /** u32 [tokens] positions. Without it, pos = positionStart + token % seqLen. */
  positions?: BufferBinding;
  positionStart?: number;
  /** Tokens per sequence when positions come from positionStart; the default is tokens. */
  seqLen?: number;
  /** cos/sin multiplier (RopeFrequencies.attentionFactor); the default is 1. */
  attentionFactor?: number;
}

export interface RopeArgs extends RopeCommon {
  /** [tokens, heads, headDim] at element xOffset, xTokenStride elements per token (default heads*headDim). */
  x: BufferBinding;
  xOffset?: number;
  xTokenStride?: number;
  /** Out-of-place output (same addressing with its own offset/stride); omitted: x is rotated in place. */
  out?: BufferBinding;
  outOffset?: number;
  outTokenStride?: number;
}

export interface RopeBackwardArgs extends RopeCommon {
  /** Gradient of the rotated tensor; rotated back in place unless dx is given. */
  dOut: BufferBinding;
  dOutOffset?: number;
  dOutTokenStride?: number;
  dx?: BufferBinding;
  dxOffset?: number;
  dxTokenStride?: number;
}

/** Rotates q or k (call once per tensor: q with H heads, k with Hkv heads). */
export function rope(gpu: Gpu, rec: Recorder, a: RopeArgs): void {
  dispatchRope(gpu, rec, a, a.x, a.xOffset, a.xTokenStride, a.out, a.outOffset, a.outTokenStride, 1);
}

export interface RopeQKArgs extends Omit<RopeCommon, 'heads'> {
  /** [tokens, qHeads, headDim], packed; rotated in place. */
  q: BufferBinding;
  qHeads: number;
  /** [tokens, kHeads, headDim], packed; rotated in place. */
  k: BufferBinding;
  kHeads: number;
  /** Rotate by the opposite angle: the gradient through rope, for dq and dk. */
  backward?: boolean;
}

/**
 * Rotates q and k (or, backward, dq and dk) in place in one dispatch: the same per-element
 * arithmetic as `rope` called once for each, so the results are identical to it.
 */
export function ropeQK(gpu: Gpu, rec: Recorder, a: RopeQKArgs): void {
  const heads = a.qHeads + a.kHeads;
  ropeDispatch(gpu, rec, { ...a, heads }, { srcOffset: 0, srcStride: a.qHeads * a.headDim, dstOffset: 0, dstStride: a.kHeads * a.headDim, qHeads: a.qHeads }, a.backward ? -1 : 1, ROPE_QK_INPLACE, [a.q, a.k]);
}

/** Gradient through rope: the rotation by the opposite angle. */
export function ropeBackward(gpu: Gpu, rec: Recorder, a: RopeBackwardArgs): void {
  dispatchRope(gpu, rec, a, a.dOut, a.dOutOffset, a.dOutTokenStride, a.dx, a.dxOffset, a.dxTokenStride, -1);
}

function dispatchRope(
  gpu: Gpu,
  rec: Recorder,
  a: RopeCommon,
  src: BufferBinding,
  srcOffset: number | undefined,
  srcStride: number | undefined,
  dst: BufferBinding | undefined,
  dstOffset: number | undefined,
  dstStride: number | undefined,
  sinSign: number,
): void {
  const packed = a.heads * a.headDim;
  const layout = { srcOffset: srcOffset ?? 0, srcStride: srcStride ?? packed, dstOffset: dst ? (dstOffset ?? 0) : 0, dstStride: dst ? (dstStride ?? packed) : 0, qHeads: 0 };
  if (dst) ropeDispatch(gpu, rec, a, layout, sinSign, ROPE_COPY, [src, dst]);
  else ropeDispatch(gpu, rec, a, layout, sinSign, ROPE_INPLACE, [src]);
}

/** Element addressing of the two tensors a rope kernel reads and writes (see RopeParams). */
interface RopeLayout {
  srcOffset: number;
  srcStride: number;
  dstOffset: number;
  dstStride: number;
  qHeads: number;
}

function ropeDispatch(gpu: Gpu, rec: Recorder, a: RopeCommon, l: RopeLayout, sinSign: number, spec: KernelSpec, tensors: BufferBinding[]): void {
  const rotaryDim = a.rotaryDim ?? a.headDim;
  if (a.headDim % 2 !== 0) throw new Error(`rope: headDim ${a.headDim} must be even`);
  if (rotaryDim % 2 !== 0 || rotaryDim < 2 || rotaryDim > a.headDim) {
    throw new Error(`rope: rotaryDim ${rotaryDim} must be even and in [2, headDim]`);
  }
  const seqLen = a.seqLen ?? a.tokens;
  if (!a.positions && seqLen < 1 && a.tokens > 0) throw new Error('rope: seqLen must be >= 1');
  const threads = a.tokens * a.heads * (a.headDim / 2);
  const g = grid1d(threads, 256, gpu.limits.maxComputeWorkgroupsPerDimension);
  const params = new Params()
    .u32(a.tokens)
    .u32(a.heads)
    .u32(a.headDim)
    .u32(rotaryDim / 2)
    .u32(Math.max(seqLen, 1))
    .u32(a.positionStart ?? 0)
    .u32(a.positions ? 1 : 0)
    .u32(g.rowStride)
    .u32(l.srcOffset)
    .u32(l.srcStride)
    .u32(l.dstOffset) // in place: the output addressing is the input's
    .u32(l.dstStride)
    .f32(sinSign)
    .f32(a.attentionFactor ?? 1)
    .u32(l.qHeads)
    .bytes();
  // Without positions the binding still needs a buffer; invFreq stands in and is never read.
  const positions = a.positions ?? a.invFreq;
  rec.dispatch(spec, { buffers: [positions, a.invFreq, ...tensors], params, workgroups: g.workgroups });
}
