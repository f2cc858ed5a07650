// Chat templates (the Jinja in tokenizer_config.json) rendered with @huggingface/jinja, and the
// loss mask that marks which tokens of a rendered conversation the assistant produced.
//
// Finding the assistant tokens. The text a model generates for assistant turn k is what follows
// the prompt it was given, render(messages[0..k-1], add_generation_prompt=true), up to and
// including the template's end-of-turn token. So for each assistant message we render that prompt,
// check that the full conversation starts with it, and take the span from there to the first
// end-of-turn marker (found by rendering a probe conversation: detectEndOfTurn). This needs no
// knowledge of the template's syntax and keeps whatever the template inserts between the
// generation prompt and the end of turn inside the span.
//
// Qwen3 is the case in point. Its template gives the last assistant turn (after the last user
// message) an empty "<think>\n\n</think>\n\n" block that is not part of the generation prompt,
// so that block is trained, which is how Qwen3 answers without reasoning; earlier assistant turns
// are rendered without it (as they appear in the history at inference) and reasoning written as
// "<think>...</think>" in an earlier turn is dropped by the template. With variables
// {enable_thinking: false} the empty block moves into the generation prompt of the last turn and
// is not trained; for earlier turns, whose rendered history lacks the block, the span starts after
// the part of the generation prompt the history does contain (assistantStart).
// Templates that re-render history differently once later messages follow (Qwen3 with two
// assistant messages in a row) are refused with a ChatTemplateError rather than masked wrongly.
//
// Each piece (prompt text, assistant span, ...) is tokenised on its own and the ids concatenated,
// which is how the model sees them at inference (prompt tokenised, then generated tokens).

import { Environment, Interpreter, Template } from '@huggingface/jinja';

import type { TextTokenizer } from './tokenizer';

export class ChatTemplateError extends Error {
  override name = 'ChatTemplateError';
  constructor(
    message: string,
    /** Index of the offending message, when there is one. */
    readonly messageIndex?: number,
  ) {
    super(message);
  }
}

export interface ChatMessage {
  role: string;
  content: string;
  /** OpenAI fine-tuning: 0 = do not train on this assistant message. Default 1. */
  weight?: number;
  /** Extra fields some templates read (reasoning_content, tool_calls, ...). */
  [field: string]: unknown;
}

export interface RenderOptions {
  addGenerationPrompt?: boolean;
  /** Extra template variables, e.g. {enable_thinking: false} for Qwen3. */
  variables?: Record<string, unknown>;
  /**
   * The date templates see through strftime_now / date_string (Llama 3.1+ system headers).
   * Fixed by default (26 Jul 2024, Llama's own fallback) so renders are reproducible.
   */
  now?: Date;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const DEFAULT_DATE = new Date(Date.UTC(2024, 6, 26));

function strftime(date: Date, format: string): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return format.replace(/%([a-zA-Z%])/g, (whole, c: string) => {
    switch (c) {
      case 'd': return pad(date.getUTCDate());
      case 'm': return pad(date.getUTCMonth() + 1);
      case 'Y': return String(date.getUTCFullYear());
      case 'y': return pad(date.getUTCFullYear() % 100);
      case 'b': return MONTHS[date.getUTCMonth()]!.slice(0, 3);
      case 'B': return MONTHS[date.getUTCMonth()]!;
      case 'a': return DAYS[date.getUTCDay()]!.slice(0, 3);
      case 'A': return DAYS[date.getUTCDay()]!;
      case 'H': return pad(date.getUTCHours());
      case 'M': return pad(date.getUTCMinutes());
      case 'S': return pad(date.getUTCSeconds());
      case '%': return '%';
      default: return whole;
    }
  });
}

/**
 * Budget for one render. A template is code from a downloaded model folder, so it runs counted:
 * every AST node evaluated and every item range() makes is a step, every value produced is at
 * most MAX_TEMPLATE_CHARS long (text) or MAX_TEMPLATE_STEPS long (lists), and the clock is read
 * at every step. Real templates take about 20-50 steps per message (Llama 3, Qwen3), so the step
 * limit admits conversations of tens of thousands of messages, far past any model's context.
 */
export const MAX_TEMPLATE_STEPS = 1_000_000;
export const MAX_TEMPLATE_CHARS = 16_000_000;
export const MAX_TEMPLATE_MS = 5_000;

export interface TemplateLimits {
  steps: number;
  chars: number;
  ms: number;
}

const DEFAULT_LIMITS: TemplateLimits = { steps: MAX_TEMPLATE_STEPS, chars: MAX_TEMPLATE_CHARS, ms: MAX_TEMPLATE_MS };

const formatLimit = (n: number) => n.toLocaleString('en-US');

