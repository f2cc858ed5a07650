import 'fake-indexeddb/auto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { acquireGpu, type Gpu } from '../../src/gpu';
import type { RunnerUpdate } from '../../src/jobs/runner';
import { IdbJobStore } from '../../src/jobs/idbStore';
import { addTinyLlama, CrashableStore, expectSameAdapter, expectSameTrajectory, makeRunner, referenceRun, statusLog, submit, type ReferenceRun } from './helpers';

/** The new device the crashed job resumes on (besides the shared test device). */
let second: Promise<Gpu> | null = null;
const secondGpu = () => (second ??= acquireGpu());

afterAll(async () => {
  if (second) (await second).destroy();
});

describe('a job whose tab closed', () => {
  let ref: ReferenceRun;

  beforeAll(async () => {
    ref = await referenceRun();
    expect(ref.job.status).toBe('succeeded');
  });

  it('resumes a job whose tab closed after the epoch-1 checkpoint, in a new runner on a new device, with the same losses', async () => {
    const disk = await IdbJobStore.open({ name: `runner-crash-${process.pid}` });
    const crashing = new CrashableStore(disk);
    let jobId = '';
    const runner1 = makeRunner(crashing, {
      onUpdate: (u) => {
        // The tab closes right after the first epoch's checkpoint is recorded: from then on
        // nothing reaches the store, and the run stops (as the page's worker would, killed).
        if (!crashing.crashed && u.type === 'job' && u.job.checkpoints.some((c) => c.name.endsWith('epoch-1'))) {
          crashing.crash();
          void runner1.pause(jobId);
        }
      },
    });
    const src = await addTinyLlama(disk.blobs);
    jobId = (await submit(runner1, src)).id;
    await runner1.idle();
    expect(crashing.crashed).toBe(true);

    // What the next page load finds: a job still marked running, with one checkpoint.
    const left = (await disk.getJob(jobId))!;
    expect(left.status).toBe('running');
    expect(left.checkpoints.map((c) => c.name)).toEqual(['step-00000002-epoch-1']);
    expect((await disk.listMetrics(jobId)).map((m) => m.step)).toEqual([1, 2]);

    const updates: RunnerUpdate[] = [];
    const runner2 = makeRunner(disk, { acquireGpu: secondGpu, onUpdate: (u) => updates.push(u) });
    expect(await runner2.recover()).toEqual([jobId]);
    await runner2.idle();
    const done = await runner2.getJob(jobId);
    expect(done.error).toBeNull();
    expect(done).toMatchObject({ status: 'succeeded', step: 4, resumes: 1, trainedTokens: ref.job.trainedTokens });
    expect(statusLog(updates, jobId)).toEqual(['queued', 'running', 'succeeded']);
    expectSameTrajectory(await disk.listMetrics(jobId), ref.metrics);
    const messages = (await disk.listEvents(jobId)).map((e) => e.message);
    expect(messages).toContain('Interrupted (the page was closed while it ran); it resumes from checkpoint step-00000002-epoch-1');
    expect(messages.some((m) => m.startsWith('Resuming from step 2/4'))).toBe(true);
    // The adapters of both runs agree too.
    await expectSameAdapter(await runner2.getAdapter(jobId), await ref.runner.getAdapter(ref.job.id));
    disk.close();
  });
});
