// Whether a job fits the GPU before it is created (src/jobs/jobMemory.ts), and the runner's
// preview that carries it to the form: the budget heuristic, the buffer and binding checks, the
// auto batch capped to fit, and the f16 request on a GPU without shader-f16.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import type { Gpu } from '../../src/gpu';
import { bucketSize } from '../../src/gpu/bufferPool';
import {
  checkJobMemory,
  DEFAULT_BUDGET_BYTES,
  maxBatchByMemory,
  memoryLimits,
  resolveWithMemory,
  WEBGPU_DEFAULT_LIMITS,
  type MemoryLimits,
} from '../../src/jobs/jobMemory';
import { MemoryJobStore } from '../../src/jobs/store';
import { parseModelConfig } from '../../src/model/config';
import { LLAMA_ALL_LINEAR } from '../../src/model/lora';
import { estimateLoraJobMemory } from '../../src/model/memoryEstimate';
import { resolveHyperparameters } from '../../src/train/hyperparameters';
import { addTinyLlama, FIXTURES, makeRunner } from './helpers';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const llama = parseModelConfig(JSON.parse(readFileSync(join(FIXTURES, 'models', 'tiny-llama', 'config.json'), 'utf8')) as Record<string, unknown>);
const shape = { seq: 128, rank: 8, dtype: 'f32' as const, targetModules: LLAMA_ALL_LINEAR };
// The least a job of this batch needs: every layer recomputed in the backward ('auto' falls back to it).
const total = (batch: number) => estimateLoraJobMemory(llama, { ...shape, batch, recompute: 'always' }).totalBytes;
const roomy: MemoryLimits = { maxBufferSize: GiB, maxStorageBufferBindingSize: GiB, limitsFrom: 'device', budgetBytes: 4 * GiB, budgetFrom: 'device-memory' };

describe('memoryLimits', () => {
  it("takes the device's limits and half of navigator.deviceMemory, else WebGPU's defaults and 2 GiB", () => {
    expect(memoryLimits({ maxBufferSize: 2 * GiB, maxStorageBufferBindingSize: GiB }, 8)).toEqual({
      maxBufferSize: 2 * GiB,
      maxStorageBufferBindingSize: GiB,
      limitsFrom: 'device',
      budgetBytes: 4 * GiB,
      budgetFrom: 'device-memory',
    });
    expect(memoryLimits(null, null)).toEqual({ maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 128 * MiB, limitsFrom: 'webgpu-defaults', budgetBytes: 2 * GiB, budgetFrom: 'default' });
    expect(memoryLimits(null, 0.5).budgetBytes).toBe(256 * MiB);
    for (const bad of [0, -1, Number.NaN, undefined]) expect(memoryLimits(null, bad)).toMatchObject({ budgetBytes: DEFAULT_BUDGET_BYTES, budgetFrom: 'default' });
  });
});

