/**
 * Types shared by the dataset layer: the JSONL line stream, the normalised training example,
 * validation issues and the dataset report. Plain data only, so they cross a worker boundary
 * with structured clone.
 */

/** The three accepted JSONL training formats, detected per file. */
export type DatasetFormat = 'chat' | 'prompt_completion' | 'text';

export const DATASET_FORMATS: readonly DatasetFormat[] = ['chat', 'prompt_completion', 'text'];

/** Human-readable names, used in messages. */
export const FORMAT_LABELS: Readonly<Record<DatasetFormat, string>> = {
  chat: 'chat (messages)',
  prompt_completion: 'prompt/completion',
  text: 'text',
};

export type Role = 'system' | 'user' | 'assistant';

export const ROLES: readonly Role[] = ['system', 'user', 'assistant'];

// A type alias, not an interface, so it is assignable to message types with an index signature
// (e.g. the chat template's `{role, content, [field: string]: unknown}`).
export type ChatMessage = {
  role: Role;
  content: string;
  /** Only on assistant messages: 0 = not trained on, 1 = trained on (the default). */
  weight?: 0 | 1;
  name?: string;
};

/**
 * One valid training example in the single shape the rest of the engine consumes.
 * `kind: 'chat'` examples go through the chat template and train on assistant messages
 * (prompt/completion lines become a user + an assistant message). `kind: 'text'` examples
 * hold one assistant message with the raw text: no template, every token is trained on.
 */
export interface ChatExample {
  kind: 'chat' | 'text';
  messages: ChatMessage[];
}

/** A valid example together with the (1-based) line it came from. */
export interface LineExample {
  line: number;
  example: ChatExample;
}

/** Errors the JSONL reader itself reports for a line (before any format validation). */
export type ParseErrorCode = 'invalid_json' | 'invalid_utf8' | 'line_too_long';

/**
 * One non-blank line of a JSONL file. Exactly one of `value` / `error` is present.
 * Line numbers are 1-based and count blank lines too, so they match an editor's.
 */
export type ParsedLine =
  | { line: number; value: unknown; error?: undefined; code?: undefined }
  | { line: number; value?: undefined; error: string; code: ParseErrorCode };

export type IssueCode =
  | ParseErrorCode
  | 'not_object'
  | 'missing_messages'
  | 'invalid_messages'
  | 'invalid_message'
  | 'missing_role'
  | 'invalid_role'
  | 'missing_content'
  | 'content_not_string'
  | 'empty_content'
  | 'unknown_key'
  | 'unsupported_feature'
  | 'invalid_weight'
  | 'invalid_name'
  | 'no_assistant_message'
  | 'nothing_to_train'
  | 'mixed_format'
  | 'tokenize_failed';

/** A problem found in one example, without its line (the validators do not know it). */
export interface ExampleIssue {
  code: IssueCode;
  /** What is wrong and, where possible, how to fix it; no "line N:" prefix. */
  message: string;
  /** Where in the example, e.g. `messages[2].role`; absent for whole-line problems. */
  path?: string;
}

export interface DatasetIssue extends ExampleIssue {
  line: number;
}

export type WarningCode =
  | 'no_examples'
  | 'too_few_examples'
  | 'missing_system'
  | 'missing_user'
  | 'too_long'
  | 'nothing_trained_after_truncation'
  | 'duplicates';

export interface DatasetWarning {
  code: WarningCode;
  message: string;
  /** How many examples the warning concerns (absent for file-level warnings). */
  count?: number;
  /** The first few lines concerned, ascending. */
  lines?: number[];
}

/**
 * What an injected tokenizer reports for one example (rendered with the chat template).
 * `trainedTokensKept` is optional: the trained tokens among the first `maxSeqLen` tokens, i.e.
 * what survives truncation. When absent the report assumes the dropped tail was trained tokens
 * first, which is exact when the example ends with its trained reply (the usual shape).
 */
export interface TokenCount {
  tokens: number;
  trainedTokens: number;
  trainedTokensKept?: number;
}

export type CountTokens = (example: ChatExample, maxSeqLen?: number) => TokenCount;

export interface HistogramBucket {
  /** Inclusive lower bound, in tokens per example. */
  lo: number;
  /** Exclusive upper bound. */
  hi: number;
  count: number;
}

export interface TokenStats {
  /** Examples counted (the valid examples). */
  examples: number;
  /** Sum of tokens per example, before truncation. */
  totalTokens: number;
  /** Sum of trained tokens per example, before truncation. */
  trainedTokens: number;
  /** Tokens one epoch feeds through the model: sum of min(tokens, maxSeqLen). */
  processedTokens: number;
  /** Trained tokens one epoch trains on, after truncation. */
  trainedTokensAfterTruncation: number;
  /** Tokens per example. */
  min: number;
  mean: number;
  median: number;
  p95: number;
  max: number;
  histogram: HistogramBucket[];
}

export interface DuplicatePair {
  /** The later line... */
  line: number;
  /** ...repeats the example first seen on this line. */
  duplicateOf: number;
}

export interface DatasetReport {
  /** No errors and at least one valid example. */
  ok: boolean;
  format: DatasetFormat;
  /** 'majority': most lines have this format (ties: the earliest); 'default': no line said. */
  formatSource: 'majority' | 'default';
  /** First line in the detected format, 0 when formatSource is 'default'. */
  formatFirstLine: number;
  /** Lines whose keys identify each format. */
  formatCounts: Record<DatasetFormat, number>;
  /** Highest line number seen (blank lines count; trailing blank lines are not seen). */
  lines: number;
  /** Non-blank lines. */
  nonBlankLines: number;
  /** Valid examples. */
  examples: number;
  /** Non-blank lines with at least one error. */
  invalidLines: number;
  /** The first `maxListedErrors` errors, by line. */
  errors: DatasetIssue[];
  /** All errors, listed or not. */
  errorCount: number;
  errorCounts: Partial<Record<IssueCode, number>>;
  errorsTruncated: boolean;
  warnings: DatasetWarning[];
  /** null when no tokenizer was given or no example is valid. */
  stats: TokenStats | null;
  maxSeqLen: number | null;
  /** Examples longer than maxSeqLen (they are cut from the end). */
  truncatedExamples: number;
  /** Later duplicates of an earlier example (first `maxListedDuplicates`), by line. */
  duplicates: DuplicatePair[];
  duplicateCount: number;
  epochs: number;
  epochsAuto: boolean;
  /** Tokens the job trains on: epochs x trained tokens after truncation. null without stats. */
  billedTokens: number | null;
  /** epochs x processed tokens / tokensPerSecond; null without stats or speed. */
  estimatedSeconds: number | null;
  /** The valid examples, when asked for (`keepExamples`). */
  validExamples?: LineExample[];
}
