/**
 * Validation insights of a finished job, as OpenAI's dashboard shows them: the validation
 * examples the fine-tuned model finds hardest and easiest (highest and lowest loss), each with
 * its prompt, the reference answer, the base and fine-tuned losses, and both models' greedy
 * answers. Computed once after training; the result is plain data stored in the job record.
 *
 * Per-example loss is the mean masked token cross-entropy of the example, exactly what the
 * trainer's validation loss averages over (same tokenization, same mask).
 */
import { buildBatch } from '../data/batching';
import type { ChatTemplate } from '../data/chatTemplate';
import { tokenizeExamples, type TokenSequence } from '../data/examples';
import type { ChatExample } from '../data/datasetTypes';
import type { TextTokenizer } from '../data/tokenizer';
import { generate } from '../model/generate';
import type { LoraAdapter } from '../model/lora';
import type { CausalLM, LossTotals } from '../model/transformer';

/**
 * Examples scored (file order). Scoring is two forward passes per example; 64 keeps the step
 * to seconds on a laptop GPU while still ranking a useful spread of examples.
 */
export const MAX_SCORED_EXAMPLES = 64;
/** Examples shown at each end of the ranking; each costs two generations, the expensive part. */
export const SHOWN_PER_END = 3;
/** Most generated tokens per answer: answers are for reading, and decoding is token by token. */
export const MAX_ANSWER_TOKENS = 128;
/** Fewest generated tokens per answer, so a one-token reference still shows where a model goes. */
export const MIN_ANSWER_TOKENS = 8;
/**
 * Longest text kept per prompt message, reference or answer: the insights live in the job
 * record, which every status event and the jobs list carry, so it must stay small.
 */
export const MAX_TEXT_CHARS = 2000;
/** Prompt messages kept per example (the last ones, nearest the answer), for the same reason. */
export const MAX_PROMPT_MESSAGES = 8;
/** Rows per scoring batch: enough to keep the GPU busy, few enough for long examples' memory. */
const SCORE_BATCH_ROWS = 8;
/** Scoring batches pad T to a multiple of this, so few distinct shapes (workspaces) are made. */
const SCORE_PAD_MULTIPLE = 16;

// A type alias, so it is assignable to the chat template's message type (index signature).
export type InsightMessage = {
  role: string;
  content: string;
};

export type AnswerFinish = 'eos' | 'length';

export interface InsightExample {
  /** 0-based index among the validation file's examples. */
  index: number;
  /** Messages before the last assistant turn, the last MAX_PROMPT_MESSAGES of them (empty for plain-text examples). */
  prompt: InsightMessage[];
  /** The last assistant turn (the whole text for plain-text examples). */
  reference: string;
  /** Trained (loss-counted) tokens of the example. */
  tokens: number;
  baseLoss: number;
  fineTunedLoss: number;
  /** Greedy answers; null when none was generated (no prompt, or it fills the context). */
  baseAnswer: string | null;
  fineTunedAnswer: string | null;
  baseFinish: AnswerFinish | null;
  fineTunedFinish: AnswerFinish | null;
  /** The generation budget of this example's answers. */
  maxNewTokens: number;
  /** Some text of this example was cut at MAX_TEXT_CHARS. */
  truncated: boolean;
}

export interface ValidationInsights {
  computedAt: number;
  /** Examples in the validation file. */
  validationExamples: number;
  /** Examples scored (the first MAX_SCORED_EXAMPLES). */
  scored: number;
  /** Token-weighted mean losses over the scored examples. */
  baseMeanLoss: number;
  fineTunedMeanLoss: number;
  /** By fine-tuned loss, highest first. */
  highest: InsightExample[];
  /** By fine-tuned loss, lowest first (never repeats an example of `highest`). */
  lowest: InsightExample[];
}

export type InsightsPhase = 'scoring' | 'generating';

/** What a job record holds about its insights (absent: never computed, e.g. an older job). */
export type ValidationInsightsState =
  | { state: 'computing'; phase: InsightsPhase; done: number; total: number }
  | { state: 'ready'; insights: ValidationInsights }
  | { state: 'none'; reason: string }
  | { state: 'failed'; message: string };

