/**
 * Per-step training metrics and the results file: OpenAI's result-file columns first
 * (step, train_loss, train_accuracy, valid_loss, valid_mean_token_accuracy) so tools written for
 * those files read ours, then Whittle's extras. Empty cells where a value was not measured at
 * that step (validation runs only every few steps), as in OpenAI's files.
 */

export interface StepMetrics {
  /** 1-based optimizer step. */
  step: number;
  /** 1-based epoch the step belongs to. */
  epoch: number;
  /** Token-weighted mean loss over the step's trained tokens (all its micro-batches). */
  trainLoss: number;
  /** Share of the step's trained tokens whose argmax prediction is the target. */
  trainAccuracy: number;
  /** Trained tokens of the step. */
  trainTokens: number;
  learningRate: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** All tokens of the step's examples (prompt included, padding not) per second of wall time. */
  tokensPerSecond: number;
  /** Wall time of the job so far, across pauses and resumes (time spent paused excluded). */
  elapsedMs: number;
  /** Estimated time to the end of the job; null before the rate is known. */
  etaMs: number | null;
  /** GPU bytes in live buffers after the step (gpu.memory().liveBytes). */
  gpuBytes: number;
  /** Present (true) when the gradient was not finite and the update was skipped. */
  skipped?: boolean;
  /** Loss / token accuracy of one validation batch, on steps that ran one. */
  validLoss?: number;
  validAccuracy?: number;
  /** Loss / token accuracy over the whole validation set, on the last step of an epoch. */
  fullValidLoss?: number;
  fullValidAccuracy?: number;
}

/** What a NaN validation loss means: no validation example kept a trained token after truncation. */
export const NO_VALIDATION_TOKENS = 'no trained tokens in the validation file at this length';
/** What a step with no trained token means (its loss and accuracy are not measurements). */
export const NO_STEP_TOKENS = 'no trained tokens in this step';

/** The step's train loss and accuracy, or null when it trained no token (not a loss of 0). */
export function trainedStep(m: Pick<StepMetrics, 'trainLoss' | 'trainAccuracy' | 'trainTokens'>): { loss: number; accuracy: number } | null {
  return m.trainTokens > 0 && Number.isFinite(m.trainLoss) ? { loss: m.trainLoss, accuracy: m.trainAccuracy } : null;
}

/** A validation loss for a log line: 4 decimals, or why there is none. */
export function formatValidationLoss(loss: number): string {
  return Number.isFinite(loss) ? loss.toFixed(4) : `none (${NO_VALIDATION_TOKENS})`;
}

/** The result-file columns, in order, and the metric each comes from. */
export const RESULT_COLUMNS = [
  ['step', 'step'],
  ['train_loss', 'trainLoss'],
  ['train_accuracy', 'trainAccuracy'],
  ['valid_loss', 'validLoss'],
  ['valid_mean_token_accuracy', 'validAccuracy'],
  ['learning_rate', 'learningRate'],
  ['grad_norm', 'gradNorm'],
  ['tokens_per_second', 'tokensPerSecond'],
  ['full_valid_loss', 'fullValidLoss'],
  ['full_valid_mean_token_accuracy', 'fullValidAccuracy'],
  ['epoch', 'epoch'],
  ['elapsed_ms', 'elapsedMs'],
] as const satisfies readonly (readonly [string, keyof StepMetrics])[];

export type ResultColumn = (typeof RESULT_COLUMNS)[number][0];

export function resultsCsvHeader(): string {
  return RESULT_COLUMNS.map(([column]) => column).join(',');
}

function cell(v: number | null | undefined): string {
  if (v === undefined || v === null) return '';
  // Shortest round-trip form; NaN and Infinity are written as such so a diverged step shows.
  return String(v);
}

export function resultsCsvRow(m: StepMetrics): string {
  return RESULT_COLUMNS.map(([, key]) => cell(m[key])).join(',');
}

/** A whole results file (header, one row per step, trailing newline). */
export function resultsCsv(rows: readonly StepMetrics[]): string {
  return [resultsCsvHeader(), ...rows.map(resultsCsvRow)].join('\n') + '\n';
}

/** Streams a results file: the header on the first row, then one line per step. */
export class ResultsCsvWriter {
  private started = false;
  constructor(private readonly write: (text: string) => void) {}

  add(m: StepMetrics): void {
    if (!this.started) {
      this.write(resultsCsvHeader() + '\n');
      this.started = true;
    }
    this.write(resultsCsvRow(m) + '\n');
  }
}

/** Reads a results file back into rows keyed by column name; empty cells become null. */
export function parseResultsCsv(text: string): Record<string, number | null>[] {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines.length === 0) return [];
  const header = lines[0]!.split(',');
  return lines.slice(1).map((line, i) => {
    const cells = line.split(',');
    if (cells.length !== header.length) throw new Error(`results file line ${i + 2}: ${cells.length} cells for ${header.length} columns`);
    const row: Record<string, number | null> = {};
    header.forEach((column, j) => {
      const c = cells[j]!;
      row[column] = c === '' ? null : Number(c);
    });
    return row;
  });
}
