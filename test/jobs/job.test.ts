import { describe, expect, it } from 'vitest';

import {
  canTransition,
  checkSuffix,
  createJobRecord,
  fineTunedModelName,
  isTerminal,
  JOB_STATUSES,
  JOB_TRANSITIONS,
  JobTransitionError,
  transition,
  type JobRecord,
  type JobStatus,
  type NewJobInput,
} from '../../src/jobs/job';

function input(): NewJobInput {
  return {
    id: 'ftjob-test',
    baseModel: {
      source: { kind: 'embedded', name: 'tiny', url: '/models/tiny/', files: ['config.json'] },
      summary: { architecture: 'LlamaForCausalLM', modelType: 'llama', family: 'llama', parameters: 1, layers: 2, hidden: 48, heads: 4, kvHeads: 2, vocabSize: 320, maxPositions: 128, torchDtype: 'float32' },
    },
    trainingFile: { id: 'file-a', name: 'train.jsonl', bytes: 10 },
    suffix: 'my-model',
    now: 1000,
  };
}

function job(): JobRecord {
  return createJobRecord(input());
}

/** Walks a path of statuses from validating_files, stamping time i at step i. */
function walk(path: JobStatus[]): JobRecord {
  let j = job();
  path.forEach((s, i) => (j = transition(j, s, {}, 2000 + i)));
  return j;
}

describe('job state machine', () => {
  it('allows exactly the listed transitions and throws JobTransitionError for every other pair', () => {
    const allowed: string[] = [];
    for (const from of JOB_STATUSES) {
      for (const to of JOB_STATUSES) {
        const j = { ...job(), status: from };
        if (canTransition(from, to)) {
          allowed.push(`${from}>${to}`);
          expect(transition(j, to).status).toBe(to);
        } else {
          expect(() => transition(j, to)).toThrow(JobTransitionError);
        }
      }
    }
    expect(allowed.sort()).toEqual(
      [
        'validating_files>queued',
        'validating_files>failed',
        'validating_files>cancelled',
        'queued>running',
        'queued>paused',
        'queued>failed',
        'queued>cancelled',
        'running>succeeded',
        'running>failed',
        'running>cancelled',
        'running>paused',
        'running>queued',
        'paused>queued',
        'paused>failed',
        'paused>cancelled',
      ].sort(),
    );
    for (const s of ['succeeded', 'failed', 'cancelled'] as const) {
      expect(isTerminal(s)).toBe(true);
      expect(JOB_TRANSITIONS[s]).toEqual([]);
    }
  });

  it('names the job and both statuses in the error, and says when the status is final', () => {
    const done = walk(['queued', 'running', 'succeeded']);
    const err = (() => {
      try {
        transition(done, 'running');
      } catch (e) {
        return e as JobTransitionError;
      }
      throw new Error('no throw');
    })();
    expect(err).toBeInstanceOf(JobTransitionError);
    expect(err.message).toBe('job ftjob-test cannot go from succeeded to running (succeeded is final)');
    expect([err.from, err.to, err.jobId]).toEqual(['succeeded', 'running', 'ftjob-test']);
  });

  it('stamps startedAt once, finishedAt on terminal statuses, updatedAt always, without mutating the input', () => {
    const fresh = job();
    expect(fresh).toMatchObject({ status: 'validating_files', createdAt: 1000, updatedAt: 1000, startedAt: null, finishedAt: null, suffix: 'my-model', weightDtype: null, resumes: 0 });
    const running = transition(transition(fresh, 'queued', {}, 1500), 'running', {}, 2000);
    expect(fresh.status).toBe('validating_files');
    expect(running).toMatchObject({ startedAt: 2000, updatedAt: 2000, finishedAt: null });
    const paused = transition(running, 'paused', { statusMessage: 'lost' }, 2500);
    expect(paused.statusMessage).toBe('lost');
    const again = transition(transition(paused, 'queued', {}, 2600), 'running', {}, 3000);
    expect(again.startedAt).toBe(2000);
    expect(again.statusMessage).toBeNull();
    const failed = transition(again, 'failed', { error: { message: 'boom', code: 'Error' } }, 4000);
    expect(failed).toMatchObject({ finishedAt: 4000, status: 'failed', error: { message: 'boom', code: 'Error' } });
  });

  it('checks suffixes and names the fine-tuned model as OpenAI does', () => {
    expect(checkSuffix(undefined)).toBeNull();
    expect(checkSuffix('')).toBeNull();
    expect(checkSuffix('ok_name-1')).toBe('ok_name-1');
    expect(() => checkSuffix('has space')).toThrow(RangeError);
    expect(() => checkSuffix('x'.repeat(65))).toThrow(RangeError);
    expect(fineTunedModelName(job())).toBe('ft:tiny:my-model:ftjob-test');
    expect(fineTunedModelName({ ...job(), suffix: null })).toBe('ft:tiny::ftjob-test');
  });

  it('makes store-safe unique ids', () => {
    const ids = new Set(Array.from({ length: 50 }, () => createJobRecord({ ...input(), id: undefined }).id));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^ftjob-[A-Za-z0-9]{12}$/);
  });
});
