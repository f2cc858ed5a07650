// How the benchmark suites time GPU work: one recording, measured by timestamp queries when the
// adapter has them, else by wall clock around submit + sync.
import type { Gpu, Recorder } from '../gpu';

/** CPU milliseconds this process has used so far, all threads (Node); undefined in a browser. */
export function processCpuMs(): number | undefined {
  if (typeof process === 'undefined' || typeof process.cpuUsage !== 'function') return undefined;
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Milliseconds of one recording; `label` names its command encoder in GPU debuggers. */
export async function timeRecording(gpu: Gpu, record: (rec: Recorder) => void, label = 'bench'): Promise<number> {
  const rec = gpu.recorder(label);
  record(rec);
  if (gpu.hasTimestamps) return (await rec.submitTimed()).reduce((s, t) => s + t.ms, 0);
  const t0 = performance.now();
  rec.submit();
  await gpu.sync();
  return performance.now() - t0;
}
