/**
 * Playground generation with onnxruntime-web instead of our own engine: the model (with a LoRA
 * adapter merged in, f32) is exported to our ONNX causal-LM graph with past key/values and run by
 * ONNX Runtime's WASM backend, a second implementation to compare ours against. Sampling uses the
 * engine's plain-TypeScript sampling reference and the same seeded draws as model/generate.ts, so
 * greedy output is the engine's, and sampled output differs only where the two runtimes' logits
 * put a draw on the other side of a boundary.
 *
 * ORT itself is handed in (`LoadOrt`): the worker loads the browser build with its .wasm served
 * from our own origin (src/generation/ortWeb.ts), Node tests the Node build. No Node imports here.
 */
import type * as OrtTypes from 'onnxruntime-web';
import { bytesModelDir, loadHfModelDir, type HfModelFiles } from '../formats/hfModelDir';
import { exportMergedModel, readPeftAdapterTensors } from '../formats/mergedModel';
import { exportOnnxModel, ONNX_EXTERNAL_DATA_THRESHOLD, type OnnxWeightSource } from '../formats/onnx';
import type { PeftAdapterFiles } from '../formats/peft';
import { sampleRowRef } from '../kernels/reference/sampling';
import type { ModelConfig } from '../model/config';
import type { GenerateOptions, GenerateResult } from '../model/generate';
import { Rng } from '../util/random';
import { encodePrompt, generateOutput, generationStopIds, samplingOptions, TextStreamer, type GenerateOutput, type GenerateParams, type PromptModel, type TokenDelta } from './generationText';

export type OrtModule = typeof OrtTypes;
export type LoadOrt = () => Promise<OrtModule>;

export class OnnxGenerationError extends Error {
  override name = 'OnnxGenerationError';
}

const EXTERNAL_DATA_FILE = 'model.onnx_data';

/**
 * The weights to export: the base model's, or the base with the adapter merged into a copy
 * (f32, in memory; fine for the small models the WASM backend can hold anyway).
 */
export async function mergedWeights(files: HfModelFiles, config: ModelConfig, adapter: PeftAdapterFiles | null): Promise<OnnxWeightSource> {
  if (adapter === null) return files.weights;
  const { lora, tensors } = await readPeftAdapterTensors(adapter, config);
  const merged = await exportMergedModel(files, tensors, lora, config, { dtype: 'F32' });
  return (await loadHfModelDir(bytesModelDir(merged))).weights;
}

/** A causal LM exported to ONNX and loaded into an ORT session (one generation at a time). */
export class OrtCausalLM {
  private queue: Promise<unknown> = Promise.resolve();
  private released = false;

  private constructor(
    private readonly ort: OrtModule,
    private readonly session: OrtTypes.InferenceSession,
    readonly config: ModelConfig,
  ) {}

  /** Exports `weights` (f32) to ONNX and opens a WASM session on it. */
  static async create(ort: OrtModule, config: ModelConfig, weights: OnnxWeightSource): Promise<OrtCausalLM> {
    let bytes = 0;
    for (const t of weights.tensors.values()) bytes += t.shape.reduce((a, b) => a * b, 1) * 4;
    // Past protobuf's 2 GiB the initializers go into an external data buffer.
    const external = bytes > ONNX_EXTERNAL_DATA_THRESHOLD;
    const { model, externalData } = await exportOnnxModel(config, weights, external ? { externalDataFile: EXTERNAL_DATA_FILE } : {});
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
      ...(externalData ? { externalData: [{ path: EXTERNAL_DATA_FILE, data: externalData }] } : {}),
    });
    return new OrtCausalLM(ort, session, config);
  }

  private i64(values: readonly number[]): OrtTypes.Tensor {
    return new this.ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), [1, values.length]);
  }

  /**
   * Generates for one prompt with the semantics of model/generate.ts's generate(): the same
   * options, finish reasons, timing fields, and one Rng draw per step from `seed`.
   */
  generate(prompt: readonly number[], options: GenerateOptions): Promise<GenerateResult> {
    // ORT sessions run one call at a time; two panes on one session take turns.
    const run = this.queue.then(() => this.generateNow(prompt, options));
    this.queue = run.catch(() => {});
    return run;
  }

  private async generateNow(prompt: readonly number[], options: GenerateOptions): Promise<GenerateResult> {
    if (this.released) throw new OnnxGenerationError('this ONNX session was released');
    const { config } = this;
    const T0 = prompt.length;
    if (T0 === 0) throw new OnnxGenerationError('empty prompt');
    const V = config.vocabSize;
    const maxNew = Math.max(0, Math.min(options.maxNewTokens, config.maxPositions - T0));
    const eos = new Set(options.eosTokenIds ?? config.eosTokenIds);
    const rng = new Rng(options.seed ?? 0);
    const penalty = options.repetitionPenalty ?? 1;
    const settings = { temperature: options.temperature ?? 0, topK: options.topK ?? 0, topP: options.topP ?? 1 };
    const history = [...prompt];
    const tokens: number[] = [];
    let finish: GenerateResult['finish'][number] = 'length';

    let past: Record<string, OrtTypes.Tensor> = {};
    for (let l = 0; l < config.layers; l++) {
      for (const kind of ['key', 'value']) past[`past_key_values.${l}.${kind}`] = new this.ort.Tensor('float32', new Float32Array(0), [1, config.kvHeads, 0, config.headDim]);
    }
    let pastLen = 0;
    let input: readonly number[] = prompt;
    const t0 = performance.now();
    let tDecode = t0;
    let prefillMs = 0;
    for (let step = 0; step < maxNew; step++) {
      if (options.signal?.aborted) break;
      const S = input.length;
      const result = await this.session.run({
        input_ids: this.i64(input),
        attention_mask: this.i64(new Array<number>(pastLen + S).fill(1)),
        position_ids: this.i64(Array.from({ length: S }, (_, j) => pastLen + j)),
        ...past,
      });
      const logits = result.logits!.data as Float32Array;
      const row = logits.slice((S - 1) * V, S * V);
      if (penalty !== 1) {
        // HF's repetition penalty: each seen id once, from its unpenalised logit.
        for (const id of new Set(history)) {
          if (id >= V) continue;
          const x = row[id]!;
          row[id] = x < 0 ? x * penalty : x / penalty;
        }
      }
      const id = sampleRowRef(row, settings, rng.next()).id;
      for (const t of Object.values(past)) t.dispose();
      result.logits!.dispose();
      past = {};
      for (let l = 0; l < config.layers; l++) for (const kind of ['key', 'value']) past[`past_key_values.${l}.${kind}`] = result[`present.${l}.${kind}`]!;
      pastLen += S;
      if (step === 0) {
        prefillMs = performance.now() - t0;
        tDecode = performance.now();
      }
      history.push(id);
      if (eos.has(id)) {
        finish = 'eos';
        break;
      }
      tokens.push(id);
      if (options.onToken?.([id], step) === true) {
        finish = 'stopped';
        break;
      }
      input = [id];
    }
    for (const t of Object.values(past)) t.dispose();
    if (options.signal?.aborted && finish === 'length') finish = 'stopped';
    const decodeMs = performance.now() - tDecode;
    return { tokens: [tokens], finish: [finish], prefillMs, decodeMs, tokensPerSecond: decodeMs > 0 ? (tokens.length / decodeMs) * 1000 : 0 };
  }

  /** Frees the session once the generations queued on it are done. */
  release(): Promise<void> {
    const done = this.queue.then(async () => {
      if (this.released) return;
      this.released = true;
      await this.session.release();
    });
    this.queue = done.catch(() => {});
    return done;
  }
}

