/**
 * The GPU device and the models loaded on it. Training and the playground use separate model
 * instances (a CausalLM's scratch buffers are not meant for two users at once): a job leases one
 * alone, playground generations share one. Loading a model, or starting a job, first frees the
 * idle ones, so GPU memory holds what is in use plus, at most, the last model used. A lost device
 * is replaced by a new one on the next use; models on the lost one are dropped.
 */
import { ChatTemplate } from '../data/chatTemplate';
import { TextTokenizer } from '../data/tokenizer';
import { loadHfModelDir, type HfModelFiles, type ModelDir } from '../formats/hfModelDir';
import { GpuDeviceLostError, type Gpu } from '../gpu';
import { countParameters, parseModelConfig, type ModelConfig } from '../model/config';
import { loadCausalLM } from '../model/load';
import type { CausalLM } from '../model/transformer';
import type { WeightDtype } from '../model/weights';
import { summarizeModel, type ModelSource, type ModelSummary } from './job';
import { memoryLimits, navigatorDeviceMemory, type MemoryLimits } from './jobMemory';
import { JobRunnerError } from './jobRecords';
import { sourceKey, type DownloadProgress, type OpenModelDir } from './models';

/** config.json, tokenizer and chat template of a model: everything but the weights. */
export interface TextModel {
  files: HfModelFiles;
  config: ModelConfig;
  summary: ModelSummary;
  tokenizer: TextTokenizer;
  template: ChatTemplate | null;
}

export interface ModelInfo {
  source: ModelSource;
  summary: ModelSummary;
  hasChatTemplate: boolean;
}

async function readTextModel(dir: ModelDir): Promise<TextModel> {
  const files = await loadHfModelDir(dir);
  const config = parseModelConfig(files.config);
  if (files.tokenizerJson === null) throw new JobRunnerError('the model folder has no tokenizer.json');
  const tokenizer = TextTokenizer.fromJson(files.tokenizerJson, files.tokenizerConfig, files.chatTemplate === null ? {} : { chatTemplate: files.chatTemplate });
  const template = tokenizer.chatTemplate === null ? null : ChatTemplate.fromTokenizer(tokenizer);
  return { files, config, summary: summarizeModel(config, files.config, countParameters(config)), tokenizer, template };
}

async function closeDir(dir: ModelDir): Promise<void> {
  await (dir as ModelDir & { close?: () => Promise<void> }).close?.();
}

/** Token id for padded positions: the tokenizer's pad, else EOS, else 0 (masked anyway). */
export function padTokenId(tm: TextModel): number {
  const id = tm.tokenizer.pad?.id ?? tm.config.padTokenId ?? tm.tokenizer.eos?.id ?? tm.config.eosTokenIds[0] ?? 0;
  return id < tm.config.vocabSize ? id : 0;
}

/** The weight dtype a job or pane gets on `gpu`: f16 when the GPU has shader-f16 and none was asked for. */
export function weightDtypeFor(gpu: Gpu, wanted: WeightDtype | 'auto' | undefined): WeightDtype {
  if (wanted === 'f16' && !gpu.hasF16) throw new JobRunnerError('f16 weights need the shader-f16 feature, which this GPU lacks; use f32 or auto');
  return wanted === undefined || wanted === 'auto' ? (gpu.hasF16 ? 'f16' : 'f32') : wanted;
}

/** A loaded model instance; training leases one alone, playground generations share one. */
export interface PooledModel {
  key: string;
  gpu: Gpu;
  model: CausalLM;
  text: TextModel;
  training: boolean;
  users: number;
  doomed: boolean;
}

export interface ModelPoolOptions {
  /** Opens a GPU device; called again after a device is lost. */
  acquireGpu: () => Promise<Gpu>;
  openModel: OpenModelDir;
  /** Called when the device is lost, with the driver's message. */
  onDeviceLost: (message: string) => void;
}

export class ModelPool {
  private models: PooledModel[] = [];
  private lock: Promise<unknown> = Promise.resolve();
  private readonly textModels = new Map<string, Promise<TextModel>>();
  private gpuPromise: Promise<Gpu> | null = null;

  constructor(private readonly options: ModelPoolOptions) {}

  // ------------------------------------------------------------------------------- device

  /** The current device, opening one when there is none or the last one was lost. */
  async gpu(): Promise<Gpu> {
    if (this.gpuPromise) {
      const g = await this.gpuPromise.catch(() => null);
      if (g && !g.lostError) return g;
      this.gpuPromise = null;
    }
    const opening = this.options.acquireGpu().then((g) => {
      g.onLost((e) => this.deviceLost(g, e));
      return g;
    });
    this.gpuPromise = opening;
    opening.catch(() => {
      if (this.gpuPromise === opening) this.gpuPromise = null;
    });
    return opening;
  }

