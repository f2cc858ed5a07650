// The first examples of a dataset as the model will see them: the chat-template-rendered text
// split into tokens, each flagged as trained (a loss target, per tokenizeExample's mask) or
// context, with the cut at maxSeqLen marked. Computed where the tokenizer lives (the worker);
// the page only draws the result, so it never tokenizes.

import type { ChatTemplate } from './chatTemplate';
import { detectEndOfTurn } from './chatTemplate';
import { tokenizeExample, type TokenizeOptions } from './examples';
import type { ChatExample, DatasetFormat } from './datasetTypes';
import { parseJsonl, type JsonlSource } from './jsonl';
import type { TextTokenizer } from './tokenizer';
import { detectLineFormat, validateExample } from './validate';

export interface PreviewToken {
  id: number;
  /**
   * The text this token adds to the decoded sequence. Empty when a multi-byte character spans
   * several tokens and is not complete yet (the token that completes it carries the character).
   */
  text: string;
  /** A loss target: trained[i] of tokenizeExample, so false for every dropped token. */
  trained: boolean;
  /** A special token of the tokenizer (<|im_start|>, </s>, ...). */
  special: boolean;
  /**
   * When the token is only part of a character (text empty, or U+FFFD): its bytes as `<0xE6>`,
   * so the preview shows something for each token of a character split over several.
   */
  bytes?: string;
}

export interface ExampleTokensPreview {
  /** 1-based line in the file. */
  line: number;
  kind: ChatExample['kind'];
  /** The kept tokens, then (when truncated) up to `maxDroppedShown` of the dropped ones. */
  tokens: PreviewToken[];
  /** Tokens the model is fed: tokens[0..kept-1]; the rest are cut by maxSeqLen. */
  kept: number;
  truncated: boolean;
  /** Tokens before truncation. */
  fullLength: number;
  /** Trained targets that survive truncation. */
  trainedTokens: number;
  /** Dropped tokens not included in `tokens` (past maxDroppedShown). */
  omitted: number;
}

/** A line of the head of the file that could not be previewed (invalid, or the template refused it). */
export interface PreviewProblem {
  line: number;
  message: string;
}

export interface ExamplesPreview {
  format: DatasetFormat | null;
  maxSeqLen: number | null;
  examples: ExampleTokensPreview[];
  problems: PreviewProblem[];
}

export interface PreviewOptions extends Pick<TokenizeOptions, 'variables' | 'now'> {
  /** Longest example kept, in tokens; left out: nothing is cut. */
  maxSeqLen?: number;
  /** Dropped tokens shown after the cut (default 48): enough to see what is lost. */
  maxDroppedShown?: number;
  /** The end-of-turn marker, when already known. */
  endOfTurn?: string | null;
}

/**
 * Per-token text of `ids` such that the texts concatenated equal tokenizer.decode(ids). Decodes a
 * short window before each token and keeps what the token adds (the way streaming decoders do),
 * holding back a trailing U+FFFD until the character it begins is complete.
 */
export function tokenTexts(tokenizer: TextTokenizer, ids: ArrayLike<number>): string[] {
  const list = Array.from(ids);
  const out: string[] = new Array<string>(list.length).fill('');
  // TGI's prefix/read offsets: text up to readOffset is already emitted; prefixOffset gives
  // the decoder a few tokens of left context (SentencePiece strips a leading space otherwise).
  let prefixOffset = 0;
  let readOffset = 0;
  for (let i = 0; i < list.length; i++) {
    const prefix = tokenizer.decode(list.slice(prefixOffset, readOffset));
    const next = tokenizer.decode(list.slice(prefixOffset, i + 1));
    const last = i === list.length - 1;
    if (next.length > prefix.length && next.startsWith(prefix) && (!next.endsWith('\uFFFD') || last)) {
      out[i] = next.slice(prefix.length);
      prefixOffset = readOffset;
      readOffset = i + 1;
    } else if (last) {
      // The tail never decoded cleanly past the prefix: give it whatever decode says it is.
      out[i] = tokenizer.decode(list.slice(readOffset, i + 1));
    }
  }
  return out;
}

/** GPT-2's byte-level BPE alphabet read back: the character a byte is written as -> the byte. */
const BYTE_LEVEL: ReadonlyMap<string, number> = (() => {
  const map = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    map.set(String.fromCodePoint(printable ? b : 256 + extra++), b);
  }
  return map;
})();