/** The jinja interpreter with the budget above enforced on each evaluated node. */
class BudgetedInterpreter extends Interpreter {
  private steps = 0;
  private readonly deadline: number;
  /** Set when this render ran out of time, so the template can refuse later renders at once. */
  timedOut = false;

  constructor(private readonly limits: TemplateLimits) {
    super();
    this.deadline = Date.now() + limits.ms;
  }

  charge(steps: number, what: string): void {
    this.steps += steps;
    if (this.steps > this.limits.steps) throw new ChatTemplateError(`the chat template ${what} past its limit of ${formatLimit(this.limits.steps)} steps`);
    if (Date.now() > this.deadline) {
      this.timedOut = true;
      throw new ChatTemplateError(`the chat template ran past its time limit of ${this.limits.ms / 1000} s`);
    }
  }

  override evaluate(statement: Parameters<Interpreter['evaluate']>[0], environment: Environment): ReturnType<Interpreter['evaluate']> {
    this.charge(1, 'ran');
    const value = super.evaluate(statement, environment);
    if (typeof value.value === 'string' && value.value.length > this.limits.chars) {
      throw new ChatTemplateError(`the chat template produced text past its limit of ${formatLimit(this.limits.chars)} characters`);
    }
    if (Array.isArray(value.value) && value.value.length > this.limits.steps) {
      throw new ChatTemplateError(`the chat template built a list past its limit of ${formatLimit(this.limits.steps)} items`);
    }
    return value;
  }
}

/**
 * Gives every empty loop body a comment node, so each iteration is an evaluated (counted) step:
 * `{% for i in xs %}{% endfor %}` would otherwise spin without the interpreter seeing it.
 */
function countEveryIteration(node: unknown): void {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    for (const child of node) countEveryIteration(child);
    return;
  }
  const record = node as Record<string, unknown>;
  if (record.type === 'For' && Array.isArray(record.body) && record.body.length === 0) record.body.push({ type: 'Comment', value: '' });
  for (const child of Object.values(record)) countEveryIteration(child);
}

function templateMessage(m: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) if (k !== 'weight') out[k] = v;
  return out;
}

export class ChatTemplate {
  private readonly compiled: Template;
  /** A render ran out of time: later ones are refused at once rather than each taking the limit. */
  private timedOut = false;
  /** Renders so far: the cost measure for callers that must stay linear in conversation length. */
  renders = 0;

  /**
   * `specialTokens`: bos_token, eos_token, ... as TextTokenizer.templateVariables() gives them.
   * `limits`: the per-render budget, MAX_TEMPLATE_* unless lowered (tests).
   */
  constructor(
    readonly source: string,
    private readonly specialTokens: Record<string, string> = {},
    private readonly limits: TemplateLimits = DEFAULT_LIMITS,
  ) {
    try {
      this.compiled = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`the chat template does not parse: ${(e as Error).message}`);
    }
    countEveryIteration(this.compiled.parsed);
  }

  static fromTokenizer(tokenizer: TextTokenizer): ChatTemplate {
    if (tokenizer.chatTemplate === null) {
      throw new ChatTemplateError('the tokenizer has no chat_template (tokenizer_config.json or chat_template.jinja)');
    }
    return new ChatTemplate(tokenizer.chatTemplate, tokenizer.templateVariables());
  }

  render(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    if (this.timedOut) throw new ChatTemplateError(`the chat template ran past its time limit of ${this.limits.ms / 1000} s on an earlier conversation`);
    this.renders++;
    const interpreter = new BudgetedInterpreter(this.limits);
    const now = options.now ?? DEFAULT_DATE;
    // Our own environment instead of Template.render so that strftime_now and raise_exception
    // can be replaced (Template.render declares them and refuses redeclaration).
    const env = interpreter.global;
    const globals: Record<string, unknown> = {
      false: false,
      true: true,
      none: null,
      False: false,
      True: true,
      None: null,
      range: (start: number, stop?: number, step?: number) => pyRange(interpreter, start, stop, step),
      strftime_now: (format: string) => strftime(now, format),
      raise_exception: (message: string) => {
        throw new ChatTemplateError(`the chat template refused the conversation: ${message}`);
      },
      date_string: strftime(now, '%d %b %Y'),
      ...this.specialTokens,
      ...options.variables,
      messages: messages.map(templateMessage),
      add_generation_prompt: options.addGenerationPrompt ?? false,
    };
    try {
      for (const [name, value] of Object.entries(globals)) env.set(name, value);
      const result = interpreter.run(this.compiled.parsed);
      if (typeof result.value !== 'string') throw new Error('the template did not produce text');
      return result.value;
    } catch (e) {
      this.timedOut ||= interpreter.timedOut;
      if (e instanceof ChatTemplateError) throw e;
      throw new ChatTemplateError(`the chat template failed: ${(e as Error).message}`);
    }
  }
}

