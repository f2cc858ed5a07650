import { describe, expect, it } from 'vitest';

import { jobTitle } from '../../../src/ui/pages/JobDetail';

describe('jobTitle', () => {
  it('names a job after its training file or sample, with the suffix the user gave', () => {
    expect(jobTitle({ id: 'ftjob-abc', suffix: null, trainingFile: { name: 'pirate-style.train.jsonl' } })).toBe('pirate-style');
    expect(jobTitle({ id: 'ftjob-abc', suffix: 'v2', trainingFile: { name: 'pirate-style.train.jsonl' } })).toBe('pirate-style · v2');
    expect(jobTitle({ id: 'ftjob-abc', suffix: 'notes', trainingFile: { name: 'notes.jsonl' } })).toBe('notes');
    // Without a file name: the suffix, else the id.
    expect(jobTitle({ id: 'ftjob-abc', suffix: 'tiny' })).toBe('tiny');
    expect(jobTitle({ id: 'ftjob-abc', suffix: null })).toBe('ftjob-abc');
  });
});
