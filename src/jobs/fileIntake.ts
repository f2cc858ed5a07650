/**
 * Files coming in: JSONL validated (with token statistics when a model is named) and stored
 * with the format and example count the report found; stored files read back as examples.
 */
import type { ChatTemplate } from '../data/chatTemplate';
import { createTokenCounter } from '../data/examples';
import type { ChatExample, DatasetReport } from '../data/datasetTypes';
import { validateJsonl, type DatasetReportOptions } from '../data/datasetReport';
import type { PackedExamples } from '../data/packedExamples';
import { packingPass } from '../data/packingPass';
import type { TextTokenizer } from '../data/tokenizer';
import { AUTO_MAX_SEQ_LEN } from '../train/hyperparameters';
import { newFileId, type FileRecord, type ModelSource } from './job';
import { JobRunnerError } from './jobRecords';
import type { ModelPool } from './modelPool';
import type { JobStore } from './store';

export interface ValidateFileOptions {
  model?: ModelSource;
  maxSeqLen?: number;
  epochs?: number | 'auto';
  /** Fewer than 10 examples is an error (training files), not a warning. */
  tooFewIsError?: boolean;
  /** Bytes of the file read so far, for a progress bar. */
  onProgress?: (bytesRead: number) => void;
}

/** Why a report failed, for a job's status: the first errors with their line numbers. */
export function invalidFileDetail(report: DatasetReport): string {
  const shown = report.errors.slice(0, 3).map((e) => `line ${e.line}: ${e.message}`);
  const more = report.errorCount > shown.length ? ` (and ${report.errorCount - shown.length} more)` : '';
  if (report.errorCount > 0) return `${report.errorCount} error${report.errorCount === 1 ? '' : 's'}: ${shown.join('; ')}${more}`;
  return report.examples === 0 ? 'it has no examples' : `it has only ${report.examples} examples; at least 10 are needed`;
}

export class FileIntake {
  constructor(
    private readonly store: JobStore,
    private readonly pool: ModelPool,
    private readonly now: () => number,
  ) {}

  /** The validation report of a JSONL file, with token statistics when a model is given. */
  async validateFile(file: Blob, options: ValidateFileOptions = {}): Promise<DatasetReport> {
    const reportOptions: DatasetReportOptions = { maxSeqLen: options.maxSeqLen, epochs: options.epochs, tooFewIsError: options.tooFewIsError };
    if (options.model) {
      const tm = await this.pool.textModel(options.model);
      reportOptions.countTokens = createTokenCounter(tm.tokenizer, tm.template);
      reportOptions.maxSeqLen ??= Math.min(tm.config.maxPositions, AUTO_MAX_SEQ_LEN);
    }
    return validateJsonl(file.stream(), { ...reportOptions, totalBytes: file.size, onProgress: options.onProgress });
  }

  /** Stores a JSONL file (validated, so its record carries format and example count). */
  async uploadFile(name: string, file: Blob, options: { model?: ModelSource } = {}): Promise<{ file: FileRecord; report: DatasetReport }> {
    const report = await this.validateFile(file, options);
    const record: FileRecord = { id: newFileId(), name, bytes: file.size, createdAt: this.now(), purpose: 'fine-tune', format: report.format, examples: report.examples };
    await this.store.putFile(record, file);
    return { file: record, report };
  }

  /** The report of a stored file. */
  async validateStored(fileId: string, options: DatasetReportOptions): Promise<DatasetReport> {
    const blob = await this.fileBlob(fileId);
    return validateJsonl(blob.stream(), { ...options, totalBytes: blob.size });
  }

  /** A stored file's examples; it must still validate. */
  async examples(fileId: string): Promise<ChatExample[]> {
    const report = await this.validateStored(fileId, { keepExamples: true });
    if (!report.ok) throw new JobRunnerError(`file ${fileId} no longer validates (${report.errorCount} errors)`);
    return report.validExamples!.map((l) => l.example);
  }

  /**
   * A stored file's examples tokenized (cut to maxSeqLen) as the file streams, packed; it must
   * still validate. No example object is kept, so a large file trains in flat memory.
   */
  async packedExamples(fileId: string, tokenizer: TextTokenizer, template: ChatTemplate | null, maxSeqLen: number): Promise<PackedExamples> {
    const packing = packingPass(tokenizer, template, maxSeqLen);
    const report = await this.validateStored(fileId, { onValidExample: packing.onValidExample });
    if (!report.ok) throw new JobRunnerError(`file ${fileId} no longer validates (${report.errorCount} errors)`);
    const { examples, failure } = packing.result(report.format);
    if (failure !== null) throw new JobRunnerError(`file ${fileId}: ${failure}`);
    return examples;
  }

  async fileBlob(fileId: string): Promise<Blob> {
    const blob = await this.store.readFile(fileId);
    if (!blob) throw new JobRunnerError(`file ${fileId} is not in the store (deleted, or browser storage cleared?)`);
    return blob;
  }
}
