import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { DIVERGENCE_PATIENCE, DivergenceWatch, divergedAdvice, GRAD_EXPLOSION_FACTOR } from '../../src/train/divergence';

const feed = (watch: DivergenceWatch, losses: number[], grads: number[], lr = 1) =>
  losses.map((trainLoss, i) => watch.observe({ step: i + 1, trainLoss, gradNorm: grads[i] ?? 1, learningRate: lr }));

describe('divergence warnings', () => {
  it('warns once when the loss stays far above its start, suggesting a lower learning rate', () => {
    const warnings = feed(new DivergenceWatch(), [4, 3.5, 7, 8, 9, 10, 12], [], 1);
    expect(warnings.slice(0, 4)).toEqual([null, null, null, null]);
    expect(warnings[4]).toMatch(/training loss has been above 1.5x its starting value for 3 steps \(4.0000 at the start, 9.0000 at step 5\)\. Lower the learning rate \(it is 1.00e\+0; try a tenth of it\)/);
    expect(warnings.slice(5)).toEqual([null, null]);
  });

  it('warns when the gradient norm explodes for several steps', () => {
    const grads = [2, 3, 2e10, 3e10, 5e10];
    const warnings = feed(new DivergenceWatch(), [5, 5, 5, 5, 5], grads, 0.5);
    expect(warnings.slice(0, 4)).toEqual([null, null, null, null]);
    expect(warnings[4]).toMatch(/gradient norm has been over 100x its starting value for 3 steps \(2.00e\+0 at the start, 5.00e\+10 at step 5\)/);
  });

  it('stays quiet for one bad step, for falling losses, and for a small loss rising a little', () => {
    expect(feed(new DivergenceWatch(), [4, 12, 3, 12, 3, 12], [1, 500, 1, 500, 1, 500]).every((w) => w === null)).toBe(true);
    expect(feed(new DivergenceWatch(), [0.01, 0.03, 0.05, 0.04, 0.06], []).every((w) => w === null)).toBe(true);
    // A first step with no trained token (loss 0) is not the baseline.
    expect(feed(new DivergenceWatch(), [0, 4, 4, 4, 4], []).every((w) => w === null)).toBe(true);
  });

  it('never warns while the loss and gradient norm stay within their bounds (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: 10, noNaN: true }),
        fc.array(fc.double({ min: 0, max: 1.5, noNaN: true }), { maxLength: 40 }),
        fc.array(fc.double({ min: 0, max: GRAD_EXPLOSION_FACTOR, noNaN: true }), { maxLength: 40 }),
        (start, lossRatios, gradRatios) => {
          const watch = new DivergenceWatch();
          watch.observe({ step: 1, trainLoss: start, gradNorm: 1, learningRate: 1e-3 });
          return lossRatios.every((r, i) => watch.observe({ step: i + 2, trainLoss: start * r, gradNorm: gradRatios[i] ?? 1, learningRate: 1e-3 }) === null);
        },
      ),
    );
    expect(DIVERGENCE_PATIENCE).toBeGreaterThan(1);
  });

  it('offers only a checkpoint that was saved', () => {
    expect(divergedAdvice(null)).toMatch(/start the job again \(no checkpoint was saved before it diverged\)/);
    expect(divergedAdvice(40)).toMatch(/start again from the checkpoint at step 40/);
  });
});
