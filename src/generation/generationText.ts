// What both playground engines (ours and onnxruntime-web) share around the model: a pane's
// request and answer, the prompt as token ids, the ids that end a generation, and generated ids
// as streamed text.
import type { ChatTemplate } from '../data/chatTemplate';
import type { ChatMessage } from '../data/datasetTypes';
import type { TextTokenizer } from '../data/tokenizer';
import type { HfModelFiles } from '../formats/hfModelDir';
import type { AdapterRef } from '../jobs/adapters';
import type { ModelSource } from '../jobs/job';
import type { ModelConfig } from '../model/config';
import type { GenerateOptions, GenerateResult } from '../model/generate';
import type { WeightDtype } from '../model/weights';

/** A pane's sampling settings, as the generate loop takes them (both engines take the same). */
export type SamplingSettings = Pick<GenerateOptions, 'maxNewTokens' | 'temperature' | 'topK' | 'topP' | 'repetitionPenalty' | 'seed'>;

export interface GenerateParams extends SamplingSettings {
  model: ModelSource;
  dtype?: WeightDtype | 'auto';
  adapter: AdapterRef;
  /** A conversation, rendered with the model's chat template and a generation prompt... */
  messages?: ChatMessage[];
  /** ...or raw text (BOS added as for training text). */
  prompt?: string;
  /** Generation stops when the text contains one of these (which is cut off). */
  stop?: string[];
  /**
   * 'whittle' (default): our WebGPU engine, adapter unmerged. 'onnxruntime': the adapter merged
   * and exported to ONNX, run by onnxruntime-web's WASM backend (src/generation/onnxGeneration.ts).
   */
  engine?: 'whittle' | 'onnxruntime';
}

export interface TokenDelta {
  /** 0-based index of the generated token. */
  index: number;
  tokenId: number;
  /** Text added by this token (may be empty while a multi-byte character is incomplete). */
  text: string;
}

export interface GenerateOutput {
  text: string;
  tokens: number[];
  promptTokens: number;
  /** 'context': the prompt and reply filled the model's context before the max new tokens. */
  finish: 'eos' | 'length' | 'context' | 'stop' | 'aborted';
  prefillMs: number;
  decodeMs: number;
  tokensPerSecond: number;
  /** Our engine: the kernel plan it generated with, as describeKernelPlan writes it. */
  kernelPlan?: string;
}

export class PromptError extends Error {
  override name = 'PromptError';
}

/** What the playground knows about a model: its tokenizer, chat template, config and files. */
export interface PromptModel {
  config: ModelConfig;
  tokenizer: TextTokenizer;
  template: ChatTemplate | null;
  files: Pick<HfModelFiles, 'generationConfig'>;
}

/** The ids that end a generation: the config's, generation_config.json's and the tokenizer's EOS. */
export function generationStopIds(configEos: readonly number[], generationConfig: unknown, tokenizer: TextTokenizer): number[] {
  const eos = new Set(configEos);
  const genEos = (generationConfig as { eos_token_id?: unknown } | null)?.eos_token_id;
  for (const id of Array.isArray(genEos) ? genEos : [genEos]) if (typeof id === 'number') eos.add(id);
  if (tokenizer.eos) eos.add(tokenizer.eos.id);
  return [...eos];
}

/** The chat (rendered with the template, generation prompt added) or raw text as prompt ids. */
export function encodePrompt(tm: PromptModel, input: { messages?: ChatMessage[]; prompt?: string }, addBos: boolean): number[] {
  if ((input.messages === undefined) === (input.prompt === undefined)) throw new PromptError('give either messages or prompt');
  const { tokenizer, template } = tm;
  let ids: number[];
  if (input.messages) {
    if (!template) throw new PromptError('this model has no chat template: send a prompt instead of messages');
    ids = tokenizer.encode(template.render(input.messages, { addGenerationPrompt: true }));
  } else {
    ids = tokenizer.encode(input.prompt!);
    if (addBos && tokenizer.bos && ids[0] !== tokenizer.bos.id) ids.unshift(tokenizer.bos.id);
  }
  if (ids.length === 0) throw new PromptError('the prompt is empty');
  if (ids.length >= tm.config.maxPositions) throw new PromptError(`the prompt has ${ids.length} tokens; the model holds ${tm.config.maxPositions}`);
  return ids;
}

/**
 * Turns generated ids into streamed text, the same for both engines: the whole
 * sequence is decoded each step (so merges across tokens come out right), an incomplete
 * multi-byte character is held back, and a stop string ends the text before it.
 */
export class TextStreamer {
  readonly ids: number[] = [];
  text = '';
  stopHit = false;
  private readonly stops: string[];

  constructor(
    private readonly tokenizer: TextTokenizer,
    stops: readonly string[] = [],
    private readonly onDelta?: (delta: TokenDelta) => void,
  ) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  private decode(): string {
    // A model's vocabulary is often padded past the tokenizer's; such ids have no text.
    return this.tokenizer.decode(
      this.ids.filter((t) => t < this.tokenizer.vocabSize),
      { skipSpecialTokens: true },
    );
  }

  /** Adds a token; true when a stop string was reached. */
  push(id: number): boolean {
    this.ids.push(id);
    let full = this.decode();
    if (full.endsWith('\uFFFD')) full = full.slice(0, full.length - 1);
    if (full.length < this.text.length) full = this.text;
    const cut = this.stops.map((s) => full.indexOf(s)).filter((i) => i >= 0);
    if (cut.length) {
      full = full.slice(0, Math.min(...cut));
      this.stopHit = true;
    }
    const delta = full.startsWith(this.text) ? full.slice(this.text.length) : full;
    this.text = full.startsWith(this.text) ? full : this.text + delta;
    this.onDelta?.({ index: this.ids.length - 1, tokenId: id, text: delta });
    return this.stopHit;
  }

  /** The held-back bytes, now that nothing more comes. */
  finish(): void {
    if (this.stopHit || this.ids.length === 0) return;
    const full = this.decode();
    if (full.startsWith(this.text) && full.length > this.text.length) {
      this.onDelta?.({ index: this.ids.length - 1, tokenId: this.ids.at(-1)!, text: full.slice(this.text.length) });
      this.text = full;
    }
  }
}

/** Just the sampling settings of a pane's request. */
export function samplingOptions(params: GenerateParams): SamplingSettings {
  const { maxNewTokens, temperature, topK, topP, repetitionPenalty, seed } = params;
  return { maxNewTokens, temperature, topK, topP, repetitionPenalty, seed };
}

/** The pane's answer: the streamed text, why it ended (a stop string wins), and the timings. */
export function generateOutput(streamer: TextStreamer, promptTokens: number, result: Pick<GenerateResult, 'finish' | 'prefillMs' | 'decodeMs' | 'tokensPerSecond'>): GenerateOutput {
  streamer.finish();
  const f = result.finish[0]!;
  return {
    text: streamer.text,
    tokens: streamer.ids,
    promptTokens,
    finish: streamer.stopHit ? 'stop' : f === 'stopped' ? 'aborted' : f,
    prefillMs: result.prefillMs,
    decodeMs: result.decodeMs,
    tokensPerSecond: result.tokensPerSecond,
  };
}
