import type { Gpu } from '../gpu';
import { loraScale } from '../kernels/lora';
import { Rng } from '../util/random';
import type { ModelConfig } from './config';
import type { LinearWeight, ModelWeights } from './weights';

/** LoRA hyperparameters, named as PEFT's LoraConfig names them. */
export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** Module names to adapt: `q_proj`, `v_proj`, ... (llama family) or `c_attn`, `c_proj`, `c_fc` (GPT-2). */
  targetModules: string[];
  /** rsLoRA: scale alpha / sqrt(r) instead of alpha / r. */
  useRslora: boolean;
}

export const LLAMA_ALL_LINEAR = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
export const GPT2_ALL_LINEAR = ['c_attn', 'c_proj', 'c_fc'];

export function defaultLoraConfig(config: ModelConfig, overrides: Partial<LoraConfig> = {}): LoraConfig {
  return {
    r: 8,
    alpha: 16,
    dropout: 0,
    targetModules: config.family === 'gpt2' ? GPT2_ALL_LINEAR : LLAMA_ALL_LINEAR,
    useRslora: false,
    ...overrides,
  };
}

export class LoraConfigError extends Error {
  override name = 'LoraConfigError';
}

/** A tensor of the adapter: a byte range of one of its flat buffers (bindable as it is). */
export interface LoraTensor {
  buffer: GPUBuffer;
  /** Byte offset, a multiple of LORA_ALIGN_BYTES. */
  offset: number;
  /** Bytes: n * 4. */
  size: number;
  /** Elements. */
  n: number;
}

/** One adapted linear layer: A [r, in], B [out, r], their gradients and AdamW moments. */
export interface LoraModule {
  linear: LinearWeight;
  /** PEFT's key prefix: `base_model.model.<module path>`. */
  peftKey: string;
  a: LoraTensor;
  b: LoraTensor;
  gradA: LoraTensor;
  gradB: LoraTensor;
  expAvgA: LoraTensor;
  expAvgSqA: LoraTensor;
  expAvgB: LoraTensor;
  expAvgSqB: LoraTensor;
  r: number;
}

/**
 * Where the adapter's tensors live: A and B of every module back to back (PyTorch's parameter
 * order), in one buffer per role, so the optimizer touches all of them in one dispatch whatever
 * the number of modules. A segment ends where a buffer would pass the device's binding limit.
 * The gaps between tensors (alignment) are zero everywhere and stay zero under AdamW.
 */
export interface LoraSegment {
  params: GPUBuffer;
  grads: GPUBuffer;
  expAvg: GPUBuffer;
  expAvgSq: GPUBuffer;
  /** Elements per buffer (a multiple of LORA_ALIGN_BYTES / 4). */
  n: number;
}

/** Tensor starts are aligned to 256 bytes, WebGPU's largest minStorageBufferOffsetAlignment. */
export const LORA_ALIGN_BYTES = 256;

/** PEFT's module path for a base-model module (GPT2LMHeadModel nests the body in `transformer.`). */
export function peftModulePath(config: ModelConfig, module: string): string {
  return `base_model.model.${config.family === 'gpt2' ? 'transformer.' : ''}${module}`;
}

/**
 * LoRA adapters for every targeted linear layer, kept apart from the base weights so the base
 * and any number of adapters can share one copy of the model on the GPU.
 */
export class LoraAdapter {
  readonly modules = new Map<LinearWeight, LoraModule>();
  readonly segments: LoraSegment[] = [];
  readonly scale: number;

