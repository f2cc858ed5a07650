import { describe, expect, it } from 'vitest';

import { smoothedEtaMs } from '../../src/jobs/eta';

/** Rows of a job whose steps take `ms[i]` each (elapsedMs is cumulative training time). */
function rows(ms: number[]) {
  let t = 0;
  return ms.map((d, i) => ({ step: i + 1, elapsedMs: (t += d) }));
}

describe('smoothed ETA', () => {
  it('is the median recent step time times the steps left', () => {
    expect(smoothedEtaMs(rows([1000, 1000, 1000]), 10)).toBe(7 * 1000);
    expect(smoothedEtaMs(rows([1000, 3000, 1000, 1000]), 10)).toBe(6 * 1000);
    expect(smoothedEtaMs(rows([1000]), 10)).toBeNull();
    expect(smoothedEtaMs(rows([1000, 1000]), null)).toBeNull();
    expect(smoothedEtaMs(rows([1000, 1000]), 2)).toBe(0);
  });

  it('does not jump after a resume whose first step is slow (pipelines compile, the model loads)', () => {
    // 30 steps at 1 s, a resume, then a first step of 9 s and normal ones: the trainer's own
    // estimate after the resume (time since restart / steps since restart) would be 9 s a step.
    const before = rows([...Array<number>(30).fill(1000), 9000]);
    const eta = smoothedEtaMs(before, 100)!;
    expect(eta).toBe(69 * 1000);
    const trainerEstimate = 9000 * 69;
    expect(trainerEstimate / eta).toBeGreaterThan(8);
    // Only the last ETA_WINDOW steps count, so a lasting change of speed shows within 20 steps.
    const slower = rows([...Array<number>(30).fill(1000), ...Array<number>(11).fill(2000)]);
    expect(smoothedEtaMs(slower, 100)).toBe(59 * 2000);
  });
});
