import { describe, expect, it } from 'vitest';
import { GPT2_ALL_LINEAR, LLAMA_ALL_LINEAR } from '../../src/model/lora';
import { REFERENCE_LEARNING_RATE } from '../../src/train/autoRules';
import {
  HYPERPARAMETER_RULES,
  HyperparameterError,
  hyperparameterRulesMarkdown,
  modelResolveContext,
  resolveHyperparameters,
  type HyperparameterRequest,
} from '../../src/train/hyperparameters';

const llama = { family: 'llama' as const, maxPositions: 2048 };

describe('resolveHyperparameters', () => {
  it('applies the auto rules to a mid-sized dataset', () => {
    const hp = resolveHyperparameters({}, 1000, { model: llama, random: () => 0.5 });
    expect(hp.epochs).toBe(3);
    expect(hp.batchSize).toBe(2); // round(0.002 x 1000)
    expect(hp.gradientAccumulation).toBe(1);
    expect(hp.effectiveBatchSize).toBe(2);
    expect(hp.learningRate).toBe(REFERENCE_LEARNING_RATE);
    expect(hp.learningRateMultiplier).toBe(1);
    expect(hp.schedule).toBe('linear');
    expect(hp.stepsPerEpoch).toBe(500);
    expect(hp.totalSteps).toBe(1500);
    expect(hp.warmupRatio).toBe(0.03);
    expect(hp.warmupSteps).toBe(45); // ceil(1500 x 0.03)
    expect(hp.weightDecay).toBe(0);
    expect(hp.maxGradNorm).toBe(1);
    expect([hp.beta1, hp.beta2, hp.eps]).toEqual([0.9, 0.999, 1e-8]);
    expect(hp.maxSeqLen).toBe(1024);
    expect(hp.seed).toBe(2 ** 30);
    expect(hp.lora).toEqual({ r: 8, alpha: 16, dropout: 0.05, targetModules: LLAMA_ALL_LINEAR, useRslora: false });
    expect(hp.evalEvery).toBe(75); // ceil(1500 / 20)
    expect(new Set(hp.auto)).toEqual(new Set(HYPERPARAMETER_RULES.map((r) => r.key)));
  });

  it('uses OpenAI epoch counts at the boundaries', () => {
    const epochs = (n: number) => resolveHyperparameters({}, n).epochs;
    expect(epochs(1)).toBe(25);
    expect(epochs(10)).toBe(10);
    expect(epochs(33)).toBe(3); // 99 < 100 examples seen: floor(100 / 33) = 3
    expect(epochs(34)).toBe(3);
    expect(epochs(8333)).toBe(3);
    expect(epochs(8334)).toBe(2); // 25,002 > 25,000
    expect(epochs(30000)).toBe(1);
  });

  it('clamps the auto batch to 1..8', () => {
    const batch = (n: number) => resolveHyperparameters({}, n).batchSize;
    expect(batch(10)).toBe(1);
    expect(batch(749)).toBe(1);
    expect(batch(750)).toBe(2);
    expect(batch(2500)).toBe(5);
    expect(batch(100000)).toBe(8);
  });

  it('makes up a memory-limited auto batch with gradient accumulation', () => {
    const hp = resolveHyperparameters({}, 4000, { maxBatchByMemory: 3 });
    expect(hp.batchSize).toBe(3);
    expect(hp.gradientAccumulation).toBe(3); // wanted 8: ceil(8 / 3)
    expect(hp.stepsPerEpoch).toBe(Math.ceil(4000 / 9));
    // An explicit batch is taken as given, and auto accumulation stays 1.
    const given = resolveHyperparameters({ batchSize: 4 }, 4000, { maxBatchByMemory: 3 });
    expect([given.batchSize, given.gradientAccumulation]).toEqual([4, 1]);
  });

  it('takes explicit values over the rules', () => {
    const req: HyperparameterRequest = {
      epochs: 2,
      batchSize: 4,
      gradientAccumulation: 2,
      learningRate: 1e-3,
      schedule: 'cosine',
      warmupSteps: 7,
      weightDecay: 0.01,
      maxGradNorm: 0,
      maxSeqLen: 256,
      seed: 42,
      loraR: 16,
      loraAlpha: 8,
      loraDropout: 0,
      targetModules: ['q_proj', 'v_proj'],
      useRslora: true,
      evalEvery: 5,
    };
    const hp = resolveHyperparameters(req, 100, { model: llama });
    expect(hp).toMatchObject({ epochs: 2, batchSize: 4, gradientAccumulation: 2, effectiveBatchSize: 8, learningRate: 1e-3, schedule: 'cosine' });
    expect(hp.learningRateMultiplier).toBeCloseTo(1e-3 / REFERENCE_LEARNING_RATE, 12);
    expect(hp.stepsPerEpoch).toBe(13); // ceil(100 / 8)
    expect(hp.totalSteps).toBe(26);
    expect([hp.warmupSteps, hp.warmupRatio]).toEqual([7, null]);
    expect([hp.weightDecay, hp.maxGradNorm, hp.maxSeqLen, hp.seed, hp.evalEvery]).toEqual([0.01, 0, 256, 42, 5]);
    expect(hp.lora).toEqual({ r: 16, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'], useRslora: true });
    expect(hp.auto).not.toContain('epochs');
  });

  it('derives the learning rate from the multiplier and alpha from the rank', () => {
    const hp = resolveHyperparameters({ learningRateMultiplier: 0.5, loraR: 32 }, 100);
    expect(hp.learningRate).toBeCloseTo(REFERENCE_LEARNING_RATE * 0.5, 15);
    expect(hp.lora.alpha).toBe(64);
  });

  it('follows the model: GPT-2 target modules, context-capped and data-capped sequence length', () => {
    const gpt2 = resolveHyperparameters({}, 100, { model: { family: 'gpt2', maxPositions: 64 } });
    expect(gpt2.lora.targetModules).toEqual(GPT2_ALL_LINEAR);
    expect(gpt2.maxSeqLen).toBe(64);
    expect(resolveHyperparameters({}, 100, { model: llama, longestExample: 300 }).maxSeqLen).toBe(300);
    expect(() => resolveHyperparameters({ maxSeqLen: 65 }, 100, { model: { family: 'gpt2', maxPositions: 64 } })).toThrow(HyperparameterError);
  });

  it('an auto seed is a fresh 31-bit integer, recorded in the result', () => {
    const a = resolveHyperparameters({}, 100).seed;
    expect(Number.isInteger(a) && a >= 0 && a < 2 ** 31).toBe(true);
    expect(resolveHyperparameters({}, 100, { random: () => 0.999999999 }).seed).toBeLessThan(2 ** 31);
  });

  it('names the field of an out-of-range value', () => {
    const bad: [HyperparameterRequest, string][] = [
      [{ epochs: 0 }, 'epochs'],
      [{ batchSize: 1.5 }, 'batchSize'],
      [{ learningRate: -1 }, 'learningRate'],
      [{ learningRate: NaN }, 'learningRate'],
      [{ warmupRatio: 1 }, 'warmupRatio'],
      [{ loraDropout: 1 }, 'loraDropout'],
      [{ targetModules: [] }, 'targetModules'],
      [{ schedule: 'step' as never }, 'schedule'],
      [{ evalEvery: 0 }, 'evalEvery'],
    ];
    for (const [req, field] of bad) {
      let err: unknown;
      try {
        resolveHyperparameters(req, 100);
      } catch (e) {
        err = e;
      }
      expect(err, field).toBeInstanceOf(HyperparameterError);
      expect((err as HyperparameterError).field).toBe(field);
      expect((err as Error).message.startsWith(`${field}:`)).toBe(true);
    }
    expect(() => resolveHyperparameters({}, 0)).toThrow(/empty/);
  });

  it('documents every rule in a Markdown table', () => {
    const md = hyperparameterRulesMarkdown();
    const lines = md.split('\n');
    expect(lines[0]).toBe('| Hyperparameter | Auto | Rule |');
    expect(lines.length).toBe(HYPERPARAMETER_RULES.length + 2);
    for (const r of HYPERPARAMETER_RULES) expect(md).toContain(`| ${r.label} |`);
  });
});

describe('auto rules that follow the model', () => {
  const tiny = { family: 'llama' as const, maxPositions: 128, hiddenSize: 96 };

  it('scales the learning rate by 4096 / hidden size and keeps the multiplier on top', () => {
    const hp = resolveHyperparameters({}, 100, { model: tiny, random: () => 0 });
    expect(hp.learningRate).toBeCloseTo((2e-4 * 4096) / 96, 12);
    expect(hp.baseLearningRate).toBe(hp.learningRate);
    const half = resolveHyperparameters({ learningRateMultiplier: 0.5 }, 100, { model: tiny, random: () => 0 });
    expect(half.learningRate).toBeCloseTo(hp.learningRate / 2, 12);
    const given = resolveHyperparameters({ learningRate: hp.learningRate * 3 }, 100, { model: tiny, random: () => 0 });
    expect(given.learningRateMultiplier).toBeCloseTo(3, 12);
  });

  it("uses the model's whittle_finetune.json in place of the generic rules", () => {
    const finetune = { learningRate: 3e-3, loraR: 16, loraAlpha: 32, epochs: 6, batchSize: 4, targetModules: ['q_proj', 'v_proj'] };
    const model = modelResolveContext({ family: 'llama', maxPositions: 512, hidden: 256 }, finetune);
    const hp = resolveHyperparameters({}, 112, { model, random: () => 0 });
    expect([hp.learningRate, hp.lora.r, hp.lora.alpha, hp.epochs, hp.batchSize]).toEqual([3e-3, 16, 32, 6, 4]);
    expect(hp.lora.targetModules).toEqual(['q_proj', 'v_proj']);
    // What the user gives still wins; alpha keeps the recommended alpha / r ratio.
    const mine = resolveHyperparameters({ loraR: 4, epochs: 2, learningRateMultiplier: 2 }, 112, { model, random: () => 0 });
    expect([mine.lora.r, mine.lora.alpha, mine.epochs, mine.learningRate]).toEqual([4, 8, 2, 6e-3]);
  });

  it('falls back to the generic rules where the file is silent', () => {
    const model = modelResolveContext({ family: 'llama', maxPositions: 512, hidden: 4096 }, { learningRate: 1e-3, loraR: 8, loraAlpha: 8 });
    const hp = resolveHyperparameters({}, 1000, { model, random: () => 0 });
    expect([hp.epochs, hp.batchSize, hp.lora.alpha]).toEqual([3, 2, 8]);
    expect(hp.lora.targetModules).toEqual([...LLAMA_ALL_LINEAR]);
  });
});
