/**
 * The validation report for a JSONL training file, in the spirit of OpenAI's fine-tuning data
 * checks: line-numbered errors (capped, with counts per kind), warnings, token statistics, the
 * epochs a job would run, the tokens it trains on and a time estimate.
 *
 * Built incrementally (`DatasetReportBuilder.add` per parsed line) so a file of hundreds of MB is
 * never held as text; only per-example numbers (and the examples, if asked for) are kept.
 */
import {
  DATASET_FORMATS,
  type ChatExample,
  type CountTokens,
  type DatasetFormat,
  type DatasetIssue,
  type DatasetReport,
  type DatasetWarning,
  type DuplicatePair,
  type ExampleIssue,
  type HistogramBucket,
  type IssueCode,
  type LineExample,
  type ParsedLine,
  type TokenStats,
} from './datasetTypes';
import { autoEpochs } from '../train/autoRules';
import { ChunkedUint32 } from './chunkedArray';
import { parseJsonl, type JsonlSource, type ParseJsonlOptions } from './jsonl';
import { KeyIndex, textKey } from './keyIndex';
import { detectLineFormat, isPlainObject, mixedFormatIssue, notObjectIssue, validateExample } from './validate';

export interface DatasetReportOptions {
  /** Tokenizer + chat template, injected; without it the report has no token statistics. */
  countTokens?: CountTokens;
  /** Examples longer than this are truncated (from the end) by the trainer. */
  maxSeqLen?: number;
  /** A number, or 'auto' (default) for OpenAI's rule, see autoEpochs in train/autoRules. */
  epochs?: number | 'auto';
  /** Measured training speed, in tokens fed through the model per second (prompt tokens included). */
  tokensPerSecond?: number;
  /** Errors listed in `errors` (all are counted). Default 100. */
  maxListedErrors?: number;
  /** Duplicate pairs listed. Default 100. */
  maxListedDuplicates?: number;
  /** Lines quoted per warning. Default 10. */
  maxWarningLines?: number;
  /** Histogram buckets at most. Default 20. */
  histogramBuckets?: number;
  /** Fewer valid examples than this is warned about. Default 10 (OpenAI's minimum). */
  minExamples?: number;
  /** Fewer than minExamples makes the report not ok (a training file, unless the user allows it). Default false. */
  tooFewIsError?: boolean;
  /** Keep the normalised examples in `validExamples`. Default false. */
  keepExamples?: boolean;
  /**
   * Called with each valid example as it is read, with its line and the format it is valid in
   * (the file's format is only known at the end): a caller can tokenize as the file streams
   * instead of keeping every example.
   */
  onValidExample?: (example: ChatExample, line: number, format: DatasetFormat) => void;
}

const DEFAULT_MAX_LISTED = 100;
const DEFAULT_WARNING_LINES = 10;
const DEFAULT_HISTOGRAM_BUCKETS = 20;
const DEFAULT_MIN_EXAMPLES = 10;

/**
 * A job whose training file has more than this share of examples that lose every trained token
 * to truncation is refused (the create form and `whittle train`) unless the user overrides it:
 * such a job mostly trains nothing, and its loss curve says little.
 */
export const MAX_UNTRAINED_SHARE = 0.25;

/** Valid examples that lose every trained token to truncation, and their share of all valid examples. */
export function untrainedExamples(report: Pick<DatasetReport, 'warnings' | 'examples'>): { count: number; share: number } {
  const count = report.warnings.find((w) => w.code === 'nothing_trained_after_truncation')?.count ?? 0;
  return { count, share: report.examples > 0 ? count / report.examples : 0 };
}

/** `line 12: messages[2].role "bot" is not one of ...` */
export function formatIssue(issue: DatasetIssue): string {
  return `line ${issue.line}: ${issue.message}`;
}

/** Identity of a normalised example (a KeyIndex key): an explicit weight 1 is the same as none. */
export function exampleKey(example: ChatExample): Uint32Array {
  const parts: unknown[] = [example.kind];
  for (const m of example.messages) parts.push(m.role, m.content, m.weight ?? 1, m.name ?? null);
  return textKey(JSON.stringify(parts));
}

/** Issues in line order: the first `cap` kept, all counted per code. */
class IssueLog {
  readonly listed: DatasetIssue[] = [];
  readonly counts = new Map<IssueCode, number>();
  total = 0;
  invalidLines = 0;

