import { describe, expect, it } from 'vitest';
import { formatValidationLoss, NO_VALIDATION_TOKENS, trainedStep } from '../../src/train/metrics';

describe('steps and validation passes that trained nothing', () => {
  it('a step without trained tokens has no loss or accuracy, whatever numbers it carries', () => {
    expect(trainedStep({ trainLoss: 0, trainAccuracy: 0, trainTokens: 0 })).toBeNull();
    expect(trainedStep({ trainLoss: NaN, trainAccuracy: 0, trainTokens: 5 })).toBeNull();
    expect(trainedStep({ trainLoss: 1.25, trainAccuracy: 0.5, trainTokens: 5 })).toEqual({ loss: 1.25, accuracy: 0.5 });
  });

  it('a NaN validation loss is written as the reason, never as NaN', () => {
    expect(formatValidationLoss(1.23456)).toBe('1.2346');
    expect(formatValidationLoss(NaN)).toBe(`none (${NO_VALIDATION_TOKENS})`);
    expect(formatValidationLoss(NaN)).not.toMatch(/NaN/);
  });
});
