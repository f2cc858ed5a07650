// A real EngineStore over a fake client that lists the given jobs and answers getJob with their
// metrics; any other call fails loudly, so a page that needs more says which.
import type { JobRecord } from '../../src/jobs/job';
import type { StepMetrics } from '../../src/train/metrics';
import { EngineStore } from '../../src/ui/engine';
import type { TrainingClient } from '../../src/worker/client';

export async function storeOverJobs(jobs: JobRecord[], metricsOf: (id: string) => StepMetrics[] = () => []): Promise<EngineStore> {
  const client = new Proxy(
    {
      init: () => Promise.resolve({ gpu: null, gpuError: null, storage: 'memory', recovered: [], runsJobs: true }),
      listJobs: () => Promise.resolve(jobs),
      listFiles: () => Promise.resolve([]),
      getJob: (id: string) => Promise.resolve({ job: jobs.find((j) => j.id === id)!, events: [], metrics: metricsOf(id) }),
    },
    { get: (t, k) => (k in t ? t[k as keyof typeof t] : () => Promise.reject(new Error(`fake client: ${String(k)} is not faked`))) },
  ) as unknown as TrainingClient;
  const store = new EngineStore(client);
  await store.start();
  return store;
}
