/**
 * The time a running job still needs, smoothed: the median duration of its recent steps times
 * the steps left. The trainer's own etaMs divides the time since the run (re)started by the
 * steps since then, so right after a resume one slow first step (pipelines compiling, the model
 * loading) makes it jump; the median over steps from before and after the resume does not.
 */
import type { StepMetrics } from '../train/metrics';

/** Steps whose durations the median is taken over. */
export const ETA_WINDOW = 20;

export function smoothedEtaMs(rows: readonly Pick<StepMetrics, 'step' | 'elapsedMs'>[], totalSteps: number | null, window = ETA_WINDOW): number | null {
  if (!totalSteps || rows.length < 2) return null;
  const last = rows.at(-1)!;
  const durations: number[] = [];
  // elapsedMs counts training time only (restored on resume), so consecutive differences are step times.
  for (let i = rows.length - 1; i > 0 && durations.length < window; i--) {
    const steps = rows[i]!.step - rows[i - 1]!.step;
    const ms = rows[i]!.elapsedMs - rows[i - 1]!.elapsedMs;
    if (steps > 0 && ms >= 0) durations.push(ms / steps);
  }
  if (durations.length === 0) return null;
  durations.sort((a, b) => a - b);
  const mid = durations.length >> 1;
  const median = durations.length % 2 ? durations[mid]! : (durations[mid - 1]! + durations[mid]!) / 2;
  return median * Math.max(0, totalSteps - last.step);
}
