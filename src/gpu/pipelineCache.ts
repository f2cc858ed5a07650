/**
 * Compute pipelines with explicit bind-group layouts, cached by kernel name + constants.
 * Explicit layouts (not 'auto') let several entry points of one WGSL file share declarations
 * without the "binding not used by this entry point" trap of auto layouts.
 */
export type BindingKind = 'uniform' | 'read' | 'write';

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

  get(spec: KernelSpec): CachedPipeline {
    const known = this.bySpec.get(spec);
    if (known) return known;
    const hit = this.lookup(spec);
    this.bySpec.set(spec, hit);
    return hit;
  }

  private lookup(spec: KernelSpec): CachedPipeline {
    const constKey = spec.constants
      ? Object.keys(spec.constants)
          .sort()
          .map((k) => `${k}=${spec.constants![k]}`)
          .join(',')
      : '';
    const key = `${spec.name}|${spec.entryPoint}|${constKey}`;
    let hit = this.pipelines.get(key);
    if (hit) return hit;
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
        buffer: { type: kind === 'uniform' ? 'uniform' : kind === 'read' ? 'read-only-storage' : 'storage' },
      })),
    });
    const pipeline = this.device.createComputePipeline({
      label: spec.name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: spec.entryPoint, constants: spec.constants },
    });
    hit = { id: this.pipelines.size + 1, pipeline, layout, spec };
    this.pipelines.set(key, hit);
    return hit;
  }
}