  constructor(
    private readonly gpu: Gpu,
    readonly modelConfig: ModelConfig,
    weights: ModelWeights,
    readonly config: LoraConfig,
  ) {
    const { r, targetModules } = config;
    if (!Number.isInteger(r) || r < 1) throw new LoraConfigError(`LoRA rank r must be a positive integer, got ${r}`);
    if (!(config.dropout >= 0 && config.dropout < 1)) throw new LoraConfigError(`lora_dropout must be in [0, 1), got ${config.dropout}`);
    if (!(config.alpha > 0)) throw new LoraConfigError(`lora_alpha must be positive, got ${config.alpha}`);
    const available = new Set<string>();
    const targets: LinearWeight[] = [];
    for (const layer of weights.layers) {
      for (const lin of [...layer.attnIn, layer.attnOut, ...layer.mlpIn, layer.mlpOut]) {
        available.add(lin.kind);
        if (targetModules.includes(lin.kind)) targets.push(lin);
      }
    }
    const unknown = targetModules.filter((t) => !available.has(t));
    if (unknown.length) {
      throw new LoraConfigError(
        `target_modules ${unknown.join(', ')} do not exist in this ${modelConfig.modelType} model (it has ${[...available].join(', ')})`,
      );
    }
    if (targets.length === 0) throw new LoraConfigError('target_modules selects no layer');
    this.allocate(targets);
    this.scale = loraScale(config.alpha, r, config.useRslora);
  }