/**
 * ORT sessions by (model, adapter) key, newest kept: a session holds a whole f32 copy of the
 * model in WASM memory, so only `max` stay open.
 */
export class OrtSessionCache {
  private readonly sessions = new Map<string, Promise<OrtCausalLM>>();

  constructor(private readonly max = 2) {}

  get(key: string, create: () => Promise<OrtCausalLM>): Promise<OrtCausalLM> {
    let hit = this.sessions.get(key);
    if (hit) {
      // Most recently used last.
      this.sessions.delete(key);
      this.sessions.set(key, hit);
      return hit;
    }
    hit = create();
    this.sessions.set(key, hit);
    hit.catch(() => {
      if (this.sessions.get(key) === hit) this.sessions.delete(key);
    });
    while (this.sessions.size > this.max) {
      const [oldKey, old] = this.sessions.entries().next().value as [string, Promise<OrtCausalLM>];
      this.sessions.delete(oldKey);
      void old.then((m) => m.release()).catch(() => {});
    }
    return hit;
  }

  keys(): string[] {
    return [...this.sessions.keys()];
  }

  async clear(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((p) => p.then((m) => m.release()).catch(() => {})));
  }
}

/** A short content key of an imported adapter, so re-running the same files reuses the session. */
export async function peftAdapterKey(config: unknown, weights: Blob): Promise<string> {
  const configBytes = new TextEncoder().encode(JSON.stringify(config));
  const data = new Uint8Array(configBytes.byteLength + weights.size);
  data.set(configBytes, 0);
  data.set(new Uint8Array(await weights.arrayBuffer()), configBytes.byteLength);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
  return [...digest.slice(0, 12)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** What generateTextWithOrt needs from the playground. */
export interface OrtGenerationDeps {
  /** Tokenizer, template and config of params.model. */
  textModel(): Promise<PromptModel>;
  /** Whether raw-text prompts start with BOS for this tokenizer (as in training). */
  addBos(tm: PromptModel): boolean;
  /** Opens the model's files for the duration of `read` (the export reads the weights). */
  withModelFiles<T>(read: (files: HfModelFiles) => Promise<T>): Promise<T>;
  /** A stable key of the adapter, and its PEFT files, read only when no session is cached. */
  adapter(): Promise<{ key: string; files: () => Promise<PeftAdapterFiles | null> }>;
  /** A stable key of params.model. */
  modelKey: string;
  sessions: OrtSessionCache;
  loadOrt: LoadOrt;
}

/** One playground pane's generation with ONNX Runtime Web: the ORT twin of Playground.generate. */
export async function generateTextWithOrt(deps: OrtGenerationDeps, params: GenerateParams, onToken?: (delta: TokenDelta) => void, signal?: AbortSignal): Promise<GenerateOutput> {
  const tm = await deps.textModel();
  const ids = encodePrompt(tm, params, deps.addBos(tm));
  const adapter = await deps.adapter();
  const model = await deps.sessions.get(`${deps.modelKey}|${adapter.key}`, async () => {
    const [ort, files] = await Promise.all([deps.loadOrt(), adapter.files()]);
    return deps.withModelFiles(async (modelFiles) => OrtCausalLM.create(ort, tm.config, await mergedWeights(modelFiles, tm.config, files)));
  });
  const streamer = new TextStreamer(tm.tokenizer, params.stop, onToken);
  const result = await model.generate(ids, {
    ...samplingOptions(params),
    eosTokenIds: generationStopIds(tm.config.eosTokenIds, tm.files.generationConfig, tm.tokenizer),
    signal,
    onToken: (step) => (step[0] === undefined ? undefined : streamer.push(step[0])),
  });
  return generateOutput(streamer, ids.length, result);
}
