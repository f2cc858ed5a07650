/**
 * Per-example validation of the three JSONL training formats. Each validator takes any parsed
 * JSON value, never throws, and returns either the normalised example or every problem found,
 * each with a path and a message that says what to fix.
 */
import {
  FORMAT_LABELS,
  ROLES,
  type ChatExample,
  type ChatMessage,
  type DatasetFormat,
  type ExampleIssue,
  type Role,
} from './datasetTypes';

export type ValidationResult = { ok: true; example: ChatExample } | { ok: false; issues: ExampleIssue[] };

const CHAT_KEYS = ['messages'] as const;
const MESSAGE_KEYS = ['role', 'content', 'name', 'weight'] as const;
const PROMPT_COMPLETION_KEYS = ['prompt', 'completion'] as const;
const TEXT_KEYS = ['text'] as const;

/** Tool / function calling: recognised so the message says "not supported" rather than "unknown". */
const UNSUPPORTED_EXAMPLE_KEYS = new Set(['tools', 'functions', 'parallel_tool_calls', 'tool_choice']);
const UNSUPPORTED_MESSAGE_KEYS = new Set(['tool_calls', 'function_call', 'tool_call_id']);
const UNSUPPORTED_ROLES = new Set(['tool', 'function']);

/** Roles other datasets use for ours. A Map: a plain object would answer "constructor". */
const ROLE_SYNONYMS = new Map<string, Role>([
  ['human', 'user'],
  ['bot', 'assistant'],
  ['model', 'assistant'],
  ['gpt', 'assistant'],
  ['ai', 'assistant'],
  ['developer', 'system'],
]);

const MAX_SHOWN_CHARS = 40;