export const NO_VALIDATION_DATA = 'No validation data: the job has no validation file (the trainer makes no automatic split), so there is nothing to rank.';

/** The text cut to MAX_TEXT_CHARS (keeping its end when `keepEnd`, e.g. a long system prompt's tail). */
function cap(text: string, keepEnd = false): { text: string; cut: boolean } {
  if (text.length <= MAX_TEXT_CHARS) return { text, cut: false };
  return keepEnd ? { text: `…${text.slice(text.length - MAX_TEXT_CHARS)}`, cut: true } : { text: `${text.slice(0, MAX_TEXT_CHARS)}…`, cut: true };
}

/** Prompt (messages before the last assistant turn) and reference (that turn), or null without one. */
export function splitExample(example: ChatExample): { prompt: InsightMessage[]; reference: string } | null {
  if (example.kind === 'text') return { prompt: [], reference: example.messages[0]?.content ?? '' };
  let last = -1;
  example.messages.forEach((m, i) => {
    if (m.role === 'assistant') last = i;
  });
  if (last < 0) return null;
  return { prompt: example.messages.slice(0, last).map((m) => ({ role: m.role, content: m.content })), reference: example.messages[last]!.content };
}

/** Generation budget: twice the reference's tokens (room to differ), within the caps. */
export function answerBudget(referenceTokens: number): number {
  return Math.min(MAX_ANSWER_TOKENS, Math.max(MIN_ANSWER_TOKENS, 2 * referenceTokens));
}

/** Mean loss of totals (NaN without trained tokens). */
export const meanLoss = (t: LossTotals): number => (t.tokens > 0 ? t.lossSum / t.tokens : NaN);

/**
 * Loss totals of each sequence under the model (adapter null: the base model), in input order.
 * Sequences are batched by length, one per row, so each row's totals are its own.
 */
export async function scoreSequences(
  model: CausalLM,
  adapter: LoraAdapter | null,
  sequences: readonly TokenSequence[],
  options: { padId: number; signal?: AbortSignal; onBatch?: (scored: number) => void | Promise<void> },
): Promise<LossTotals[]> {
  const out: LossTotals[] = new Array<LossTotals>(sequences.length);
  const positions = (i: number) => Math.max(0, sequences[i]!.ids.length - 1);
  const order = sequences.map((_, i) => i).sort((a, b) => positions(a) - positions(b) || a - b);
  let scored = 0;
  for (let at = 0; at < order.length; at += SCORE_BATCH_ROWS) {
    if (options.signal?.aborted) throw abortError(options.signal);
    const rows = order.slice(at, at + SCORE_BATCH_ROWS);
    const longest = Math.max(1, ...rows.map(positions));
    const T = Math.min(model.config.maxPositions, Math.ceil(longest / SCORE_PAD_MULTIPLE) * SCORE_PAD_MULTIPLE);
    const totals = await model.evaluateRows(buildBatch(sequences, { examples: rows, T }, options.padId), adapter);
    rows.forEach((i, r) => (out[i] = totals[r]!));
    scored += rows.length;
    await options.onBatch?.(scored);
  }
  return out;
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('aborted', 'AbortError');
}

export interface InsightsInput {
  model: CausalLM;
  /** The fine-tuned adapter. */
  adapter: LoraAdapter;
  tokenizer: TextTokenizer;
  template: ChatTemplate | null;
  /** The validation file's examples, in file order. */
  examples: readonly ChatExample[];
  /** Tokenization of the job (hyperparameters.maxSeqLen). */
  maxSeqLen: number;
  padId: number;
  /** Ids that end an answer. */
  eosTokenIds: readonly number[];
  signal?: AbortSignal;
  /** After each scoring batch and each generated answer. */
  onProgress?: (phase: InsightsPhase, done: number, total: number) => void | Promise<void>;
  /** Examples shown at each end (default SHOWN_PER_END). */
  shownPerEnd?: number;
  now?: () => number;
}