describe('checkJobMemory', () => {
  it('the largest buffer of the tiny Llama at 4 x 128 tokens is the logits chunk, and it fits roomy limits', () => {
    const m = checkJobMemory(llama, { ...shape, batch: 4 }, roomy);
    // Vocabulary 320 (under one 8192 chunk): 4 x 128 tokens x 320 logits x 4 bytes.
    expect(m.estimate.largestBindingBytes).toBe(bucketSize(4 * 128 * 320 * 4));
    expect(m.estimate.largestBindingBytes).toBe(655360);
    expect(m.estimate.largestBufferBytes).toBe(655360);
    expect(m.estimate).toEqual(estimateLoraJobMemory(llama, { ...shape, batch: 4, maxStorageBufferBindingSize: GiB }));
    expect(m).toMatchObject({ batch: 4, seq: 128, rank: 8, dtype: 'f32', problems: [] });
  });

  it('names each limit the job is over, with the bytes and the limit', () => {
    const budget = total(4) - 1;
    const tight: MemoryLimits = { maxBufferSize: 600 * 1024, maxStorageBufferBindingSize: 600 * 1024, limitsFrom: 'device', budgetBytes: budget, budgetFrom: 'default' };
    const m = checkJobMemory(llama, { ...shape, batch: 4 }, tight);
    expect(m.problems.map((p) => [p.kind, p.bytes, p.limit])).toEqual([
      ['buffer', 655360, 614400],
      ['binding', 655360, 614400],
      ['total', total(4), budget],
    ]);
    expect(m.problems[0]!.message).toBe('One GPU buffer of this job needs 640 KiB, more than the 600 KiB this GPU allows (maxBufferSize): lower the batch size or max sequence length.');
    expect(m.problems[1]!.message).toBe(
      'At 4 × 128 tokens one tensor a kernel binds whole is 640 KiB, more than the 600 KiB a kernel can bind on this GPU (maxStorageBufferBindingSize): lower the batch size or max sequence length.',
    );
    expect(m.problems[2]!.message).toContain('the browser does not say how much memory this machine has');
    expect(m.problems[2]!.message).toMatch(/^The job needs about [\d.]+ MiB of GPU memory, more than the [\d.]+ MiB budget \(an estimate: the browser does not say how much memory this machine has\): lower the batch size, max sequence length or rank\.$/);
    // Exactly at a limit still fits.
    expect(checkJobMemory(llama, { ...shape, batch: 4 }, { ...tight, maxBufferSize: 655360, maxStorageBufferBindingSize: 655360, budgetBytes: total(4) }).problems).toEqual([]);
  });

  it("without a device the messages name WebGPU's defaults", () => {
    // 64 x 128 tokens x 320 x 4 = 10 MiB of logits: fits the defaults; 8192 tokens of 8192 would not.
    const m = checkJobMemory(llama, { ...shape, batch: 64 }, memoryLimits(null, null));
    expect(m.problems).toEqual([]);
    const big = checkJobMemory(llama, { ...shape, seq: 128, batch: 1024 }, memoryLimits(null, null));
    expect(big.estimate.largestBindingBytes).toBe(1024 * 128 * 320 * 4); // 160 MiB, a bucket already
    expect(big.problems.map((p) => p.kind)).toEqual(['binding']);
    expect(big.problems[0]!.message).toContain('more than the 128 MiB a kernel can bind on WebGPU by default');
  });
});

describe('maxBatchByMemory', () => {
  it('is the largest batch whose total fits the budget, up to the cap', () => {
    const limits = (budgetBytes: number): MemoryLimits => ({ ...roomy, budgetBytes });
    expect(total(3)).toBeLessThan(total(4));
    expect(maxBatchByMemory(llama, shape, limits(total(3)), 8)).toBe(3);
    expect(maxBatchByMemory(llama, shape, limits(total(4) - 1), 8)).toBe(3);
    expect(maxBatchByMemory(llama, shape, limits(total(3) - 1), 8)).toBe(2);
    expect(maxBatchByMemory(llama, shape, limits(total(8)), 8)).toBe(8);
    expect(maxBatchByMemory(llama, shape, roomy, 5)).toBe(5);
    expect(maxBatchByMemory(llama, shape, limits(total(1) - 1), 8)).toBe(0);
    // The binding limit caps it too: 655360 bytes of logits per 4 sequences.
    expect(maxBatchByMemory(llama, shape, { ...roomy, maxStorageBufferBindingSize: 655360 }, 8)).toBe(4);
  });
});

describe('resolveWithMemory', () => {
  const context = { model: { family: llama.family, maxPositions: llama.maxPositions }, longestExample: 128, random: () => 0.5 };

  it('caps an auto batch to what fits and makes the rest up by accumulation', () => {
    // 4000 examples: the auto rule wants 8 per micro-batch.
    expect(resolveHyperparameters({}, 4000, context).batchSize).toBe(8);
    const limits: MemoryLimits = { ...roomy, budgetBytes: total(3) };
    const { hyperparameters: hp, memory } = resolveWithMemory({ loraR: 8 }, 4000, context, llama, 'f32', limits);
    expect([hp.batchSize, hp.gradientAccumulation, hp.effectiveBatchSize]).toEqual([3, 3, 9]);
    expect(hp.seed).toBe(2 ** 30);
    expect(memory).toMatchObject({ batch: 3, seq: 128, rank: 8, dtype: 'f32', problems: [] });
    expect(memory.estimate.totalBytes).toBe(total(3));
  });

  it('leaves a batch the user chose, and reports that it does not fit', () => {
    const limits: MemoryLimits = { ...roomy, budgetBytes: total(3) };
    const { hyperparameters: hp, memory } = resolveWithMemory({ batchSize: 8 }, 4000, context, llama, 'f32', limits);
    expect([hp.batchSize, hp.gradientAccumulation]).toEqual([8, 1]);
    expect(memory.problems.map((p) => [p.kind, p.bytes, p.limit])).toEqual([['total', total(8), total(3)]]);
  });

  it('when even one sequence does not fit, keeps the auto batch and says so', () => {
    const limits: MemoryLimits = { ...roomy, budgetBytes: total(1) - 1 };
    const { hyperparameters: hp, memory } = resolveWithMemory({}, 4000, context, llama, 'f32', limits);
    expect(hp.batchSize).toBe(8);
    expect(memory.problems.map((p) => p.kind)).toEqual(['total']);
  });
});