  constructor(private readonly cap: number) {}

  addLine(line: number, issues: readonly ExampleIssue[]): void {
    if (issues.length === 0) return;
    this.invalidLines++;
    for (const issue of issues) {
      this.total++;
      this.counts.set(issue.code, (this.counts.get(issue.code) ?? 0) + 1);
      if (this.listed.length < this.cap) this.listed.push({ line, ...issue });
    }
  }
}

/** Lines concerned by a warning: counted, the first few kept. */
class LineSample {
  count = 0;
  readonly lines: number[] = [];
  constructor(private readonly cap: number) {}
  add(line: number): void {
    this.count++;
    if (this.lines.length < this.cap) this.lines.push(line);
  }
}

/** Everything about the lines whose keys said (or could be) one format. */
class FormatBucket {
  detected = 0;
  firstLine = 0;
  readonly detectedLines: number[] = [];
  readonly issues: IssueLog;
  valid = 0;
  /** Per valid example (with a token counter): its tokens. Sums are kept, not the other counts. */
  readonly tokens = new ChunkedUint32();
  trainedTokens = 0;
  trainedKeptTokens = 0;
  readonly firstSeen = new KeyIndex();
  readonly duplicates: DuplicatePair[] = [];
  duplicateCount = 0;
  readonly missingSystem: LineSample;
  readonly missingUser: LineSample;
  readonly tooLong: LineSample;
  readonly nothingKept: LineSample;
  readonly examples: LineExample[] = [];

  constructor(
    readonly format: DatasetFormat,
    private readonly options: Required<Pick<DatasetReportOptions, 'maxListedErrors' | 'maxListedDuplicates' | 'maxWarningLines'>>,
  ) {
    this.issues = new IssueLog(options.maxListedErrors);
    this.missingSystem = new LineSample(options.maxWarningLines);
    this.missingUser = new LineSample(options.maxWarningLines);
    this.tooLong = new LineSample(options.maxWarningLines);
    this.nothingKept = new LineSample(options.maxWarningLines);
  }

  markDetected(line: number): void {
    if (this.detected === 0) this.firstLine = line;
    this.detected++;
    if (this.detectedLines.length < this.options.maxListedErrors) this.detectedLines.push(line);
  }

  addValid(line: number, example: ChatExample, counts: { tokens: number; trained: number; kept: number } | null, maxSeqLen: number | undefined, keep: boolean): void {
    this.valid++;
    if (keep) this.examples.push({ line, example });
    const first = this.firstSeen.firstOrAdd(exampleKey(example), line);
    if (first !== undefined) {
      this.duplicateCount++;
      if (this.duplicates.length < this.options.maxListedDuplicates) this.duplicates.push({ line, duplicateOf: first });
    }
    if (example.kind === 'chat' && this.format === 'chat') {
      let system = false;
      let user = false;
      for (const message of example.messages) {
        if (message.role === 'system') system = true;
        else if (message.role === 'user') user = true;
      }
      if (!system) this.missingSystem.add(line);
      if (!user) this.missingUser.add(line);
    }
    if (counts) {
      this.tokens.push(counts.tokens);
      this.trainedTokens += counts.trained;
      this.trainedKeptTokens += counts.kept;
      if (maxSeqLen !== undefined && counts.tokens > maxSeqLen) {
        this.tooLong.add(line);
        if (counts.trained > 0 && counts.kept === 0) this.nothingKept.add(line);
      }
    }
  }
}

function positiveInt(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value >= 1 ? Math.floor(value) : fallback;
}

