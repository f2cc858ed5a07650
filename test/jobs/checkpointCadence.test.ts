import { describe, expect, it } from 'vitest';

import { checkCheckpointEvery, createJobRecord } from '../../src/jobs/job';
import { MemoryJobStore } from '../../src/jobs/store';
import { addTinyLlama, HYPERPARAMETERS, makeRunner, TRAIN_JSONL } from './helpers';

describe('checkpoints every N steps', () => {
  it('the job record keeps a valid cadence and refuses others', () => {
    const base = { baseModel: { source: { kind: 'embedded' as const, name: 'm', url: '/m/', files: [] }, summary: {} as never }, trainingFile: { id: 'file-1', name: 't.jsonl', bytes: 1 } };
    expect(createJobRecord(base).checkpointEvery).toBeNull();
    expect(createJobRecord({ ...base, checkpointEvery: 50 }).checkpointEvery).toBe(50);
    expect(() => checkCheckpointEvery(0)).toThrow(/whole number of steps >= 1/);
    expect(() => checkCheckpointEvery(2.5)).toThrow(RangeError);
  });

  it('a job with checkpointEvery 1 saves after every step as well as at epoch ends (the last three kept)', { timeout: 300_000 }, async () => {
    const store = new MemoryJobStore();
    const runner = makeRunner(store);
    const source = await addTinyLlama(store.blobs);
    const train = await runner.uploadFile('train.jsonl', new Blob([TRAIN_JSONL]), { model: source });
    const job = await runner.createJob({ model: source, trainingFileId: train.file.id, hyperparameters: { ...HYPERPARAMETERS, evalEvery: 'auto' }, dtype: 'f32', checkpointEvery: 1 });
    expect(job.checkpointEvery).toBe(1);
    await runner.idle();
    const done = await runner.getJob(job.id);
    expect(done.status).toBe('succeeded');
    // 2 epochs of 2 steps: steps 1 and 3 are mid-epoch checkpoints, 2 and 4 end epochs; three are kept.
    expect(done.checkpoints.map((c) => c.name)).toEqual(['step-00000002-epoch-1', 'step-00000003', 'step-00000004-epoch-2']);
  });
});