function hasOwn(object: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON value's kind as a user would name it. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

/** A short quoted rendering of a key or string value for messages. */
function quote(text: string): string {
  const shown = text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS)}…` : text;
  return JSON.stringify(shown);
}

/** Levenshtein distance, stopping early once it exceeds `limit`. */
export function editDistance(a: string, b: string, limit = Infinity): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      const value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      current.push(value);
      rowMin = Math.min(rowMin, value);
    }
    if (rowMin > limit) return limit + 1;
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The closest candidate to a misspelt word: case-insensitive equality first, then edit distance
 * up to 2 (1 for words of 4 letters or fewer, so short keys do not suggest each other).
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  if (word.length > 64) return undefined;
  const lower = word.toLowerCase();
  const caseMatch = candidates.find((candidate) => candidate.toLowerCase() === lower);
  if (caseMatch) return caseMatch;
  const limit = word.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase(), limit);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function didYouMean(suggestion: string | undefined): string {
  return suggestion === undefined ? '' : ` (did you mean ${JSON.stringify(suggestion)}?)`;
}

/**
 * The format a line's keys point to, or null when none of `messages`, `prompt`/`completion`,
 * `text` is present (or the value is not an object). `messages` wins over the others.
 */
export function detectLineFormat(value: unknown): DatasetFormat | null {
  if (!isPlainObject(value)) return null;
  if (hasOwn(value, 'messages')) return 'chat';
  if (hasOwn(value, 'prompt') || hasOwn(value, 'completion')) return 'prompt_completion';
  if (hasOwn(value, 'text')) return 'text';
  return null;
}

/** Flag keys that are not in `allowed`, with tool-calling keys called out as unsupported. */
function checkKeys(
  object: Record<string, unknown>,
  allowed: readonly string[],
  unsupported: ReadonlySet<string>,
  pathPrefix: string,
  issues: ExampleIssue[],
): void {
  for (const key of Object.keys(object)) {
    if ((allowed as readonly string[]).includes(key)) continue;
    const path = `${pathPrefix}${key}`;
    if (unsupported.has(key)) {
      issues.push({
        code: 'unsupported_feature',
        path,
        message: `${quote(key)} (tool / function calling) is not supported yet; remove it`,
      });
    } else {
      const where = pathPrefix === '' ? '' : ` in ${pathPrefix.slice(0, -1)}`;
      issues.push({
        code: 'unknown_key',
        path,
        message: `unknown key ${quote(key)}${where}${didYouMean(suggest(key, allowed))}`,
      });
    }
  }
}

/** A required string field: present, a string, not empty or only whitespace. */
function checkText(
  object: Record<string, unknown>,
  key: string,
  path: string,
  issues: ExampleIssue[],
  missingHint = '',
): string | undefined {
  if (!hasOwn(object, key)) {
    issues.push({ code: 'missing_content', path, message: `${path} is missing${missingHint}` });
    return undefined;
  }
  const value = object[key];
  if (typeof value !== 'string') {
    const hint = Array.isArray(value) ? ' (content parts are not supported; join them into one string)' : '';
    issues.push({ code: 'content_not_string', path, message: `${path} is ${describeType(value)}, not a string${hint}` });
    return undefined;
  }
  if (value.trim() === '') {
    issues.push({ code: 'empty_content', path, message: `${path} is empty` });
    return undefined;
  }
  return value;
}

function validateMessage(raw: unknown, index: number, issues: ExampleIssue[]): ChatMessage | undefined {
  const at = `messages[${index}]`;
  if (!isPlainObject(raw)) {
    issues.push({ code: 'invalid_message', path: at, message: `${at} is ${describeType(raw)}, not an object with role and content` });
    return undefined;
  }
  const before = issues.length;
  checkKeys(raw, MESSAGE_KEYS, UNSUPPORTED_MESSAGE_KEYS, `${at}.`, issues);

  let role: Role | undefined;
  if (!hasOwn(raw, 'role')) {
    issues.push({ code: 'missing_role', path: `${at}.role`, message: `${at}.role is missing` });
  } else {
    const value = raw.role;
    if (typeof value !== 'string') {
      issues.push({ code: 'invalid_role', path: `${at}.role`, message: `${at}.role is ${describeType(value)}, not a string` });
    } else if ((ROLES as readonly string[]).includes(value)) {
      role = value as Role;
    } else if (UNSUPPORTED_ROLES.has(value)) {
      issues.push({
        code: 'unsupported_feature',
        path: `${at}.role`,
        message: `${at}.role ${quote(value)} (tool / function calling) is not supported yet`,
      });
    } else {
      const suggestion = ROLE_SYNONYMS.get(value.toLowerCase()) ?? suggest(value, ROLES);
      issues.push({
        code: 'invalid_role',
        path: `${at}.role`,
        message: `${at}.role ${quote(value)} is not one of ${ROLES.join(', ')}${didYouMean(suggestion)}`,
      });
    }
  }

  const content = checkText(raw, 'content', `${at}.content`, issues);

  let weight: 0 | 1 | undefined;
  if (hasOwn(raw, 'weight')) {
    const value = raw.weight;
    if (value !== 0 && value !== 1) {
      const shown = typeof value === 'string' ? quote(value) : typeof value === 'number' || typeof value === 'boolean' ? String(value) : describeType(value);
      issues.push({ code: 'invalid_weight', path: `${at}.weight`, message: `${at}.weight is ${shown}; it must be 0 or 1` });
    } else if (role !== undefined && role !== 'assistant') {
      issues.push({
        code: 'invalid_weight',
        path: `${at}.weight`,
        message: `${at}.weight is only allowed on assistant messages (this one is ${role})`,
      });
    } else {
      weight = value;
    }
  }

  let name: string | undefined;
  if (hasOwn(raw, 'name')) {
    const value = raw.name;
    if (typeof value !== 'string' || value === '') {
      issues.push({ code: 'invalid_name', path: `${at}.name`, message: `${at}.name must be a non-empty string` });
    } else {
      name = value;
    }
  }

  if (issues.length !== before || role === undefined || content === undefined) return undefined;
  const message: ChatMessage = { role, content };
  if (weight !== undefined) message.weight = weight;
  if (name !== undefined) message.name = name;
  return message;
}

/** `{"messages": [{"role", "content", "weight"?, "name"?}, ...]}` */
export function validateChatExample(value: unknown): ValidationResult {
  if (!isPlainObject(value)) return { ok: false, issues: [notObjectIssue(value)] };
  const issues: ExampleIssue[] = [];
  checkKeys(value, CHAT_KEYS, UNSUPPORTED_EXAMPLE_KEYS, '', issues);
  if (!hasOwn(value, 'messages')) {
    issues.push({ code: 'missing_messages', path: 'messages', message: 'no "messages" list' });
    return { ok: false, issues };
  }
  const raw = value.messages;
  if (!Array.isArray(raw)) {
    issues.push({ code: 'invalid_messages', path: 'messages', message: `"messages" is ${describeType(raw)}, not a list` });
    return { ok: false, issues };
  }
  if (raw.length === 0) {
    issues.push({ code: 'invalid_messages', path: 'messages', message: '"messages" is an empty list' });
    return { ok: false, issues };
  }
  const messages: ChatMessage[] = [];
  let assistants = 0;
  let trainedAssistants = 0;
  let sawAssistantRole = false;
  raw.forEach((item, index) => {
    if (isPlainObject(item) && item.role === 'assistant') sawAssistantRole = true;
    const message = validateMessage(item, index, issues);
    if (!message) return;
    messages.push(message);
    if (message.role === 'assistant') {
      assistants++;
      if (message.weight !== 0) trainedAssistants++;
    }
  });
  if (!sawAssistantRole) {
    issues.push({
      code: 'no_assistant_message',
      path: 'messages',
      message: 'no assistant message: each example needs at least one reply to learn from',
    });
  } else if (issues.length === 0 && assistants > 0 && trainedAssistants === 0) {
    issues.push({
      code: 'nothing_to_train',
      path: 'messages',
      message: 'every assistant message has weight 0, so nothing would be trained on',
    });
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, example: { kind: 'chat', messages } };
}

/** Legacy `{"prompt": ..., "completion": ...}`: becomes a user and an assistant message. */
export function validatePromptCompletionExample(value: unknown): ValidationResult {
  if (!isPlainObject(value)) return { ok: false, issues: [notObjectIssue(value)] };
  const issues: ExampleIssue[] = [];
  checkKeys(value, PROMPT_COMPLETION_KEYS, UNSUPPORTED_EXAMPLE_KEYS, '', issues);
  const prompt = checkText(value, 'prompt', 'prompt', issues, ' (for examples without a prompt, use {"text": ...})');
  const completion = checkText(value, 'completion', 'completion', issues);
  if (issues.length > 0 || prompt === undefined || completion === undefined) return { ok: false, issues };
  return {
    ok: true,
    example: {
      kind: 'chat',
      messages: [
        { role: 'user', content: prompt },
        { role: 'assistant', content: completion },
      ],
    },
  };
}

/** Plain `{"text": ...}`: one trained-on-every-token text example. */
export function validateTextExample(value: unknown): ValidationResult {
  if (!isPlainObject(value)) return { ok: false, issues: [notObjectIssue(value)] };
  const issues: ExampleIssue[] = [];
  checkKeys(value, TEXT_KEYS, UNSUPPORTED_EXAMPLE_KEYS, '', issues);
  const text = checkText(value, 'text', 'text', issues);
  if (issues.length > 0 || text === undefined) return { ok: false, issues };
  return { ok: true, example: { kind: 'text', messages: [{ role: 'assistant', content: text }] } };
}

export function notObjectIssue(value: unknown): ExampleIssue {
  return { code: 'not_object', message: `not a JSON object (got ${describeType(value)}); each line must be one {...} example` };
}

export function validateExample(value: unknown, format: DatasetFormat): ValidationResult {
  switch (format) {
    case 'chat':
      return validateChatExample(value);
    case 'prompt_completion':
      return validatePromptCompletionExample(value);
    case 'text':
      return validateTextExample(value);
  }
}

/** The error for a line whose keys say one format in a file of another. */
export function mixedFormatIssue(lineFormat: DatasetFormat, fileFormat: DatasetFormat): ExampleIssue {
  return {
    code: 'mixed_format',
    message: `this line is a ${FORMAT_LABELS[lineFormat]} example but the file is ${FORMAT_LABELS[fileFormat]}; use one format per file`,
  };
}