function pyRange(interpreter: BudgetedInterpreter, start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (step === 0) throw new Error('range() step must not be zero');
  const items = Math.ceil((stop - start) / step);
  interpreter.charge(Number.isFinite(items) ? Math.max(0, items) : Infinity, 'asked range() for items');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

export interface AssistantSpan {
  messageIndex: number;
  /** Character range in the rendered text. */
  charStart: number;
  charEnd: number;
  /** Token range in ids. */
  tokenStart: number;
  tokenEnd: number;
  /** false for weight-0 messages: rendered but not in the mask. */
  trained: boolean;
}

export interface ChatTokens {
  text: string;
  ids: number[];
  /** 1 where the token is assistant output that is trained on, else 0. Same length as ids. */
  mask: Uint8Array;
  spans: AssistantSpan[];
  /** The end-of-turn marker the spans end with, or null if the template has none. */
  endOfTurn: string | null;
}

export interface AssistantSpanOptions {
  template?: ChatTemplate;
  variables?: Record<string, unknown>;
  now?: Date;
  /** The end-of-turn marker; detected from the template when left out (see detectEndOfTurn). */
  endOfTurn?: string | null;
}

const PROBE_QUESTION = 'Whittle probe question';
const PROBE_ANSWER = 'Whittle probe answer';

/**
 * The special token a template writes right after an assistant message's content
 * (<|im_end|> for ChatML/Qwen, <|eot_id|> for Llama 3, </s> for Llama 2), found by rendering a
 * one-exchange probe conversation. null if the template writes none.
 */
export function detectEndOfTurn(template: ChatTemplate, tokenizer: TextTokenizer, options: RenderOptions = {}): string | null {
  const text = template.render(
    [
      { role: 'user', content: PROBE_QUESTION },
      { role: 'assistant', content: PROBE_ANSWER },
    ],
    { ...options, addGenerationPrompt: false },
  );
  const at = text.indexOf(PROBE_ANSWER);
  if (at < 0) throw new ChatTemplateError('the chat template does not render assistant content verbatim');
  const after = at + PROBE_ANSWER.length;
  let best: string | null = null;
  let bestAt = Infinity;
  for (const token of tokenizer.specialTokens.keys()) {
    const i = text.indexOf(token, after);
    if (i >= 0 && (i < bestAt || (i === bestAt && token.length > best!.length))) {
      best = token;
      bestAt = i;
    }
  }
  return best;
}

function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages) || messages.length === 0) throw new ChatTemplateError('a conversation needs at least one message');
  messages.forEach((m, i) => {
    if (typeof m !== 'object' || m === null) throw new ChatTemplateError(`message ${i} is not an object`, i);
    if (typeof m.role !== 'string' || m.role === '') throw new ChatTemplateError(`message ${i} has no role`, i);
    if (typeof m.content !== 'string') throw new ChatTemplateError(`message ${i} content is not a string`, i);
    if (m.weight !== undefined && m.weight !== 0 && m.weight !== 1) {
      throw new ChatTemplateError(`message ${i} weight is ${JSON.stringify(m.weight)}; it must be 0 or 1`, i);
    }
    if (m.weight !== undefined && m.role !== 'assistant') {
      throw new ChatTemplateError(`message ${i} has a weight but only assistant messages can`, i);
    }
  });
}

/**
 * Where assistant message k's output starts in `text`: after the generation prompt rendered for
 * the conversation before it. When the template writes that prompt differently for a turn that is
 * no longer last (Qwen3 with enable_thinking=false puts an empty think block only in the live
 * prompt), fall back to the part of the generation prompt the full text does contain.
 */
function assistantStart(
  template: ChatTemplate,
  text: string,
  messages: readonly ChatMessage[],
  k: number,
  options: RenderOptions,
): number | null {
  const before = messages.slice(0, k);
  const prompt = template.render(before, { ...options, addGenerationPrompt: true });
  if (text.startsWith(prompt)) return prompt.length;
  const history = template.render(before, { ...options, addGenerationPrompt: false });
  if (!text.startsWith(history) || !prompt.startsWith(history)) return null;
  let common = 0;
  while (history.length + common < prompt.length && text[history.length + common] === prompt[history.length + common]) common++;
  return history.length + common;
}

/**
 * The generation prompt as the rendered history shows it before every assistant message
 * ("<|im_start|>assistant\n"), or null where the exact per-message search must be used.
 *
 * Locating each assistant message exactly re-renders the conversation before it, which is
 * quadratic in the number of turns. When the template ends turns with a marker, has no two
 * assistant messages in a row, and the first assistant message's header appears in the text once
 * per assistant message and nowhere else, the messages between the first and the last are found
 * by searching for that header instead: one render for the first message's position, one for the
 * last (whose live prompt may differ, as Qwen3's does), so masking stays linear in the length.
 */
