/**
 * Files coming in: JSONL validated (with token statistics when a model is named) and stored
 * with the format and example count the report found; stored files read back as examples.
 */
import { createTokenCounter } from '../data/examples';
import type { ChatExample, DatasetReport } from '../data/datasetTypes';
import { validateJsonl, type DatasetReportOptions } from '../data/datasetReport';
import { AUTO_MAX_SEQ_LEN } from '../train/hyperparameters';
import { newFileId, type FileRecord, type ModelSource } from './job';
import { JobRunnerError } from './jobRecords';
import type { ModelPool } from './modelPool';
import type { JobStore } from './store';

export interface ValidateFileOptions {
  model?: ModelSource;
  maxSeqLen?: number;
  epochs?: number | 'auto';
}

/** Why a report failed, for a job's status: the first errors with their line numbers. */
export function invalidFileDetail(report: DatasetReport): string {
  const shown = report.errors.slice(0, 3).map((e) => `line ${e.line}: ${e.message}`);
  const more = report.errorCount > shown.length ? ` (and ${report.errorCount - shown.length} more)` : '';
  return report.examples === 0 && report.errorCount === 0 ? 'it has no examples' : `${report.errorCount} error${report.errorCount === 1 ? '' : 's'}: ${shown.join('; ')}${more}`;
}

export class FileIntake {
  constructor(
    private readonly store: JobStore,
    private readonly pool: ModelPool,
    private readonly now: () => number,
  ) {}

  /** The validation report of a JSONL file, with token statistics when a model is given. */
  async validateFile(file: Blob, options: ValidateFileOptions = {}): Promise<DatasetReport> {
    const reportOptions: DatasetReportOptions = { maxSeqLen: options.maxSeqLen, epochs: options.epochs };
    if (options.model) {
      const tm = await this.pool.textModel(options.model);
      reportOptions.countTokens = createTokenCounter(tm.tokenizer, tm.template);
      reportOptions.maxSeqLen ??= Math.min(tm.config.maxPositions, AUTO_MAX_SEQ_LEN);
    }
    return validateJsonl(file.stream(), { ...reportOptions, totalBytes: file.size });
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

  private async fileBlob(fileId: string): Promise<Blob> {
    const blob = await this.store.readFile(fileId);
    if (!blob) throw new JobRunnerError(`file ${fileId} is not in the store (deleted, or browser storage cleared?)`);
    return blob;
  }
}
