/**
 * Compute pipelines with explicit bind-group layouts, cached by kernel name + constants.
 * Explicit layouts (not 'auto') let several entry points of one WGSL file share declarations
 * without the "binding not used by this entry point" trap of auto layouts.
 */
/**
 * 'uniform': the dispatch's parameter bytes (DispatchArgs.params, in the binding cache's slots);
 * 'read' / 'write': storage buffers; 'values': a caller's buffer bound as a uniform, for values
 * written with queue.writeBuffer between submits (a training step's seed) that recorded
 * dispatches read without being recorded again.
 */
export type BindingKind = 'uniform' | 'read' | 'write' | 'values';

export interface KernelSpec {
  /** Unique name of this kernel variant, used as the cache key together with `constants`. */
  name: string;
  /** WGSL source of the family (one file in shaders/). */
  code: string;
  entryPoint: string;
  /** Bindings of group 0, in order of binding index. */
  bindings: readonly BindingKind[];
  /** WGSL `override` constants (workgroup sizes, tile shapes). */
  constants?: Record<string, number>;
}

export interface CachedPipeline {
  /** Unique per cached pipeline (bind-group cache keys use it). */
  id: number;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  spec: KernelSpec;
}

export class PipelineCache {
  private readonly pipelines = new Map<string, CachedPipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  /** Spec objects seen before: most kernels pass the same constant spec every dispatch. */
  private readonly bySpec = new WeakMap<KernelSpec, CachedPipeline>();

  constructor(private readonly device: GPUDevice) {}

  get size(): number {
    return this.pipelines.size;
  }

  /** The kernel names (KernelSpec.name) compiled so far: tests check which variant a device ran. */
  names(): string[] {
    return [...new Set([...this.pipelines.values()].map((p) => p.spec.name))].sort();
  }

  get(spec: KernelSpec): CachedPipeline {
    const known = this.bySpec.get(spec);
    if (known) return known;
    const hit = this.lookup(spec);
    this.bySpec.set(spec, hit);
    return hit;
  }

  /**
   * Compiles a kernel with createComputePipelineAsync and caches it, so the dispatch that later
   * asks get() for it does not wait for the compiler. Rejects (GPUPipelineError) when the shader
   * or its constants do not compile; nothing is cached then.
   */
  async compile(spec: KernelSpec): Promise<CachedPipeline> {
    const key = this.keyOf(spec);
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    const { module, layout, pipelineLayout } = this.parts(spec);
    const pipeline = await this.device.createComputePipelineAsync({
      label: spec.name,
      layout: pipelineLayout,
      compute: { module, entryPoint: spec.entryPoint, constants: spec.constants },
    });
    return this.store(key, { pipeline, layout, spec });
  }

  private keyOf(spec: KernelSpec): string {
    const constKey = spec.constants
      ? Object.keys(spec.constants)
          .sort()
          .map((k) => `${k}=${spec.constants![k]}`)
          .join(',')
      : '';
    return `${spec.name}|${spec.entryPoint}|${constKey}`;
  }

  private parts(spec: KernelSpec): { module: GPUShaderModule; layout: GPUBindGroupLayout; pipelineLayout: GPUPipelineLayout } {
    let module = this.modules.get(spec.code);
    if (!module) {
      module = this.device.createShaderModule({ code: spec.code, label: spec.name });
      this.modules.set(spec.code, module);
    }
    const layout = this.device.createBindGroupLayout({
      label: spec.name,
      entries: spec.bindings.map((kind, binding) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: kind === 'uniform' || kind === 'values' ? 'uniform' : kind === 'read' ? 'read-only-storage' : 'storage' },
      })),
    });
    return { module, layout, pipelineLayout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }) };
  }

  private store(key: string, p: Omit<CachedPipeline, 'id'>): CachedPipeline {
    const known = this.pipelines.get(key);
    if (known) return known; // compiled twice concurrently: the first one stays
    const hit = { id: this.pipelines.size + 1, ...p };
    this.pipelines.set(key, hit);
    return hit;
  }

  private lookup(spec: KernelSpec): CachedPipeline {
    const key = this.keyOf(spec);
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    const { module, layout, pipelineLayout } = this.parts(spec);
    const pipeline = this.device.createComputePipeline({
      label: spec.name,
      layout: pipelineLayout,
      compute: { module, entryPoint: spec.entryPoint, constants: spec.constants },
    });
    return this.store(key, { pipeline, layout, spec });
  }
}
