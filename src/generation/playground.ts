/**
 * The playground's generations: the base model, a job's adapter, any checkpoint, or an imported
 * PEFT adapter, on our WebGPU engine (the adapter unmerged, on a model instance shared by the
 * panes) or on onnxruntime-web (the adapter merged into an ONNX export, one session per model and
 * adapter). Both engines stream each token's text and answer in the same shape.
 */
import { textUsesBos } from '../data/examples';
import { loadHfModelDir } from '../formats/hfModelDir';
import type { PeftAdapterFiles } from '../formats/peft';
import { blobSource } from '../formats/safetensors';
import type { Gpu } from '../gpu';
import { generate } from '../model/generate';
import type { LoraAdapter } from '../model/lora';
import type { AdapterRef, JobAdapters } from '../jobs/adapters';
import { JobRunnerError } from '../jobs/jobRecords';
import { weightDtypeFor, type ModelPool } from '../jobs/modelPool';
import { sourceKey } from '../jobs/models';
import { encodePrompt, generateOutput, generationStopIds, samplingOptions, TextStreamer, type GenerateOutput, type GenerateParams, type TokenDelta } from './generationText';
import { generateTextWithOrt, OrtSessionCache, peftAdapterKey, type LoadOrt } from './onnxGeneration';

export interface PlaygroundOptions {
  pool: ModelPool;
  adapters: JobAdapters;
  /** onnxruntime-web for `engine: 'onnxruntime'` generations (default: the browser WASM build, src/generation/ortWeb.ts). */
  loadOrt?: LoadOrt;
  /** Applies the plan our engine generates with to the device and describes it (default: the device's plan as it stands). */
  kernelPlan?: (gpu: Gpu) => Promise<string>;
}

export class Playground {
  /** ONNX Runtime sessions of the ORT panes, by model and adapter. */
  private readonly ortSessions = new OrtSessionCache();

  constructor(private readonly options: PlaygroundOptions) {}

  /** Generates from one pane's settings, streaming each token's text to `onToken`. */
  async generate(params: GenerateParams, onToken?: (delta: TokenDelta) => void, signal?: AbortSignal): Promise<GenerateOutput> {
    if ((params.messages === undefined) === (params.prompt === undefined)) throw new JobRunnerError('give either messages or prompt');
    if (params.engine === 'onnxruntime') return this.generateWithOrt(params, onToken, signal);
    const { pool, adapters } = this.options;
    const gpu = await pool.gpu();
    const kernelPlan = await this.options.kernelPlan?.(gpu);
    const lease = await pool.lease(gpu, params.model, weightDtypeFor(gpu, params.dtype), false);
    let adapter: LoraAdapter | null = null;
    try {
      const ids = encodePrompt({ ...lease.text, config: lease.model.config }, params, textUsesBos(lease.text.tokenizer));
      adapter = await adapters.load(lease, params.adapter);
      const streamer = new TextStreamer(lease.text.tokenizer, params.stop, onToken);
      const result = await generate(lease.model, [ids], adapter, {
        ...samplingOptions(params),
        eosTokenIds: generationStopIds(lease.model.config.eosTokenIds, lease.text.files.generationConfig, lease.text.tokenizer),
        signal,
        onToken: (step) => (step[0] === undefined ? undefined : streamer.push(step[0])),
      });
      return { ...generateOutput(streamer, ids.length, result), ...(kernelPlan ? { kernelPlan } : {}) };
    } finally {
      adapter?.destroy();
      pool.release(lease);
    }
  }

  /** generate() on onnxruntime-web: the adapter merged into an ONNX export, one session per (model, adapter). */
  private generateWithOrt(params: GenerateParams, onToken?: (delta: TokenDelta) => void, signal?: AbortSignal): Promise<GenerateOutput> {
    const { pool } = this.options;
    return generateTextWithOrt(
      {
        textModel: () => pool.textModel(params.model),
        addBos: (tm) => textUsesBos(tm.tokenizer),
        withModelFiles: (read) => pool.withModelDir(params.model, async (dir) => read(await loadHfModelDir(dir))),
        adapter: () => this.ortAdapter(params.adapter),
        modelKey: sourceKey(params.model),
        sessions: this.ortSessions,
        loadOrt: this.options.loadOrt ?? (() => import('./ortWeb').then((m) => m.loadOrtWeb())),
      },
      params,
      onToken,
      signal,
    );
  }

  /** An adapter as PEFT files for the ONNX merge, with a key that names its weights for good. */
  private async ortAdapter(ref: AdapterRef): Promise<{ key: string; files: () => Promise<PeftAdapterFiles | null> }> {
    const { adapters } = this.options;
    switch (ref.kind) {
      case 'base':
        return { key: 'base', files: () => Promise.resolve(null) };
      case 'peft':
        return { key: `peft:${await peftAdapterKey(ref.config, ref.weights)}`, files: () => Promise.resolve({ adapterConfig: ref.config, adapterModel: blobSource(ref.weights) }) };
      case 'checkpoint':
        return { key: `checkpoint:${ref.jobId}:${ref.name}`, files: () => adapters.exportPeft(ref.jobId, ref.name) };
      case 'job': {
        const resolved = await adapters.resolveJob(ref.jobId);
        if ('final' in resolved) return { key: `job:${resolved.final.id}`, files: () => adapters.exportPeft(resolved.final.id) };
        return this.ortAdapter({ kind: 'checkpoint', jobId: ref.jobId, name: resolved.checkpoint });
      }
    }
  }
}
