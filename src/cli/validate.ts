import { createTokenCounter } from '../data/examples';
import { formatIssue, MAX_UNTRAINED_SHARE, untrainedExamples, type DatasetReportOptions } from '../data/datasetReport';
import { FORMAT_LABELS, type DatasetReport } from '../data/datasetTypes';
import { autoNumberOption, flag, numberOption, stringOption, type CommandSpec, type ParsedCommand } from './args';
import { AUTO_MAX_SEQ_LEN } from '../train/hyperparameters';
import { reportFile } from './dataset';
import { CliError, type CliContext } from './io';
import { readModelFolder, textTools } from './model';

export const validateSpec: CommandSpec = {
  name: 'validate',
  positionals: ['file.jsonl'],
  summary: 'Check a training file (chat, prompt/completion or text JSONL): line-numbered errors, warnings, token statistics.',
  options: {
    model: { type: 'string', arg: 'DIR', help: "count tokens with this model's tokenizer and chat template" },
    'max-seq-len': { type: 'string', arg: 'N', help: "warn about examples longer than N tokens (needs --model; default: the model's context, at most 1024)" },
    epochs: { type: 'string', arg: 'N|auto', help: 'epochs for the billed-token count', default: 'auto' },
    'max-errors': { type: 'string', arg: 'N', help: 'errors listed at most', default: '100' },
    json: { type: 'boolean', help: 'print the report object as JSON' },
    'allow-small': { type: 'boolean', help: 'accept fewer than 10 examples (OpenAI refuses them)' },
  },
  notes: ['Exit code 1 when the file has errors, no valid example, or fewer than 10 without --allow-small.'],
};

export async function runValidate(ctx: CliContext, { values, positionals }: ParsedCommand): Promise<number> {
  const file = positionals[0]!;
  const maxSeqLen = stringOption(values, 'max-seq-len') === undefined ? undefined : numberOption(values, 'max-seq-len', 0, { integer: true, min: 2 });
  const epochs = autoNumberOption(values, 'epochs', { integer: true, min: 1 });
  const options: DatasetReportOptions = { epochs, maxListedErrors: numberOption(values, 'max-errors', 100, { integer: true, min: 1 }), tooFewIsError: !flag(values, 'allow-small') };
  if (maxSeqLen !== undefined) options.maxSeqLen = maxSeqLen;
  const modelDir = stringOption(values, 'model');
  if (modelDir !== undefined) {
    const folder = await readModelFolder(modelDir);
    if (maxSeqLen !== undefined && maxSeqLen > folder.config.maxPositions) {
      throw new CliError(`--max-seq-len ${maxSeqLen} exceeds the model's context of ${folder.config.maxPositions} positions`);
    }
    const tools = textTools(folder.files, modelDir);
    options.countTokens = createTokenCounter(tools.tokenizer, tools.template);
    // Examples past the model's context are cut by every job: warned about without being asked.
    options.maxSeqLen ??= Math.min(folder.config.maxPositions, AUTO_MAX_SEQ_LEN);
  }
  const report = await reportFile(file, options);
  if (flag(values, 'json')) ctx.print(JSON.stringify(report));
  else printReport(ctx, file, report, modelDir !== undefined);
  return report.ok ? 0 : 1;
}

function printReport(ctx: CliContext, file: string, r: DatasetReport, counted: boolean): void {
  const detected = r.formatSource === 'default' ? 'no line says; assumed' : `from line ${r.formatFirstLine}`;
  ctx.print(`${file}: ${r.examples} valid example${r.examples === 1 ? '' : 's'} in ${r.nonBlankLines} non-blank lines, format ${FORMAT_LABELS[r.format]} (${detected})`);
  if (r.errorCount > 0) {
    ctx.print();
    ctx.print(`${r.errorCount} error${r.errorCount === 1 ? '' : 's'} on ${r.invalidLines} line${r.invalidLines === 1 ? '' : 's'}:`);
    for (const e of r.errors) ctx.print(`  ${formatIssue(e)}`);
    if (r.errorsTruncated) ctx.print(`  ... ${r.errorCount - r.errors.length} more (--max-errors to list more)`);
    const counts = Object.entries(r.errorCounts).map(([code, n]) => `${code} ${n}`).join(', ');
    ctx.print(`  by kind: ${counts}`);
  }
  if (r.warnings.length > 0) {
    ctx.print();
    ctx.print('warnings:');
    for (const w of r.warnings) ctx.print(`  ${w.message}`);
  }
  ctx.print();
  if (r.stats) {
    const s = r.stats;
    ctx.print(`tokens per example: min ${s.min}, mean ${s.mean.toFixed(1)}, median ${s.median}, p95 ${s.p95}, max ${s.max}`);
    ctx.print(`tokens: ${s.totalTokens} in all, ${s.trainedTokens} trained${r.maxSeqLen !== null ? `, ${s.trainedTokensAfterTruncation} trained after truncation to ${r.maxSeqLen}` : ''}`);
    ctx.print(`epochs: ${r.epochs}${r.epochsAuto ? ' (auto)' : ''}; trained tokens for the job: ${r.billedTokens}`);
  } else {
    ctx.print(`epochs: ${r.epochs}${r.epochsAuto ? ' (auto)' : ''}${counted ? '' : ' (pass --model DIR for token statistics)'}`);
  }
  const untrained = untrainedExamples(r);
  if (untrained.share > MAX_UNTRAINED_SHARE) {
    ctx.print(`${untrained.count} of ${r.examples} examples train nothing at ${r.maxSeqLen} tokens: whittle train refuses this file unless --allow-untrained`);
  }
  ctx.print(r.ok ? 'OK' : `NOT OK: ${notOkReason(r)}`);
}

/** Why a report is not OK, in one line: its errors, or the file-level warning that decided it. */
export function notOkReason(r: DatasetReport): string {
  if (r.errorCount > 0) return `fix the ${r.errorCount === 1 ? 'error' : 'errors'} above`;
  if (r.examples === 0) return r.nonBlankLines === 0 ? 'the file has no examples' : 'no valid examples';
  const few = r.warnings.find((w) => w.code === 'too_few_examples');
  return few ? `${few.message} (--allow-small to go ahead anyway)` : 'see the warnings above';
}
