// JSONL files on disk -> validated, tokenized examples (eval, train).

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

import { formatIssue, validateJsonl, type DatasetReportOptions } from '../data/datasetReport';
import { detectEndOfTurn } from '../data/chatTemplate';
import { tokenizeExample, type TokenizedExample } from '../data/examples';
import type { DatasetReport, LineExample } from '../data/datasetTypes';
import { CliError } from './io';
import type { TextTools } from './model';

/** A JSONL file as a byte stream (never read whole), after checking it exists. */
export async function jsonlSource(path: string): Promise<AsyncIterable<Uint8Array>> {
  let isFile = false;
  try {
    isFile = (await stat(path)).isFile();
  } catch {
    throw new CliError(`${path} does not exist`);
  }
  if (!isFile) throw new CliError(`${path} is not a file`);
  return createReadStream(path) as AsyncIterable<Uint8Array>;
}

/** Runs the validation report over a file. */
export async function reportFile(path: string, options: DatasetReportOptions): Promise<DatasetReport> {
  return validateJsonl(await jsonlSource(path), options);
}

export interface LoadedDataset {
  report: DatasetReport;
  /** The valid examples with their lines, in file order. */
  lines: LineExample[];
  /** lines[i] tokenized (truncated to maxSeqLen when given). */
  examples: TokenizedExample[];
  /** The template's end-of-turn marker (null: none, or no chat examples). */
  endOfTurn: string | null;
}

/**
 * Validates and tokenizes a data file; any error in it is fatal (listed, with a pointer to
 * `whittle validate` for the whole report), as a job on half a file would be a surprise.
 */
export async function loadDataset(path: string, tools: TextTools, maxSeqLen: number | undefined, what: string): Promise<LoadedDataset> {
  const report = await reportFile(path, maxSeqLen === undefined ? { keepExamples: true } : { keepExamples: true, maxSeqLen });
  if (!report.ok) {
    const shown = report.errors.slice(0, 5).map((e) => `  ${formatIssue(e)}`);
    const more = report.errorCount > shown.length ? [`  ... ${report.errorCount - shown.length} more`] : [];
    const why = report.errorCount > 0 ? `has ${report.errorCount} error${report.errorCount === 1 ? '' : 's'}` : 'has no examples';
    throw new CliError([`${what} ${path} ${why}:`, ...shown, ...more, `(whittle validate ${path} shows the full report)`].join('\n'));
  }
  const lines = report.validExamples ?? [];
  const { tokenizer, template } = tools;
  const endOfTurn = template !== null && lines.some((l) => l.example.kind === 'chat') ? detectEndOfTurn(template, tokenizer) : null;
  const examples = lines.map(({ line, example }) => {
    try {
      return tokenizeExample(example, tokenizer, template, maxSeqLen === undefined ? { endOfTurn } : { maxSeqLen, endOfTurn });
    } catch (e) {
      throw new CliError(`${what} ${path} line ${line}: ${(e as Error).message}`);
    }
  });
  return { report, lines, examples, endOfTurn };
}