function linesText(sample: { lines: number[]; count: number }): string {
  const more = sample.count > sample.lines.length ? ', …' : '';
  return `line${sample.lines.length === 1 && sample.count === 1 ? '' : 's'} ${sample.lines.join(', ')}${more}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** `n examples are` / `1 example is`: pick the verb form for n. */
function agree(n: number, singular: string, pluralForm: string): string {
  return n === 1 ? singular : pluralForm;
}

/** Equal-width integer buckets over [min, max]; at most `maxBuckets`. */
export function tokenHistogram(values: ArrayLike<number> & Iterable<number>, maxBuckets: number): HistogramBucket[] {
  if (values.length === 0) return [];
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const span = max - min + 1;
  const width = Math.max(1, Math.ceil(span / Math.max(1, maxBuckets)));
  const count = Math.ceil(span / width);
  const buckets: HistogramBucket[] = Array.from({ length: count }, (_, i) => ({ lo: min + i * width, hi: min + (i + 1) * width, count: 0 }));
  for (const v of values) buckets[Math.floor((v - min) / width)]!.count++;
  return buckets;
}

function percentile(sorted: Uint32Array, q: number): number {
  // Nearest rank: an actual example length, not an interpolation.
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

function tokenStats(bucket: FormatBucket, maxSeqLen: number | undefined, histogramBuckets: number): TokenStats | null {
  const n = bucket.tokens.length;
  if (n === 0) return null;
  const sorted = bucket.tokens.toUint32Array();
  let totalTokens = 0;
  let processedTokens = 0;
  for (const tokens of sorted) {
    totalTokens += tokens;
    processedTokens += maxSeqLen === undefined ? tokens : Math.min(tokens, maxSeqLen);
  }
  const histogram = tokenHistogram(sorted, histogramBuckets);
  sorted.sort();
  return {
    examples: n,
    totalTokens,
    trainedTokens: bucket.trainedTokens,
    processedTokens,
    trainedTokensAfterTruncation: bucket.trainedKeptTokens,
    min: sorted[0]!,
    mean: totalTokens / n,
    median: percentile(sorted, 0.5),
    p95: percentile(sorted, 0.95),
    max: sorted[n - 1]!,
    histogram,
  };
}

/** Accumulates parsed lines into a DatasetReport. Never throws on content. */
export class DatasetReportBuilder {
  private readonly shared: IssueLog;
  private readonly buckets: Record<DatasetFormat, FormatBucket>;
  private lastLine = 0;
  private nonBlank = 0;
  private readonly caps: Required<Pick<DatasetReportOptions, 'maxListedErrors' | 'maxListedDuplicates' | 'maxWarningLines'>>;
  private readonly maxSeqLen: number | undefined;

  constructor(private readonly options: DatasetReportOptions = {}) {
    this.caps = {
      maxListedErrors: positiveInt(options.maxListedErrors, DEFAULT_MAX_LISTED),
      maxListedDuplicates: positiveInt(options.maxListedDuplicates, DEFAULT_MAX_LISTED),
      maxWarningLines: positiveInt(options.maxWarningLines, DEFAULT_WARNING_LINES),
    };
    this.maxSeqLen = options.maxSeqLen !== undefined && options.maxSeqLen >= 1 ? Math.floor(options.maxSeqLen) : undefined;
    this.shared = new IssueLog(this.caps.maxListedErrors);
    this.buckets = {
      chat: new FormatBucket('chat', this.caps),
      prompt_completion: new FormatBucket('prompt_completion', this.caps),
      text: new FormatBucket('text', this.caps),
    };
  }

  add(parsed: ParsedLine): void {
    const line = parsed.line;
    this.lastLine = Math.max(this.lastLine, line);
    this.nonBlank++;
    if (parsed.error !== undefined) {
      this.shared.addLine(line, [{ code: parsed.code, message: parsed.error }]);
      return;
    }
    const value = parsed.value;
    if (!isPlainObject(value)) {
      this.shared.addLine(line, [notObjectIssue(value)]);
      return;
    }
    const format = detectLineFormat(value);
    if (format) {
      this.buckets[format].markDetected(line);
      this.check(this.buckets[format], line, value);
    } else {
      // No format key at all: the line is wrong whatever the file's format turns out to be,
      // so validate it against each and keep the one that matches the file at the end.
      for (const f of DATASET_FORMATS) this.check(this.buckets[f], line, value);
    }
  }

  private check(bucket: FormatBucket, line: number, value: unknown): void {
    const result = validateExample(value, bucket.format);
    if (!result.ok) {
      bucket.issues.addLine(line, result.issues);
      return;
    }
    let counts: { tokens: number; trained: number; kept: number } | null = null;
    const countTokens = this.options.countTokens;
    if (countTokens) {
      const counted = countWith(countTokens, result.example, this.maxSeqLen);
      if (typeof counted === 'string') {
        bucket.issues.addLine(line, [{ code: 'tokenize_failed', message: counted }]);
        return;
      }
      counts = counted;
    }
    bucket.addValid(line, result.example, counts, this.maxSeqLen, this.options.keepExamples === true);
    this.options.onValidExample?.(result.example, line, bucket.format);
  }

  finish(): DatasetReport {
    const { format, formatSource } = this.pickFormat();
    const main = this.buckets[format];
    const others = DATASET_FORMATS.filter((f) => f !== format).map((f) => this.buckets[f]);

    const mixed: DatasetIssue[] = [];
    let mixedCount = 0;
    for (const other of others) {
      mixedCount += other.detected;
      const issue = mixedFormatIssue(other.format, format);
      for (const line of other.detectedLines) mixed.push({ line, ...issue });
    }
    const merged = [...this.shared.listed, ...main.issues.listed, ...mixed].sort((a, b) => a.line - b.line);
    const errors = merged.slice(0, this.caps.maxListedErrors);
    const errorCounts: Partial<Record<IssueCode, number>> = {};
    for (const log of [this.shared.counts, main.issues.counts]) {
      for (const [code, n] of log) errorCounts[code] = (errorCounts[code] ?? 0) + n;
    }
    if (mixedCount > 0) errorCounts.mixed_format = mixedCount;
    const errorCount = this.shared.total + main.issues.total + mixedCount;

    const stats = tokenStats(main, this.maxSeqLen, positiveInt(this.options.histogramBuckets, DEFAULT_HISTOGRAM_BUCKETS));
    const epochsOption = this.options.epochs;
    const epochsAuto = epochsOption === undefined || epochsOption === 'auto';
    const epochs = epochsAuto ? autoEpochs(main.valid) : positiveInt(epochsOption, 1);
    const speed = this.options.tokensPerSecond;
    const estimatedSeconds =
      stats && speed !== undefined && Number.isFinite(speed) && speed > 0 ? (epochs * stats.processedTokens) / speed : null;

    const report: DatasetReport = {
      ok: errorCount === 0 && main.valid > 0 && !(this.options.tooFewIsError === true && main.valid < positiveInt(this.options.minExamples, DEFAULT_MIN_EXAMPLES)),
      format,
      formatSource,
      formatFirstLine: formatSource === 'default' ? 0 : main.firstLine,
      formatCounts: {
        chat: this.buckets.chat.detected,
        prompt_completion: this.buckets.prompt_completion.detected,
        text: this.buckets.text.detected,
      },
      lines: this.lastLine,
      nonBlankLines: this.nonBlank,
      examples: main.valid,
      invalidLines: this.shared.invalidLines + main.issues.invalidLines + mixedCount,
      errors,
      errorCount,
      errorCounts,
      errorsTruncated: errorCount > errors.length,
      warnings: this.warnings(main, stats),
      stats,
      maxSeqLen: this.maxSeqLen ?? null,
      truncatedExamples: main.tooLong.count,
      duplicates: main.duplicates,
      duplicateCount: main.duplicateCount,
      epochs,
      epochsAuto,
      billedTokens: stats ? epochs * stats.trainedTokensAfterTruncation : null,
      estimatedSeconds,
    };
    if (this.options.keepExamples) report.validExamples = main.examples;
    return report;
  }

  /** The format most lines have; ties go to the one seen first; 'chat' when no line says. */
  private pickFormat(): { format: DatasetFormat; formatSource: 'majority' | 'default' } {
    let best: FormatBucket | null = null;
    for (const f of DATASET_FORMATS) {
      const bucket = this.buckets[f];
      if (bucket.detected === 0) continue;
      if (!best || bucket.detected > best.detected || (bucket.detected === best.detected && bucket.firstLine < best.firstLine)) {
        best = bucket;
      }
    }
    return best ? { format: best.format, formatSource: 'majority' } : { format: 'chat', formatSource: 'default' };
  }

  private warnings(main: FormatBucket, stats: TokenStats | null): DatasetWarning[] {
    const warnings: DatasetWarning[] = [];
    const minExamples = positiveInt(this.options.minExamples, DEFAULT_MIN_EXAMPLES);
    if (main.valid === 0) {
      warnings.push({
        code: 'no_examples',
        message: this.nonBlank === 0 ? 'the file has no examples' : 'no valid examples: fix the errors listed',
      });
    } else if (main.valid < minExamples) {
      warnings.push({
        code: 'too_few_examples',
        message: `only ${plural(main.valid, 'valid example')}; at least ${minExamples} are needed, and 50 to 100 usually work better`,
        count: main.valid,
      });
    }
    if (main.missingSystem.count > 0) {
      warnings.push({
        code: 'missing_system',
        message: `${plural(main.missingSystem.count, 'example')} ${agree(main.missingSystem.count, 'has', 'have')} no system message (${linesText(main.missingSystem)}); fine if intended, but use the same system message you will use at inference`,
        count: main.missingSystem.count,
        lines: main.missingSystem.lines,
      });
    }
    if (main.missingUser.count > 0) {
      warnings.push({
        code: 'missing_user',
        message: `${plural(main.missingUser.count, 'example')} ${agree(main.missingUser.count, 'has', 'have')} no user message (${linesText(main.missingUser)})`,
        count: main.missingUser.count,
        lines: main.missingUser.lines,
      });
    }
    if (main.tooLong.count > 0 && stats && this.maxSeqLen !== undefined) {
      warnings.push({
        code: 'too_long',
        message:
          `${plural(main.tooLong.count, 'example')} ${agree(main.tooLong.count, 'is', 'are')} longer than the max sequence length of ${this.maxSeqLen} tokens ` +
          `(${linesText(main.tooLong)}; longest ${stats.max}): they will be truncated from the end, ` +
          `so tokens past ${this.maxSeqLen} are not trained on`,
        count: main.tooLong.count,
        lines: main.tooLong.lines,
      });
    }
    if (main.nothingKept.count > 0) {
      warnings.push({
        code: 'nothing_trained_after_truncation',
        message: `${plural(main.nothingKept.count, 'example')} ${agree(main.nothingKept.count, 'loses', 'lose')} every trained token to truncation and will teach nothing (${linesText(main.nothingKept)}); shorten them or raise the max sequence length`,
        count: main.nothingKept.count,
        lines: main.nothingKept.lines,
      });
    }
    if (main.duplicateCount > 0) {
      const shown = main.duplicates.slice(0, this.caps.maxWarningLines).map((d) => `line ${d.line} repeats line ${d.duplicateOf}`);
      const more = main.duplicateCount > shown.length ? ', …' : '';
      warnings.push({
        code: 'duplicates',
        message: `${plural(main.duplicateCount, 'example')} ${agree(main.duplicateCount, 'repeats', 'repeat')} an earlier one (${shown.join(', ')}${more})`,
        count: main.duplicateCount,
        lines: main.duplicates.slice(0, this.caps.maxWarningLines).map((d) => d.line),
      });
    }
    return warnings;
  }
}

/** Run the injected counter defensively: a throw or nonsense becomes a per-line message. */
function countWith(
  countTokens: CountTokens,
  example: ChatExample,
  maxSeqLen: number | undefined,
): { tokens: number; trained: number; kept: number } | string {
  let result: ReturnType<CountTokens>;
  try {
    result = countTokens(example, maxSeqLen);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return `could not tokenize this example (${detail.slice(0, 160)})`;
  }
  const tokens = result?.tokens;
  const trained = result?.trainedTokens;
  const valid = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;
  if (!valid(tokens) || !valid(trained) || trained > tokens) {
    return 'could not tokenize this example (the token counter returned inconsistent counts)';
  }
  let kept: number;
  if (maxSeqLen === undefined || tokens <= maxSeqLen) {
    kept = trained;
  } else if (result.trainedTokensKept !== undefined) {
    if (!valid(result.trainedTokensKept) || result.trainedTokensKept > Math.min(trained, maxSeqLen)) {
      return 'could not tokenize this example (the token counter returned inconsistent counts)';
    }
    kept = result.trainedTokensKept;
  } else {
    // Assume the cut-off tail was trained tokens first (exact when the example ends with its reply).
    kept = Math.max(0, trained - (tokens - maxSeqLen));
  }
  return { tokens, trained, kept };
}

/** Build a report from parsed lines (e.g. `parseJsonl(...)`, or an array of ParsedLine). */
export async function buildDatasetReport(
  lines: AsyncIterable<ParsedLine> | Iterable<ParsedLine>,
  options: DatasetReportOptions = {},
): Promise<DatasetReport> {
  const builder = new DatasetReportBuilder(options);
  for await (const parsed of lines) builder.add(parsed);
  return builder.finish();
}

/** Parse and report in one go: the usual entry point for an uploaded file. */
export function validateJsonl(source: JsonlSource, options: DatasetReportOptions & ParseJsonlOptions = {}): Promise<DatasetReport> {
  return buildDatasetReport(parseJsonl(source, options), options);
}