/** Scores the first MAX_SCORED_EXAMPLES examples with both models and answers the extremes. */
export async function computeValidationInsights(input: InsightsInput): Promise<ValidationInsights> {
  const { model, adapter, tokenizer, template, signal } = input;
  if (input.examples.length === 0) throw new RangeError('no validation examples');
  const examples = input.examples.slice(0, MAX_SCORED_EXAMPLES);
  const sequences = tokenizeExamples(examples, tokenizer, template, { maxSeqLen: input.maxSeqLen });
  const n = sequences.length;
  const progress = input.onProgress ?? (() => {});

  const base = await scoreSequences(model, null, sequences, { padId: input.padId, signal, onBatch: (k) => progress('scoring', k, 2 * n) });
  const tuned = await scoreSequences(model, adapter, sequences, { padId: input.padId, signal, onBatch: (k) => progress('scoring', n + k, 2 * n) });

  // Examples with no trained token have no loss to rank (and NaN would break the sort).
  const ranked = sequences
    .map((_, i) => i)
    .filter((i) => tuned[i]!.tokens > 0 && !Number.isNaN(meanLoss(tuned[i]!)))
    .sort((a, b) => meanLoss(tuned[b]!) - meanLoss(tuned[a]!) || a - b);
  // Few examples are split between the two ends rather than all listed as "highest".
  const shown = input.shownPerEnd ?? SHOWN_PER_END;
  const perEnd = Math.min(shown, Math.ceil(ranked.length / 2));
  const highest = ranked.slice(0, perEnd);
  const lowest = ranked.slice(perEnd).slice(-shown).reverse();

  const picked = [...highest, ...lowest];
  const total = 2 * picked.length;
  let done = 0;
  await progress('generating', 0, total);
  const answer = async (adapterOrNull: LoraAdapter | null, prompt: number[], maxNewTokens: number): Promise<{ text: string; finish: AnswerFinish }> => {
    if (signal?.aborted) throw abortError(signal);
    const result = await generate(model, [prompt], adapterOrNull, { maxNewTokens, temperature: 0, eosTokenIds: input.eosTokenIds, signal });
    if (signal?.aborted) throw abortError(signal);
    // A model's vocabulary is often padded past the tokenizer's; such ids have no text.
    const ids = result.tokens[0]!.filter((t) => t < tokenizer.vocabSize);
    await progress('generating', ++done, total);
    return { text: tokenizer.decode(ids, { skipSpecialTokens: true }), finish: result.finish[0] === 'eos' ? 'eos' : 'length' };
  };

  const describe = async (i: number): Promise<InsightExample> => {
    const split = splitExample(examples[i]!) ?? { prompt: [], reference: '' };
    const maxNewTokens = answerBudget(tokenizer.encode(split.reference).length);
    let promptIds: number[] | null = null;
    if (split.prompt.length > 0 && template) {
      const ids = tokenizer.encode(template.render(split.prompt, { addGenerationPrompt: true }));
      if (ids.length > 0 && ids.length < model.config.maxPositions) promptIds = ids;
    }
    const b = promptIds ? await answer(null, promptIds, maxNewTokens) : null;
    const f = promptIds ? await answer(adapter, promptIds, maxNewTokens) : null;
    if (!promptIds) await progress('generating', (done += 2), total);
    let truncated = split.prompt.length > MAX_PROMPT_MESSAGES;
    const keep = (text: string, keepEnd = false) => {
      const c = cap(text, keepEnd);
      truncated ||= c.cut;
      return c.text;
    };
    return {
      index: i,
      prompt: split.prompt.slice(-MAX_PROMPT_MESSAGES).map((m) => ({ role: m.role, content: keep(m.content, true) })),
      reference: keep(split.reference),
      tokens: tuned[i]!.tokens,
      baseLoss: meanLoss(base[i]!),
      fineTunedLoss: meanLoss(tuned[i]!),
      baseAnswer: b ? keep(b.text) : null,
      fineTunedAnswer: f ? keep(f.text) : null,
      baseFinish: b?.finish ?? null,
      fineTunedFinish: f?.finish ?? null,
      maxNewTokens,
      truncated,
    };
  };
  const highestOut: InsightExample[] = [];
  for (const i of highest) highestOut.push(await describe(i));
  const lowestOut: InsightExample[] = [];
  for (const i of lowest) lowestOut.push(await describe(i));

  const sum = (list: LossTotals[]) => list.reduce((s, t) => ({ lossSum: s.lossSum + t.lossSum, tokens: s.tokens + t.tokens, correct: s.correct + t.correct }), { lossSum: 0, tokens: 0, correct: 0 });
  return {
    computedAt: (input.now ?? Date.now)(),
    validationExamples: input.examples.length,
    scored: n,
    baseMeanLoss: meanLoss(sum(base)),
    fineTunedMeanLoss: meanLoss(sum(tuned)),
    highest: highestOut,
    lowest: lowestOut,
  };
}