function assistantHeader(
  template: ChatTemplate,
  text: string,
  messages: readonly ChatMessage[],
  endOfTurn: string | null,
  options: RenderOptions,
): string | null {
  if (endOfTurn === null) return null;
  const assistants: number[] = [];
  messages.forEach((m, k) => {
    if (m.role === 'assistant') assistants.push(k);
  });
  if (assistants.length < 3 || assistants.some((k, i) => i > 0 && assistants[i - 1] === k - 1)) return null;
  const first = assistants[0]!;
  const start = assistantStart(template, text, messages, first, options);
  if (start === null) return null;
  const history = template.render(messages.slice(0, first), { ...options, addGenerationPrompt: false });
  if (!text.startsWith(history) || history.length >= start) return null;
  const header = text.slice(history.length, start);
  let seen = 0;
  for (let at = text.indexOf(header); at >= 0; at = text.indexOf(header, at + header.length)) seen++;
  return seen === assistants.length ? header : null;
}

/**
 * Renders a conversation with the tokenizer's chat template (no generation prompt) and returns
 * the token ids with a mask marking each trained assistant message's tokens, from the first
 * token after its generation prompt through its end-of-turn token.
 */
export function renderChatWithAssistantSpans(
  tokenizer: TextTokenizer,
  messages: readonly ChatMessage[],
  options: AssistantSpanOptions = {},
): ChatTokens {
  checkMessages(messages);
  const template = options.template ?? ChatTemplate.fromTokenizer(tokenizer);
  const renderOptions: RenderOptions = { variables: options.variables, now: options.now };
  const text = template.render(messages, { ...renderOptions, addGenerationPrompt: false });
  const endOfTurn = options.endOfTurn !== undefined ? options.endOfTurn : detectEndOfTurn(template, tokenizer, renderOptions);
  if (endOfTurn !== null) {
    messages.forEach((m, i) => {
      if (m.content.includes(endOfTurn)) {
        throw new ChatTemplateError(`message ${i} contains the end-of-turn marker ${endOfTurn}, which would cut the turn short`, i);
      }
    });
  }

  const charSpans: { messageIndex: number; start: number; end: number; trained: boolean }[] = [];
  const header = assistantHeader(template, text, messages, endOfTurn, renderOptions);
  const lastAssistant = messages.findLastIndex((m) => m.role === 'assistant');
  let previousEnd = 0;
  messages.forEach((m, k) => {
    if (m.role !== 'assistant') return;
    let start: number | null;
    if (header !== null && k !== lastAssistant) {
      const at = text.indexOf(header, previousEnd);
      start = at < 0 ? null : at + header.length;
    } else {
      start = assistantStart(template, text, messages, k, renderOptions);
    }
    if (start === null || start < previousEnd) {
      throw new ChatTemplateError(
        `cannot locate assistant message ${k}: the template renders the conversation before it differently ` +
          'once later messages follow (consecutive assistant messages, or a template that rewrites history?)',
        k,
      );
    }
    let end: number;
    if (endOfTurn !== null) {
      const at = text.indexOf(endOfTurn, start);
      if (at < 0) throw new ChatTemplateError(`assistant message ${k} has no ${endOfTurn} after it`, k);
      end = at + endOfTurn.length;
    } else {
      const through = template.render(messages.slice(0, k + 1), { ...renderOptions, addGenerationPrompt: false });
      if (!text.startsWith(through)) throw new ChatTemplateError(`cannot find where assistant message ${k} ends`, k);
      end = through.length;
    }
    charSpans.push({ messageIndex: k, start, end, trained: m.weight !== 0 });
    previousEnd = end;
  });

  const ids: number[] = [];
  const maskBits: number[] = [];
  const spans: AssistantSpan[] = [];
  const push = (from: number, to: number, bit: number) => {
    if (to <= from) return;
    for (const id of tokenizer.encode(text.slice(from, to))) {
      ids.push(id);
      maskBits.push(bit);
    }
  };
  let at = 0;
  for (const s of charSpans) {
    push(at, s.start, 0);
    const tokenStart = ids.length;
    push(s.start, s.end, s.trained ? 1 : 0);
    spans.push({ messageIndex: s.messageIndex, charStart: s.start, charEnd: s.end, tokenStart, tokenEnd: ids.length, trained: s.trained });
    at = s.end;
  }
  push(at, text.length, 0);
  return { text, ids, mask: Uint8Array.from(maskBits), spans, endOfTurn };
}
