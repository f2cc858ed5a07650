import { describe, expect, it } from 'vitest';
import { autoEpochs, autoLearningRate, MAX_AUTO_LEARNING_RATE, MIN_AUTO_LEARNING_RATE, REFERENCE_LEARNING_RATE } from '../../src/train/autoRules';

describe('autoEpochs (OpenAI rule)', () => {
  it('is 3 between the boundaries', () => {
    expect([34, 100, 1000, 8333].map(autoEpochs)).toEqual([3, 3, 3, 3]);
  });

  it('raises epochs when n x 3 < 100, to min(25, floor(100 / n))', () => {
    expect(autoEpochs(1)).toBe(25);
    expect(autoEpochs(4)).toBe(25);
    expect(autoEpochs(5)).toBe(20);
    expect(autoEpochs(10)).toBe(10);
    expect(autoEpochs(32)).toBe(3);
    expect(autoEpochs(33)).toBe(3); // 99 < 100 but floor(100 / 33) = 3
    expect(autoEpochs(20)).toBe(5);
  });

  it('lowers epochs when n x 3 > 25000, to max(1, floor(25000 / n))', () => {
    expect(autoEpochs(8334)).toBe(2);
    expect(autoEpochs(12_500)).toBe(2);
    expect(autoEpochs(12_501)).toBe(1);
    expect(autoEpochs(25_001)).toBe(1);
    expect(autoEpochs(1e7)).toBe(1);
  });

  it('is 0 for no examples', () => {
    expect(autoEpochs(0)).toBe(0);
    expect(autoEpochs(-3)).toBe(0);
    expect(autoEpochs(Number.NaN)).toBe(0);
  });
});

describe('autoLearningRate (2e-4 x 4096 / hidden)', () => {
  it('is the reference rate at the reference width and halves when the width doubles', () => {
    expect(autoLearningRate(4096)).toBeCloseTo(2e-4, 12);
    expect(autoLearningRate(8192)).toBeCloseTo(1e-4, 12);
    expect(autoLearningRate(96)).toBeCloseTo((2e-4 * 4096) / 96, 12);
    expect(autoLearningRate(576)).toBeCloseTo(1.4222e-3, 6);
  });

  it('stays within its bounds and falls back to the reference without a width', () => {
    expect(autoLearningRate(16)).toBe(MAX_AUTO_LEARNING_RATE);
    expect(autoLearningRate(1e6)).toBe(MIN_AUTO_LEARNING_RATE);
    expect(autoLearningRate(undefined)).toBe(REFERENCE_LEARNING_RATE);
    expect(autoLearningRate(0)).toBe(REFERENCE_LEARNING_RATE);
  });
});
