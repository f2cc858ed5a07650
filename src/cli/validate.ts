import { createTokenCounter } from '../data/examples';
import { formatIssue, type DatasetReportOptions } from '../data/datasetReport';
import { FORMAT_LABELS, type DatasetReport } from '../data/datasetTypes';
import { autoNumberOption, flag, numberOption, parseCommand, stringOption, type CommandSpec } from './args';
import { reportFile } from './dataset';
import type { CliContext } from './io';
import { readModelFolder, textTools } from './model';

export const validateSpec: CommandSpec = {
  name: 'validate',
  positionals: ['file.jsonl'],
  summary: 'Check a training file (chat, prompt/completion or text JSONL): line-numbered errors, warnings, token statistics.',
  options: {
    model: { type: 'string', arg: 'DIR', help: "count tokens with this model's tokenizer and chat template" },
    'max-seq-len': { type: 'string', arg: 'N', help: 'warn about examples longer than N tokens (needs --model)' },
    epochs: { type: 'string', arg: 'N|auto', help: 'epochs for the billed-token count', default: 'auto' },
    'max-errors': { type: 'string', arg: 'N', help: 'errors listed at most', default: '100' },
    json: { type: 'boolean', help: 'print the report object as JSON' },
  },
  notes: ['Exit code 1 when the file has errors (or no valid example).'],
};

export async function runValidate(ctx: CliContext, argv: readonly string[]): Promise<number> {
  const args = parseCommand(validateSpec, argv, ctx.io.stdout);
  if (!args) return 0;
  const { values } = args;
  const file = args.positionals[0]!;
  const maxSeqLen = stringOption(values, 'max-seq-len') === undefined ? undefined : numberOption(values, 'max-seq-len', 0, { integer: true, min: 2 });
  const epochs = autoNumberOption(values, 'epochs', { integer: true, min: 1 });
  const options: DatasetReportOptions = { epochs, maxListedErrors: numberOption(values, 'max-errors', 100, { integer: true, min: 1 }) };
  if (maxSeqLen !== undefined) options.maxSeqLen = maxSeqLen;
  const modelDir = stringOption(values, 'model');
  if (modelDir !== undefined) {
    const folder = await readModelFolder(modelDir);
    const tools = textTools(folder.files, modelDir);
    options.countTokens = createTokenCounter(tools.tokenizer, tools.template);
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
  ctx.print(r.ok ? 'OK' : 'NOT OK: fix the errors above');
}
