// The UI's one connection to the engine: a TrainingClient over the training worker, and a small
// store of what the pages show (jobs, their metrics and logs), kept current by the worker's
// events. No GPU code and no WGSL on this side.
import { createContext, useContext, useEffect, useMemo, useState, useSyncExternalStore, type ReactNode } from 'react';
import type { StepMetrics } from '../train/metrics';
import { TrainingClient } from '../worker/client';
import type { JobEvent, JobRecord, TrainingEvent, TrainingWorkerInfo } from '../worker/trainingProtocol';
import { savedKernelChoice } from './kernelPlan';

export type EngineStatus = { state: 'starting' } | { state: 'ready'; info: TrainingWorkerInfo } | { state: 'failed'; message: string };

export interface JobTrace {
  metrics: StepMetrics[];
  events: JobEvent[];
}

export interface EngineSnapshot {
  status: EngineStatus;
  /** Newest first; null until the first list arrives. */
  jobs: JobRecord[] | null;
  /** Metrics and log of the jobs a page asked for (loadJob). */
  traces: Readonly<Record<string, JobTrace>>;
  /** The last device loss, shown until the next one. */
  deviceLost: string | null;
}

function byNewest(a: JobRecord, b: JobRecord): number {
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1);
}

/** Merges new metrics rows: a resumed job redoes steps after its checkpoint, so later rows replace. */
export function mergeMetrics(old: readonly StepMetrics[], rows: readonly StepMetrics[]): StepMetrics[] {
  if (rows.length === 0) return old as StepMetrics[];
  const first = rows[0]!.step;
  const last = old[old.length - 1];
  if (!last || last.step < first) return [...old, ...rows];
  const keep = old.filter((r) => r.step < first);
  const byStep = new Map<number, StepMetrics>();
  for (const r of [...keep, ...rows]) byStep.set(r.step, r);
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** Jobs, traces and worker status, as an external store for useSyncExternalStore. */
/** Where models download from: a Hub mirror saved in this browser (localStorage HUB_ENDPOINT_KEY), else huggingface.co. */
export const HUB_ENDPOINT_KEY = 'whittle.hubEndpoint';
function hubEndpoint(): string | null {
  try {
    return globalThis.localStorage?.getItem(HUB_ENDPOINT_KEY) ?? null;
  } catch {
    return null;
  }
}

export class EngineStore {
  private snap: EngineSnapshot = { status: { state: 'starting' }, jobs: null, traces: {}, deviceLost: null };
  private readonly listeners = new Set<() => void>();
  private readonly loading = new Map<string, Promise<void>>();

  constructor(readonly client: TrainingClient) {}

  get snapshot(): EngineSnapshot {
    return this.snap;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): EngineSnapshot => this.snap;

  private set(patch: Partial<EngineSnapshot>): void {
    this.snap = { ...this.snap, ...patch };
    for (const l of this.listeners) l();
  }

  async start(): Promise<void> {
    try {
      const info = await this.client.init({ hubEndpoint: hubEndpoint(), kernels: savedKernelChoice() });
      this.set({ status: { state: 'ready', info } });
      await this.refreshJobs();
    } catch (e) {
      this.set({ status: { state: 'failed', message: e instanceof Error ? e.message : String(e) } });
    }
  }

  async refreshJobs(): Promise<void> {
    const jobs = await this.client.listJobs();
    this.set({ jobs: jobs.sort(byNewest) });
  }

  upsertJob(job: JobRecord): void {
    const jobs = (this.snap.jobs ?? []).filter((j) => j.id !== job.id);
    jobs.push(job);
    this.set({ jobs: jobs.sort(byNewest) });
  }

  removeJob(id: string): void {
    const traces = { ...this.snap.traces };
    delete traces[id];
    this.set({ jobs: (this.snap.jobs ?? []).filter((j) => j.id !== id), traces });
  }

  /** Fetches a job's metrics and log once; events keep them current afterwards. */
  loadJob(id: string): Promise<void> {
    if (this.snap.traces[id]) return Promise.resolve();
    let p = this.loading.get(id);
    if (!p) {
      p = this.client
        .getJob(id)
        .then((d) => {
          // Rows or lines that arrived while the request was in flight are kept.
          const pending = this.snap.traces[id];
          const metrics = pending ? mergeMetrics(d.metrics, pending.metrics) : d.metrics;
          const lastSeq = d.events.at(-1)?.seq ?? 0;
          const events = pending ? [...d.events, ...pending.events.filter((e) => e.seq > lastSeq)] : d.events;
          this.set({ traces: { ...this.snap.traces, [id]: { metrics, events } } });
          this.upsertJob(d.job);
        })
        .finally(() => this.loading.delete(id));
      this.loading.set(id, p);
    }
    return p;
  }

  handle = (e: TrainingEvent): void => {
    switch (e.type) {
      case 'status':
        this.upsertJob(e.job);
        return;
      case 'metrics': {
        const t = this.snap.traces[e.jobId];
        if (!t && !this.loading.has(e.jobId)) return; // nobody is looking at this job's curves
        const cur = t ?? { metrics: [], events: [] };
        this.set({ traces: { ...this.snap.traces, [e.jobId]: { ...cur, metrics: mergeMetrics(cur.metrics, e.rows) } } });
        return;
      }
      case 'log': {
        const t = this.snap.traces[e.jobId];
        if (!t && !this.loading.has(e.jobId)) return;
        const cur = t ?? { metrics: [], events: [] };
        const lastSeq = cur.events.at(-1)?.seq ?? 0;
        this.set({ traces: { ...this.snap.traces, [e.jobId]: { ...cur, events: [...cur.events, ...e.events.filter((x) => x.seq > lastSeq)] } } });
        return;
      }
      case 'device-lost':
        this.set({ deviceLost: e.message });
        return;
      case 'error':
        if (e.requestId === null && e.error.name === 'WorkerCrashed') this.set({ status: { state: 'failed', message: e.error.message } });
        return;
      default:
        return;
    }
  };
}

/** The store the hooks read; tests provide their own (over a fake client) through it. */
export const EngineContext = createContext<EngineStore | null>(null);

let engine: { store: EngineStore } | { error: string } | null = null;

/** The page's one training worker and its store, started on first use and kept for the page's life. */
function pageEngine(): { store: EngineStore } | { error: string } {
  if (engine) return engine;
  try {
    const client = TrainingClient.createWorker();
    const store = new EngineStore(client);
    client.subscribe(store.handle);
    void store.start();
    engine = { store };
  } catch (e) {
    engine = { error: errorText(e) };
  }
  return engine;
}

export function EngineProvider({ children }: { children: ReactNode }) {
  const [state] = useState(pageEngine);
  if ('error' in state) {
    return (
      <div className="callout danger" role="alert">
        <strong>The training worker could not start.</strong> {state.error}
      </div>
    );
  }
  return <EngineContext.Provider value={state.store}>{children}</EngineContext.Provider>;
}

export function useEngineStore(): EngineStore {
  const s = useContext(EngineContext);
  if (!s) throw new Error('useEngineStore outside EngineProvider');
  return s;
}

export function useEngine(): EngineSnapshot {
  const s = useEngineStore();
  return useSyncExternalStore(s.subscribe, s.getSnapshot, s.getSnapshot);
}

export function useClient(): TrainingClient {
  return useEngineStore().client;
}

/** One job with its trace, loading the trace on first use. */
export function useJob(id: string | null): { job: JobRecord | null; trace: JobTrace | null; missing: boolean } {
  const store = useEngineStore();
  const snap = useEngine();
  useEffect(() => {
    if (id && snap.status.state === 'ready') void store.loadJob(id).catch(() => {});
  }, [id, store, snap.status.state]);
  return useMemo(() => {
    const job = id ? (snap.jobs?.find((j) => j.id === id) ?? null) : null;
    return { job, trace: id ? (snap.traces[id] ?? null) : null, missing: id !== null && snap.jobs !== null && job === null };
  }, [id, snap.jobs, snap.traces]);
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
