// Tokenizing a data file's valid examples as the validation pass streams them, straight into
// packed storage (the CLI's train/eval and the app's training run share it): no example object
// outlives its line.

import { detectEndOfTurn, type ChatTemplate } from './chatTemplate';
import type { ChatExample, DatasetFormat } from './datasetTypes';
import { tokenizeExample } from './examples';
import { PackedExamples } from './packedExamples';
import type { TextTokenizer } from './tokenizer';

export interface PackedFormat {
  /** The valid examples of that format, tokenized (cut to maxSeqLen when given), in file order. */
  examples: PackedExamples;
  /** The template's end-of-turn marker (null: none, or no chat examples). */
  endOfTurn: string | null;
  /** `line N: why`, for the first example that could not be tokenized (null: none). */
  failure: string | null;
}

export interface PackingPass {
  /** Pass as DatasetReportOptions.onValidExample. */
  onValidExample: (example: ChatExample, line: number, format: DatasetFormat) => void;
  /** What was packed for the format the report settled on. */
  result: (format: DatasetFormat) => PackedFormat;
}

/**
 * A line is valid in one format only, and the file's format is known at the end of the pass, so
 * each format a line could be gets its own store (a valid file fills just one). A format stops
 * collecting at its first example that fails to tokenize.
 */
export function packingPass(tokenizer: TextTokenizer, template: ChatTemplate | null, maxSeqLen: number | undefined): PackingPass {
  const stores = new Map<DatasetFormat, PackedExamples>();
  const failures = new Map<DatasetFormat, string>();
  let endOfTurn: string | null | undefined;
  return {
    onValidExample(example, line, format) {
      if (failures.has(format)) return;
      try {
        if (endOfTurn === undefined && example.kind === 'chat' && template !== null) endOfTurn = detectEndOfTurn(template, tokenizer);
        const options = maxSeqLen === undefined ? { endOfTurn: endOfTurn ?? null } : { maxSeqLen, endOfTurn: endOfTurn ?? null };
        const tokenized = tokenizeExample(example, tokenizer, template, options);
        let store = stores.get(format);
        if (store === undefined) stores.set(format, (store = new PackedExamples({ maxId: tokenizer.vocabSize - 1 })));
        store.push(tokenized);
      } catch (e) {
        failures.set(format, `line ${line}: ${(e as Error).message}`);
      }
    },
    result: (format) => ({ examples: stores.get(format) ?? new PackedExamples(), endOfTurn: endOfTurn ?? null, failure: failures.get(format) ?? null }),
  };
}
