// JSONL files on disk -> validated, tokenized examples (eval, train).

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

import { formatIssue, validateJsonl, type DatasetReportOptions } from '../data/datasetReport';
import type { DatasetReport } from '../data/datasetTypes';
import type { PackedExamples } from '../data/packedExamples';
import { packingPass } from '../data/packingPass';
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
  /** The valid examples tokenized (cut to maxSeqLen when given), in file order, packed. */
  examples: PackedExamples;
  /** The template's end-of-turn marker (null: none, or no chat examples). */
  endOfTurn: string | null;
}

/**
 * Validates and tokenizes a data file in one pass over it, keeping only the packed tokens of the
 * valid examples; any error in it is fatal (listed, with a pointer to `whittle validate` for the
 * whole report), as a job on half a file would be a surprise.
 */
export async function loadDataset(
  path: string,
  tools: TextTools,
  maxSeqLen: number | undefined,
  what: string,
  options: { tooFewIsError?: boolean } = {},
): Promise<LoadedDataset> {
  const packing = packingPass(tools.tokenizer, tools.template, maxSeqLen);
  const report = await reportFile(path, { onValidExample: packing.onValidExample, tooFewIsError: options.tooFewIsError === true, ...(maxSeqLen === undefined ? {} : { maxSeqLen }) });
  if (!report.ok) {
    const shown = report.errors.slice(0, 5).map((e) => `  ${formatIssue(e)}`);
    const more = report.errorCount > shown.length ? [`  ... ${report.errorCount - shown.length} more`] : [];
    const few = report.warnings.find((w) => w.code === 'too_few_examples');
    const why =
      report.errorCount > 0
        ? `has ${report.errorCount} error${report.errorCount === 1 ? '' : 's'}`
        : report.examples === 0
          ? 'has no examples'
          : `has ${few?.message ?? 'too few examples'} (--allow-small to train anyway)`;
    throw new CliError([`${what} ${path} ${why}:`, ...shown, ...more, `(whittle validate ${path} shows the full report)`].join('\n'));
  }
  const { examples, endOfTurn, failure } = packing.result(report.format);
  if (failure !== null) throw new CliError(`${what} ${path} ${failure}`);
  return { report, examples, endOfTurn };
}
