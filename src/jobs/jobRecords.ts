/**
 * Job records as the runner changes them: each change is written to the store first and then
 * reported (the worker forwards reports to the page), so a page only ever shows what was saved.
 */
import type { StepMetrics } from '../train/metrics';
import type { JobEvent, JobRecord, NewJobEvent } from './job';
import type { JobStore } from './store';

/** What the runner reports as it goes (the worker forwards these to the page). */
export type RunnerUpdate =
  | { type: 'job'; job: JobRecord }
  | { type: 'metrics'; jobId: string; rows: StepMetrics[] }
  | { type: 'log'; jobId: string; events: JobEvent[] }
  | { type: 'device-lost'; message: string };

export class JobRunnerError extends Error {
  override name = 'JobRunnerError';
}

export function errorName(e: unknown): string {
  return e instanceof Error ? e.name : 'Error';
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class JobRecords {
  constructor(
    readonly store: JobStore,
    readonly now: () => number,
    private readonly onUpdate?: (update: RunnerUpdate) => void,
  ) {}

  emit(update: RunnerUpdate): void {
    try {
      this.onUpdate?.(update);
    } catch (e) {
      console.error('JobRunner onUpdate failed', e);
    }
  }

  async get(id: string): Promise<JobRecord> {
    const job = await this.store.getJob(id);
    if (!job) throw new JobRunnerError(`no job ${id}`);
    return job;
  }

  async update(id: string, fn: (job: JobRecord) => JobRecord): Promise<JobRecord> {
    const job = await this.store.updateJob(id, fn);
    this.emit({ type: 'job', job });
    return job;
  }

  async log(id: string, events: readonly NewJobEvent[]): Promise<void> {
    const stored = await this.store.appendEvents(
      id,
      events.map((e) => ({ ...e, time: e.time ?? this.now() })),
    );
    this.emit({ type: 'log', jobId: id, events: stored });
  }
}
