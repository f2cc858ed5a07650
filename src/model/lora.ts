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

/** One adapted linear layer: A [r, in], B [out, r], their gradients and AdamW moments. */
export interface LoraModule {
  linear: LinearWeight;
  /** PEFT's key prefix: `base_model.model.<module path>`. */
  peftKey: string;
  a: GPUBuffer;
  b: GPUBuffer;
  gradA: GPUBuffer;
  gradB: GPUBuffer;
  expAvgA: GPUBuffer;
  expAvgSqA: GPUBuffer;
  expAvgB: GPUBuffer;
  expAvgSqB: GPUBuffer;
  r: number;
}

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
  readonly scale: number;
  private readonly buffers: GPUBuffer[] = [];

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
    for (const layer of weights.layers) {
      for (const lin of [...layer.attnIn, layer.attnOut, ...layer.mlpIn, layer.mlpOut]) {
        available.add(lin.kind);
        if (!targetModules.includes(lin.kind)) continue;
        this.modules.set(lin, this.allocate(lin));
      }
    }
    const unknown = targetModules.filter((t) => !available.has(t));
    if (unknown.length) {
      throw new LoraConfigError(
        `target_modules ${unknown.join(', ')} do not exist in this ${modelConfig.modelType} model (it has ${[...available].join(', ')})`,
      );
    }
    if (this.modules.size === 0) throw new LoraConfigError('target_modules selects no layer');
    this.scale = loraScale(config.alpha, r, config.useRslora);
  }

  private allocate(lin: LinearWeight): LoraModule {
    const { r } = this.config;
    const make = (n: number, what: string) => {
      const b = this.gpu.createBuffer(n * 4, `${lin.name}.${what}`);
      // Pooled buffers hold whatever their last user left: start every tensor (moments above
      // all) at zero, so an adapter loaded with loadTensors starts AdamW from a clean state.
      this.gpu.write(b, new Float32Array(n));
      this.buffers.push(b);
      return b;
    };
    const aN = r * lin.inFeatures;
    const bN = lin.outFeatures * r;
    return {
      linear: lin,
      peftKey: peftModulePath(this.modelConfig, lin.name),
      a: make(aN, 'lora_A'),
      b: make(bN, 'lora_B'),
      gradA: make(aN, 'grad_A'),
      gradB: make(bN, 'grad_B'),
      expAvgA: make(aN, 'exp_avg_A'),
      expAvgSqA: make(aN, 'exp_avg_sq_A'),
      expAvgB: make(bN, 'exp_avg_B'),
      expAvgSqB: make(bN, 'exp_avg_sq_B'),
      r,
    };
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
      this.gpu.write(m.a, rng.f32(m.r * m.linear.inFeatures, -bound, bound));
      this.gpu.write(m.b, new Float32Array(m.linear.outFeatures * m.r));
    }
    this.resetOptimizer();
  }

  resetOptimizer(): void {
    for (const m of this.modules.values()) {
      for (const [buf, n] of [
        [m.expAvgA, m.r * m.linear.inFeatures],
        [m.expAvgSqA, m.r * m.linear.inFeatures],
        [m.expAvgB, m.linear.outFeatures * m.r],
        [m.expAvgSqB, m.linear.outFeatures * m.r],
      ] as const) {
        this.gpu.write(buf, new Float32Array(n));
      }
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
        this.gpu.write(buf, t.data);
      }
    }
  }

  /** Reads A and B back, keyed by PEFT names. */
  async readTensors(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const m of this.modules.values()) {
      out.set(`${m.peftKey}.lora_A.weight`, { shape: [m.r, m.linear.inFeatures], data: await this.gpu.readF32(m.a, m.r * m.linear.inFeatures) });
      out.set(`${m.peftKey}.lora_B.weight`, { shape: [m.linear.outFeatures, m.r], data: await this.gpu.readF32(m.b, m.linear.outFeatures * m.r) });
    }
    return out;
  }

  /** Reads the current gradients back, keyed by PEFT names (tests and diagnostics). */
  async readGradients(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const m of this.modules.values()) {
      out.set(`${m.peftKey}.lora_A.weight`, await this.gpu.readF32(m.gradA, m.r * m.linear.inFeatures));
      out.set(`${m.peftKey}.lora_B.weight`, await this.gpu.readF32(m.gradB, m.linear.outFeatures * m.r));
    }
    return out;
  }

  destroy(): void {
    for (const b of this.buffers) this.gpu.release(b);
    this.buffers.length = 0;
    this.modules.clear();
  }
}