/**
 * The bytes a token stands for, as `<0xE6><0x98>`: SentencePiece byte-fallback pieces are
 * `<0xE6>` already; byte-level BPE pieces (GPT-2, Llama 3, Qwen) map each character to a byte.
 */
export function tokenBytesLabel(tokenizer: TextTokenizer, id: number): string {
  const piece = tokenizer.idToToken(id) ?? '';
  if (/^(<0x[0-9A-Fa-f]{2}>)+$/.test(piece)) return piece.toUpperCase().replace(/<0X/g, '<0x');
  const chars = [...piece];
  const bytes = chars.length > 0 && chars.every((c) => BYTE_LEVEL.has(c)) ? chars.map((c) => BYTE_LEVEL.get(c)!) : [...new TextEncoder().encode(piece.replace(/\u2581/g, ' '))];
  return bytes.map((b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`).join('');
}

/** One example's tokens with trained flags and the truncation point. */
export function previewExampleTokens(
  example: ChatExample,
  line: number,
  tokenizer: TextTokenizer,
  template: ChatTemplate | null,
  options: PreviewOptions = {},
): ExampleTokensPreview {
  const tokenize: TokenizeOptions = { variables: options.variables, now: options.now, endOfTurn: options.endOfTurn };
  // The whole example (to show what the cut drops) and the kept part exactly as training gets it.
  const whole = tokenizeExample(example, tokenizer, template, tokenize);
  const kept = options.maxSeqLen === undefined ? whole : tokenizeExample(example, tokenizer, template, { ...tokenize, maxSeqLen: options.maxSeqLen });
  const keptCount = kept.ids.length;
  const shownDropped = Math.min(whole.ids.length - keptCount, options.maxDroppedShown ?? 48);
  const shownIds = whole.ids.subarray(0, keptCount + shownDropped);
  // Texts are decoded over the whole example so a character split at the cut still decodes.
  const texts = tokenTexts(tokenizer, whole.ids).slice(0, shownIds.length);
  let trainedTokens = 0;
  const tokens: PreviewToken[] = Array.from(shownIds, (id, i) => {
    const trained = i < keptCount && kept.trained[i] === 1;
    if (trained) trainedTokens++;
    const text = texts[i]!;
    const partial = text === '' || text.includes('\uFFFD');
    return { id, text, trained, special: tokenizer.isSpecial(id), ...(partial ? { bytes: tokenBytesLabel(tokenizer, id) } : {}) };
  });
  return {
    line,
    kind: example.kind,
    tokens,
    kept: keptCount,
    truncated: kept.truncated,
    fullLength: whole.fullLength,
    trainedTokens,
    omitted: whole.ids.length - keptCount - shownDropped,
  };
}

/**
 * The first `count` valid examples of a JSONL file, tokenized for the preview. Reads only as far
 * as it needs. Lines that are invalid or that the template cannot render are listed in
 * `problems` (the validation report has the details) and skipped.
 */
export async function previewExamples(
  source: JsonlSource,
  tokenizer: TextTokenizer,
  template: ChatTemplate | null,
  options: PreviewOptions & { count?: number } = {},
): Promise<ExamplesPreview> {
  const count = options.count ?? 3;
  const examples: ExampleTokensPreview[] = [];
  const problems: PreviewProblem[] = [];
  let format: DatasetFormat | null = null;
  let endOfTurn = options.endOfTurn;
  for await (const parsed of parseJsonl(source)) {
    if (examples.length >= count || problems.length >= count) break;
    if (parsed.error !== undefined) {
      problems.push({ line: parsed.line, message: parsed.error });
      continue;
    }
    format ??= detectLineFormat(parsed.value);
    if (format === null) {
      problems.push({ line: parsed.line, message: 'not an example in a known format' });
      continue;
    }
    const result = validateExample(parsed.value, format);
    if (!result.ok) {
      problems.push({ line: parsed.line, message: result.issues.map((i) => i.message).join('; ') });
      continue;
    }
    try {
      if (endOfTurn === undefined && result.example.kind === 'chat' && template !== null) {
        endOfTurn = detectEndOfTurn(template, tokenizer, { variables: options.variables, now: options.now });
      }
      examples.push(previewExampleTokens(result.example, parsed.line, tokenizer, template, { ...options, endOfTurn }));
    } catch (e) {
      problems.push({ line: parsed.line, message: e instanceof Error ? e.message : String(e) });
    }
  }
  return { format, maxSeqLen: options.maxSeqLen ?? null, examples, problems };
}
