import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { acquireGpu, type Gpu } from '../../src/gpu';
import { MemoryJobStore } from '../../src/jobs/store';
import { getTestGpu } from '../helpers/gpu';
import { addTinyLlama, expectSameAdapter, expectSameTrajectory, makeRunner, referenceRun, submit, type ReferenceRun } from './helpers';

/** The device that is lost (the job resumes on the shared test device). */
let doomed: Gpu | null = null;

afterAll(() => {
  doomed?.destroy();
});

describe('a job whose GPU device is lost', () => {
  let ref: ReferenceRun;

  beforeAll(async () => {
    ref = await referenceRun();
    expect(ref.job.status).toBe('succeeded');
  });

  it('pauses a job whose device is lost and resumes it from the last checkpoint on a new device', async () => {
    const store = new MemoryJobStore();
    const lost = (doomed = await acquireGpu());
    let calls = 0;
    const runner = makeRunner(store, {
      // The first device is lost mid-epoch 2; the next one is the shared test device.
      acquireGpu: () => (calls++ === 0 ? Promise.resolve(lost) : getTestGpu()),
      onUpdate: (u) => {
        if (u.type === 'metrics' && u.rows.some((m) => m.step === 3)) lost.device.destroy();
      },
    });
    const src = await addTinyLlama(store.blobs);
    const { id } = await submit(runner, src);
    await runner.idle();
    const paused = await runner.getJob(id);
    expect(paused.status).toBe('paused');
    expect(paused.statusMessage).toMatch(/^The GPU device was lost \(destroyed\)\. Resume to continue from checkpoint step-00000002-epoch-1 on a new device\.$/);
    const lostEvents = (await store.listEvents(id)).filter((e) => e.kind === 'device_lost');
    expect(lostEvents).toHaveLength(1);
    expect(lostEvents[0]!.level).toBe('error');

    await runner.resume(id);
    await runner.idle();
    expect(calls).toBe(2);
    const done = await runner.getJob(id);
    expect(done).toMatchObject({ status: 'succeeded', resumes: 1 });
    expectSameTrajectory(await store.listMetrics(id), ref.metrics);
    await expectSameAdapter(await runner.getAdapter(id), await ref.runner.getAdapter(ref.job.id));
  });
});