/** How the runner records the step: log lines, progress in the record, and what is fatal. */
export interface InsightsStepHooks {
  log(level: 'info' | 'warning', message: string): Promise<void>;
  /** The state to store while computing, and a status line for it. */
  progress(state: ValidationInsightsState, message: string): Promise<void>;
  /** Errors that must propagate (a lost device: the job pauses and recomputes on resume). */
  isFatal(e: unknown): Promise<boolean>;
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : String(x));

/**
 * The "Computing validation insights" step: logs it, reports progress, and returns the state to
 * store. Returns null when `signal` aborted it (the caller stops the job as a pause or cancel);
 * other failures become a 'failed' state, so the job itself still completes.
 */
export async function runValidationInsightsStep(
  input: Omit<InsightsInput, 'examples' | 'onProgress'> & {
    /** The validation examples (null: no validation file), read inside the step so a read error fails only the insights. */
    examples: () => Promise<readonly ChatExample[] | null>;
  },
  hooks: InsightsStepHooks,
): Promise<ValidationInsightsState | null> {
  let examples: readonly ChatExample[];
  try {
    examples = (await input.examples()) ?? [];
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    await hooks.log('warning', `Validation insights failed: ${message}`);
    return { state: 'failed', message };
  }
  if (examples.length === 0) {
    await hooks.log('info', `Validation insights skipped. ${NO_VALIDATION_DATA}`);
    return { state: 'none', reason: NO_VALIDATION_DATA };
  }
  const scored = Math.min(examples.length, MAX_SCORED_EXAMPLES);
  const high = Math.min(SHOWN_PER_END, Math.ceil(scored / 2));
  const low = Math.min(SHOWN_PER_END, scored - high);
  await hooks.log(
    'info',
    `Computing validation insights: scoring ${scored}${scored < examples.length ? ` of ${examples.length}` : ''} validation examples with the base and the fine-tuned model, ` +
      `then generating both models' answers to the ${high} highest-${low > 0 ? ` and ${low} lowest-` : ''}loss one${high + low === 1 ? '' : 's'}`,
  );
  try {
    const insights = await computeValidationInsights({
      ...input,
      examples,
      onProgress: (phase, done, total) =>
        hooks.progress(
          { state: 'computing', phase, done, total },
          phase === 'scoring'
            ? `Computing validation insights: scoring validation examples with both models (${done} of ${total})`
            : `Computing validation insights: generating both models' answers (${done} of ${total})`,
        ),
    });
    await hooks.log(
      'info',
      `Validation insights ready: mean loss ${fmt(insights.baseMeanLoss)} (base) -> ${fmt(insights.fineTunedMeanLoss)} (fine-tuned) over ${insights.scored} examples; ` +
        `highest ${fmt(insights.highest[0]?.fineTunedLoss ?? NaN)}, lowest ${fmt(insights.lowest[0]?.fineTunedLoss ?? insights.highest.at(-1)?.fineTunedLoss ?? NaN)}`,
    );
    return { state: 'ready', insights };
  } catch (e) {
    if (input.signal?.aborted) return null;
    if (await hooks.isFatal(e)) throw e;
    const message = e instanceof Error ? e.message : String(e);
    await hooks.log('warning', `Validation insights failed: ${message}`);
    return { state: 'failed', message };
  }
}