  private deviceLost(g: Gpu, e: GpuDeviceLostError): void {
    this.dropGpu(g);
    void this.gpuPromise?.then((cur) => {
      if (cur === g) this.gpuPromise = null;
    });
    this.options.onDeviceLost(e.message);
  }

  /** Whether `gpu` was lost (waiting briefly: device.lost settles a little after the failing call). */
  async wasLost(gpu: Gpu | null, e: unknown): Promise<boolean> {
    if (e instanceof GpuDeviceLostError) return true;
    if (!gpu) return false;
    if (gpu.lostError) return true;
    const timeout = new Promise<false>((r) => setTimeout(() => r(false), 250));
    return Promise.race([gpu.device.lost.then(() => true), timeout]);
  }

  /**
   * The limits a job's memory is checked against and the weight dtype it would get: the open
   * device's (opened when needed), or WebGPU's defaults and f32 when none opens. `strict`: an
   * f16 request on a GPU without shader-f16 throws (the form explains it); else f16 is assumed.
   */
  async memoryContext(wanted: WeightDtype | 'auto' | undefined, strict: boolean): Promise<{ limits: MemoryLimits; dtype: WeightDtype }> {
    const gpu = await this.gpu().catch(() => null);
    const limits = memoryLimits(gpu ? gpu.limits : null, navigatorDeviceMemory());
    if (!gpu || (!strict && wanted === 'f16')) return { limits, dtype: wanted === 'f16' ? 'f16' : 'f32' };
    return { limits, dtype: weightDtypeFor(gpu, wanted) };
  }

  // ------------------------------------------------------------------------------- model files

  /** Tokenizer, template and config of a model, read once per source (downloading when needed). */
  textModel(source: ModelSource, onProgress?: (p: DownloadProgress) => void): Promise<TextModel> {
    const key = sourceKey(source);
    let hit = this.textModels.get(key);
    if (!hit) {
      hit = this.withModelDir(source, readTextModel, onProgress);
      this.textModels.set(key, hit);
      hit.catch(() => this.textModels.delete(key));
    }
    return hit;
  }

  /** config.json summary of a model (downloading a Hub model's files when needed). */
  async inspect(source: ModelSource, onProgress?: (p: DownloadProgress) => void): Promise<ModelInfo> {
    const tm = await this.textModel(source, onProgress);
    return { source, summary: tm.summary, hasChatTemplate: tm.template !== null };
  }

  /** Forgets the text models read from a removed model's files (a later use reads them again). */
  forgetModel(modelKey: string): void {
    for (const k of [...this.textModels.keys()]) if (k.endsWith(`:${modelKey}`)) this.textModels.delete(k);
  }

  /** The model's folder, open for the duration of `read`. */
  async withModelDir<T>(source: ModelSource, read: (dir: ModelDir) => Promise<T>, onProgress?: (p: DownloadProgress) => void): Promise<T> {
    const dir = await this.options.openModel(source, onProgress);
    try {
      return await read(dir);
    } finally {
      await closeDir(dir);
    }
  }

  // ------------------------------------------------------------------------------- instances

  /** A model instance on `gpu`; `training` leases it alone. Give it back with release(). */
  lease(gpu: Gpu, source: ModelSource, dtype: WeightDtype, training: boolean): Promise<PooledModel> {
    const key = `${sourceKey(source)}|${dtype}`;
    // Leases are taken one at a time so that two panes asking for one model load it once.
    const next = this.lock.then(async () => {
      const usable = this.models.find((m) => m.gpu === gpu && m.key === key && !m.doomed && !m.training && (training ? m.users === 0 : true));
      // A job needs all the memory it can get, and loading needs room: idle models go first.
      if (training || !usable) for (const m of this.models.filter((x) => x.users === 0 && x !== usable)) this.destroy(m);
      if (usable) {
        usable.users++;
        usable.training = training;
        return usable;
      }
      const text = await this.textModel(source);
      const model = await this.withModelDir(source, async (dir) => (await loadCausalLM(gpu, dir, { dtype })).model);
      const pooled: PooledModel = { key, gpu, model, text, training, users: 1, doomed: false };
      this.models.push(pooled);
      return pooled;
    });
    this.lock = next.catch(() => {});
    return next;
  }

  release(m: PooledModel): void {
    m.users--;
    if (m.users > 0) return;
    m.training = false;
    const twin = this.models.some((x) => x !== m && x.key === m.key && x.gpu === m.gpu && !x.doomed);
    if (m.doomed || twin) this.destroy(m);
  }

  /** The device is gone: nothing on it can be used again. */
  dropGpu(gpu: Gpu): void {
    for (const m of this.models.filter((x) => x.gpu === gpu)) {
      if (m.users === 0) this.destroy(m);
      else m.doomed = true;
    }
  }

  private destroy(m: PooledModel): void {
    this.models = this.models.filter((x) => x !== m);
    m.model.destroy();
  }
}