/** A device with given limits and features; the runner's memory check reads nothing else. */
function fakeGpu(limits: { maxBufferSize: number; maxStorageBufferBindingSize: number }, hasF16: boolean): Gpu {
  return { limits, hasF16, lostError: null, onLost: () => () => {} } as unknown as Gpu;
}

describe('JobRunner.previewHyperparameters', () => {
  it("returns the memory check for the device's limits and the weights it would use", async () => {
    const store = new MemoryJobStore();
    const source = await addTinyLlama(store.blobs);
    const runner = makeRunner(store, { acquireGpu: () => Promise.resolve(fakeGpu({ maxBufferSize: 4 * 655360, maxStorageBufferBindingSize: 655360 }, true)) });
    // auto dtype on a GPU with shader-f16: f16 weights; 128-token examples, 4000 of them: 8 wanted.
    const preview = await runner.previewHyperparameters(source, 4000, {}, 128);
    // The binding limit (655360 bytes = logits of 4 x 128 tokens) caps the auto batch at 4.
    expect([preview.batchSize, preview.gradientAccumulation, preview.maxSeqLen]).toEqual([4, 2, 128]);
    expect(preview.memory).toMatchObject({ batch: 4, seq: 128, rank: 8, dtype: 'f16', problems: [], limits: { maxStorageBufferBindingSize: 655360, limitsFrom: 'device' } });
    expect(preview.memory!.estimate).toEqual(estimateLoraJobMemory(llama, { batch: 4, seq: 128, rank: 8, dtype: 'f16', targetModules: LLAMA_ALL_LINEAR, maxStorageBufferBindingSize: 655360 }));

    const f32 = await runner.previewHyperparameters(source, 4000, { batchSize: 6 }, 128, 'f32');
    expect(f32.batchSize).toBe(6);
    expect(f32.memory!.dtype).toBe('f32');
    expect(f32.memory!.problems.map((p) => [p.kind, p.bytes, p.limit])).toEqual([['binding', bucketSize(6 * 128 * 320 * 4), 655360]]);
  });

  it('explains an f16 request on a GPU without shader-f16, and a bad value before asking the device', async () => {
    const store = new MemoryJobStore();
    const source = await addTinyLlama(store.blobs);
    let opened = 0;
    const runner = makeRunner(store, {
      acquireGpu: () => {
        opened++;
        return Promise.resolve(fakeGpu(WEBGPU_DEFAULT_LIMITS, false));
      },
    });
    await expect(runner.previewHyperparameters(source, 10, { batchSize: -1 })).rejects.toMatchObject({ name: 'HyperparameterError', field: 'batchSize' });
    expect(opened).toBe(0);
    await expect(runner.previewHyperparameters(source, 10, {}, 20, 'f16')).rejects.toMatchObject({
      name: 'JobRunnerError',
      message: 'f16 weights need the shader-f16 feature, which this GPU lacks; use f32 or auto',
    });
    expect((await runner.previewHyperparameters(source, 10, {}, 20)).memory!.dtype).toBe('f32');
  });

  it('without a GPU it checks against WebGPU defaults and f32 weights', async () => {
    const store = new MemoryJobStore();
    const source = await addTinyLlama(store.blobs);
    const runner = makeRunner(store, { acquireGpu: () => Promise.reject(new Error('no adapter today')) });
    const preview = await runner.previewHyperparameters(source, 10, {}, 20);
    expect(preview.memory).toMatchObject({ batch: 1, seq: 20, dtype: 'f32', problems: [], limits: { limitsFrom: 'webgpu-defaults', maxStorageBufferBindingSize: 128 * MiB } });
  });
});