  /** Lays A and B of every target out in flat segments, all four roles zeroed. */
  private allocate(targets: readonly LinearWeight[]): void {
    const { r } = this.config;
    const align = LORA_ALIGN_BYTES / 4;
    const limits = this.gpu.limits;
    const maxFloats = Math.floor(Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize) / LORA_ALIGN_BYTES) * align;
    type Slot = { segment: number; at: number; n: number };
    const layout: { lin: LinearWeight; a: Slot; b: Slot }[] = [];
    const sizes: number[] = [0];
    const place = (n: number, what: string): Slot => {
      if (n > maxFloats) throw new LoraConfigError(`${what} needs ${n * 4} bytes, over this GPU's ${maxFloats * 4}-byte binding limit`);
      if (sizes.at(-1)! + n > maxFloats) sizes.push(0);
      const segment = sizes.length - 1;
      const at = sizes[segment]!;
      sizes[segment] = at + Math.ceil(n / align) * align;
      return { segment, at, n };
    };
    for (const lin of targets) layout.push({ lin, a: place(r * lin.inFeatures, `${lin.name}.lora_A`), b: place(lin.outFeatures * r, `${lin.name}.lora_B`) });
    for (const [i, n] of sizes.entries()) {
      const make = (what: string) => {
        const b = this.gpu.createBuffer(n * 4, `lora.${what}${sizes.length > 1 ? i : ''}`);
        // Pooled buffers hold whatever their last user left: start every tensor (moments above
        // all) and the gaps between them at zero.
        this.gpu.write(b, new Float32Array(n));
        return b;
      };
      this.segments.push({ params: make('params'), grads: make('grads'), expAvg: make('exp_avg'), expAvgSq: make('exp_avg_sq'), n });
    }
    const slice = (role: keyof Omit<LoraSegment, 'n'>, s: Slot): LoraTensor => ({ buffer: this.segments[s.segment]![role], offset: s.at * 4, size: s.n * 4, n: s.n });
    for (const { lin, a, b } of layout) {
      this.modules.set(lin, {
        linear: lin,
        peftKey: peftModulePath(this.modelConfig, lin.name),
        a: slice('params', a),
        b: slice('params', b),
        gradA: slice('grads', a),
        gradB: slice('grads', b),
        expAvgA: slice('expAvg', a),
        expAvgSqA: slice('expAvgSq', a),
        expAvgB: slice('expAvg', b),
        expAvgSqB: slice('expAvgSq', b),
        r,
      });
    }
  }

  /** Writes a tensor (n floats). */
  write(t: LoraTensor, data: Float32Array): void {
    if (data.length !== t.n) throw new Error(`LoRA tensor write: ${data.length} values for ${t.n} elements`);
    this.gpu.write(t.buffer, data, t.offset);
  }

  /**
   * Reads tensors back with one read per flat buffer involved (not one per tensor: an adapter
   * has hundreds), in the order given.
   */
  async readMany(tensors: readonly LoraTensor[]): Promise<Float32Array[]> {
    const whole = new Map<GPUBuffer, Promise<Float32Array>>();
    for (const t of tensors) if (!whole.has(t.buffer)) whole.set(t.buffer, this.gpu.readF32(t.buffer));
    const out: Float32Array[] = [];
    for (const t of tensors) {
      const all = await whole.get(t.buffer)!;
      out.push(all.slice(t.offset / 4, t.offset / 4 + t.n));
    }
    return out;
  }

  /** Trainable parameter count (A and B of every module). */
  get parameterCount(): number {
    let n = 0;
    for (const m of this.modules.values()) n += m.r * (m.linear.inFeatures + m.linear.outFeatures);
    return n;
  }

  /**
   * PEFT's initialisation: A Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in));
   * B zero, so the adapted model starts equal to the base. Optimizer state is cleared.
   */
  initialize(seed: number): void {
    const rng = new Rng(seed);
    for (const m of this.modules.values()) {
      const bound = 1 / Math.sqrt(m.linear.inFeatures);
      this.write(m.a, rng.f32(m.a.n, -bound, bound));
      this.write(m.b, new Float32Array(m.b.n));
    }
    this.resetOptimizer();
  }

  resetOptimizer(): void {
    for (const seg of this.segments) {
      this.gpu.write(seg.expAvg, new Float32Array(seg.n));
      this.gpu.write(seg.expAvgSq, new Float32Array(seg.n));
    }
  }

  /** Sets A and B from tensors named as PEFT names them (`<peftKey>.lora_A.weight`, ...). */
  loadTensors(get: (name: string) => { shape: readonly number[]; data: Float32Array } | undefined): void {
    for (const m of this.modules.values()) {
      const wantA = [m.r, m.linear.inFeatures];
      const wantB = [m.linear.outFeatures, m.r];
      for (const [suffix, want, buf] of [
        ['lora_A.weight', wantA, m.a],
        ['lora_B.weight', wantB, m.b],
      ] as const) {
        const key = `${m.peftKey}.${suffix}`;
        const t = get(key);
        if (!t) throw new LoraConfigError(`the adapter lacks ${key}`);
        if (t.shape.length !== 2 || t.shape[0] !== want[0] || t.shape[1] !== want[1]) {
          throw new LoraConfigError(`${key} is [${t.shape.join(', ')}] but this model needs [${want.join(', ')}]`);
        }
        this.write(buf, t.data);
      }
    }
  }

  /** Reads A and B back, keyed by PEFT names. */
  async readTensors(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const mods = [...this.modules.values()];
    const data = await this.readMany(mods.flatMap((m) => [m.a, m.b]));
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [i, m] of mods.entries()) {
      out.set(`${m.peftKey}.lora_A.weight`, { shape: [m.r, m.linear.inFeatures], data: data[2 * i]! });
      out.set(`${m.peftKey}.lora_B.weight`, { shape: [m.linear.outFeatures, m.r], data: data[2 * i + 1]! });
    }
    return out;
  }

  /** Reads the current gradients back, keyed by PEFT names (tests and diagnostics). */
  async readGradients(): Promise<Map<string, Float32Array>> {
    const mods = [...this.modules.values()];
    const data = await this.readMany(mods.flatMap((m) => [m.gradA, m.gradB]));
    const out = new Map<string, Float32Array>();
    for (const [i, m] of mods.entries()) {
      out.set(`${m.peftKey}.lora_A.weight`, data[2 * i]!);
      out.set(`${m.peftKey}.lora_B.weight`, data[2 * i + 1]!);
    }
    return out;
  }

  destroy(): void {
    for (const seg of this.segments) for (const b of [seg.params, seg.grads, seg.expAvg, seg.expAvgSq]) this.gpu.release(b);
    this.segments.length = 0;
    this.modules.clear();
  }
}
