// A validated example -> token ids + a per-token "trained" flag, and the next-token shift that
// turns those into model inputs, targets and a loss mask.
//
// Convention. `trained[i] = 1` means token i is a trained TARGET: the model is taught to produce
// ids[i] from ids[0..i-1]. Token 0 is never a target (nothing precedes it), so trained[0] is always
// 0 and sum(trained) is exactly the number of tokens the loss counts. An example of L ids feeds the
// model L-1 positions: inputs ids[0..L-2], targets ids[1..L-1], mask trained[1..L-1]
// (see toTrainingSequence).
//
// Chat examples go through the model's chat template and train on the assistant messages whose
// weight is not 0, through the end-of-turn token the template writes after each (so the model
// learns to stop). Text examples are tokenised as they are, with BOS in front when the tokenizer
// uses one and EOS appended when it has one, and train on every token after the first.

import { ChatTemplateError, detectEndOfTurn, renderChatWithAssistantSpans, type ChatTemplate } from './chatTemplate';
import type { ChatExample, CountTokens, TokenCount } from './datasetTypes';
import type { TextTokenizer } from './tokenizer';

/** Which end of an over-long example is cut. 'end' keeps the first maxSeqLen tokens (as OpenAI does). */
export type Truncation = 'end' | 'start';

export interface TokenizeOptions {
  /** Longest example kept, in tokens (ids, not positions). Longer ones are truncated. Default: no limit. */
  maxSeqLen?: number;
  /** Default 'end'. 'start' keeps the last maxSeqLen tokens (drops the system prompt first). */
  truncation?: Truncation;
  /** Extra chat template variables, e.g. {enable_thinking: false} for Qwen3. */
  variables?: Record<string, unknown>;
  /** Date the template sees (Llama 3 system headers); chatTemplate's fixed default when left out. */
  now?: Date;
  /**
   * The template's end-of-turn marker, as detectEndOfTurn finds it. Pass it when tokenizing many
   * examples so it is detected once (createTokenCounter does this); detected per call otherwise.
   */
  endOfTurn?: string | null;
  /** Text examples: prepend BOS. Default: textUsesBos(tokenizer). */
  addBos?: boolean;
  /** Text examples: append EOS. Default: true when the tokenizer has an EOS token. */
  addEos?: boolean;
}

export interface TokenizedExample {
  /** Token ids after truncation. */
  ids: Uint32Array;
  /** 1 = this token is a trained target; same length as ids; trained[0] is always 0. */
  trained: Uint8Array;
  /** True when the example was longer than maxSeqLen and was cut. */
  truncated: boolean;
  /** Tokens before truncation. */
  fullLength: number;
  /** Trained targets before truncation. */
  fullTrained: number;
}

/** What the model is fed for one example: L-1 positions for L ids. */
export interface TrainingSequence {
  /** ids[0..L-2] */
  inputs: Uint32Array;
  /** ids[1..L-1]: the token each position must predict. */
  targets: Uint32Array;
  /** trained[1..L-1]: 1 where the target counts in the loss. */
  mask: Uint8Array;
}

/** Anything with ids and trained flags (a TokenizedExample, or sequences built another way). */
export interface TokenSequence {
  ids: Uint32Array;
  trained: Uint8Array;
}

/**
 * Whether plain text gets a BOS token: tokenizer_config's add_bos_token when it says, otherwise
 * whenever the tokenizer has a BOS token (Llama 3 has one and no flag; Qwen3 has none and false).
 */
export function textUsesBos(tokenizer: TextTokenizer): boolean {
  if (tokenizer.bos === null) return false;
  const flag = tokenizer.config.add_bos_token;
  return typeof flag === 'boolean' ? flag : true;
}

function checkMaxSeqLen(maxSeqLen: number | undefined): void {
  if (maxSeqLen !== undefined && !(Number.isInteger(maxSeqLen) && maxSeqLen >= 1)) {
    throw new RangeError(`maxSeqLen must be a positive integer, got ${maxSeqLen}`);
  }
}

function sum(flags: Uint8Array): number {
  let n = 0;
  for (const f of flags) n += f;
  return n;
}

/** ids and trained flags of the whole example, before truncation; trained[0] already 0. */
function encodeWhole(
  example: ChatExample,
  tokenizer: TextTokenizer,
  template: ChatTemplate | null,
  options: TokenizeOptions,
): { ids: number[]; trained: Uint8Array } {
  if (example.kind === 'text') {
    if (example.messages.length !== 1) {
      throw new RangeError(`a text example holds exactly one message, got ${example.messages.length}`);
    }
    const ids = tokenizer.encode(example.messages[0]!.content);
    const bos = tokenizer.bos;
    if (bos !== null && (options.addBos ?? textUsesBos(tokenizer)) && ids[0] !== bos.id) ids.unshift(bos.id);
    const eos = tokenizer.eos;
    if (eos !== null && (options.addEos ?? true) && ids[ids.length - 1] !== eos.id) ids.push(eos.id);
    const trained = new Uint8Array(ids.length).fill(1);
    if (ids.length > 0) trained[0] = 0;
    return { ids, trained };
  }
  if (template === null) throw new ChatTemplateError('chat examples need a chat template, and the tokenizer has none');
  const rendered = renderChatWithAssistantSpans(tokenizer, example.messages, {
    template,
    variables: options.variables,
    now: options.now,
    endOfTurn: options.endOfTurn,
  });
  const trained = rendered.mask.slice();
  if (trained.length > 0) trained[0] = 0;
  return { ids: rendered.ids, trained };
}

/**
 * Tokenises one validated example. Chat examples need `template` (ChatTemplate.fromTokenizer);
 * text examples ignore it. Throws ChatTemplateError when the template cannot render or mask the
 * conversation.
 */
export function tokenizeExample(
  example: ChatExample,
  tokenizer: TextTokenizer,
  template: ChatTemplate | null,
  options: TokenizeOptions = {},
): TokenizedExample {
  checkMaxSeqLen(options.maxSeqLen);
  const whole = encodeWhole(example, tokenizer, template, options);
  const fullLength = whole.ids.length;
  const fullTrained = sum(whole.trained);
  const maxSeqLen = options.maxSeqLen ?? Infinity;
  if (fullLength <= maxSeqLen) {
    return { ids: Uint32Array.from(whole.ids), trained: whole.trained, truncated: false, fullLength, fullTrained };
  }
  const from = (options.truncation ?? 'end') === 'end' ? 0 : fullLength - maxSeqLen;
  const ids = Uint32Array.from(whole.ids.slice(from, from + maxSeqLen));
  const trained = whole.trained.slice(from, from + maxSeqLen);
  // The first kept token has no context any more, whatever it was before.
  trained[0] = 0;
  return { ids, trained, truncated: true, fullLength, fullTrained };
}

/**
 * tokenizeExample over a list, detecting the end-of-turn marker once. Throws on the first example
 * the template cannot handle (with its index in the message).
 */
export function tokenizeExamples(
  examples: readonly ChatExample[],
  tokenizer: TextTokenizer,
  template: ChatTemplate | null,
  options: TokenizeOptions = {},
): TokenizedExample[] {
  let endOfTurn = options.endOfTurn;
  if (endOfTurn === undefined && template !== null && examples.some((e) => e.kind === 'chat')) {
    endOfTurn = detectEndOfTurn(template, tokenizer, { variables: options.variables, now: options.now });
  }
  return examples.map((example, i) => {
    try {
      return tokenizeExample(example, tokenizer, template, { ...options, endOfTurn });
    } catch (e) {
      if (e instanceof Error) e.message = `example ${i}: ${e.message}`;
      throw e;
    }
  });
}

/** The next-token shift: L ids -> L-1 (input, target, mask) positions. Empty for L < 2. */
export function toTrainingSequence(example: TokenSequence): TrainingSequence {
  const positions = Math.max(0, example.ids.length - 1);
  return {
    inputs: example.ids.slice(0, positions),
    targets: example.ids.slice(1, positions + 1),
    mask: example.trained.slice(1, positions + 1),
  };
}

/** Trained targets of a sequence that survive the shift (sum of trained[1..]). */
export function trainedTargets(example: TokenSequence): number {
  let n = 0;
  for (let i = 1; i < example.trained.length; i++) n += example.trained[i]!;
  return n;
}

/** Token counts of one example for the dataset report (DatasetReport's TokenCount). */
export function countExampleTokens(
  example: ChatExample,
  tokenizer: TextTokenizer,
  template: ChatTemplate | null,
  options: TokenizeOptions = {},
): TokenCount {
  const t = tokenizeExample(example, tokenizer, template, options);
  return { tokens: t.fullLength, trainedTokens: t.fullTrained, trainedTokensKept: sum(t.trained) };
}

/**
 * A CountTokens for validateJsonl / DatasetReportOptions.countTokens that uses the real tokenizer
 * and template. The end-of-turn marker is detected once, on the first chat example. The report's
 * maxSeqLen argument, when given, overrides options.maxSeqLen.
 */
export function createTokenCounter(
  tokenizer: TextTokenizer,
  template: ChatTemplate | null,
  options: Omit<TokenizeOptions, 'endOfTurn'> = {},
): CountTokens {
  let endOfTurn: string | null | undefined;
  // A template that cannot render the probe fails every chat line the same way: render it once.
  let probeError: unknown = null;
  return (example, maxSeqLen) => {
    if (example.kind === 'chat' && template !== null && endOfTurn === undefined) {
      if (probeError !== null) throw probeError;
      try {
        endOfTurn = detectEndOfTurn(template, tokenizer, { variables: options.variables, now: options.now });
      } catch (e) {
        probeError = e;
        throw e;
      }
    }
    return countExampleTokens(example, tokenizer, template, { ...options, endOfTurn, maxSeqLen: maxSeqLen ?? options.maxSeqLen });
  };
}
