// The --out folder guard without a GPU: the lock (live writer refused, stale lock taken over), the
// one-job rule, data fingerprints and the continue command.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { checkSameData, claimJobFolder, continueCommand, fingerprintFile, LOCK_FILE, lockOutFolder } from '../../src/cli/outFolder';

const tmp = mkdtempSync(join(tmpdir(), 'whittle-out-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('--out folder guard', () => {
  it('refuses a second writer while the first lives, and takes over a dead one', async () => {
    const out = join(tmp, 'locked');
    const release = await lockOutFolder(out);
    const owner = JSON.parse(readFileSync(join(out, LOCK_FILE), 'utf8')) as { pid: number; host: string };
    expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
    await expect(lockOutFolder(out)).rejects.toThrow(new RegExp(`is in use: another whittle train \\(process ${process.pid}, started `));
    // The same lock, its process gone (killed): taken over.
    const second = await lockOutFolder(out, () => false);
    await release(); // the first writer's release leaves the new owner's lock alone
    expect(existsSync(join(out, LOCK_FILE))).toBe(true);
    await second();
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
    // A lock cut short by a crash mid-write is unreadable: taken over too.
    writeFileSync(join(out, LOCK_FILE), '{"pid": 12');
    await (await lockOutFolder(out))();
  });

  it('refuses a folder holding a job unless resumed or overwritten; overwrite deletes only job files', async () => {
    const out = join(tmp, 'job');
    mkdirSync(join(out, 'checkpoints', 'job-1'), { recursive: true });
    writeFileSync(join(out, 'job.json'), '{}');
    writeFileSync(join(out, 'notes.txt'), 'mine');
    await expect(claimJobFolder(out, { resume: false, overwrite: false })).rejects.toThrow(/already holds a training job \(job\.json, checkpoints\)/);
    await claimJobFolder(out, { resume: true, overwrite: false });
    expect(existsSync(join(out, 'job.json'))).toBe(true);
    await claimJobFolder(out, { resume: false, overwrite: true });
    expect(existsSync(join(out, 'job.json'))).toBe(false);
    expect(existsSync(join(out, 'checkpoints'))).toBe(false);
    expect(readFileSync(join(out, 'notes.txt'), 'utf8')).toBe('mine');
    await claimJobFolder(join(tmp, 'fresh'), { resume: false, overwrite: false });
  });

  it('refuses resuming on other data, naming the file', async () => {
    const a = join(tmp, 'a.jsonl');
    const b = join(tmp, 'b.jsonl');
    writeFileSync(a, '{"text": "one"}\n');
    writeFileSync(b, '{"text": "two"}\n');
    const recorded = await fingerprintFile(a);
    expect(recorded.bytes).toBe(16);
    await checkSameData('training file', a, recorded, a);
    await expect(checkSameData('training file', b, recorded, a)).rejects.toThrow(new RegExp(`training file ${b.replace(/[./\\]/g, '\\$&')} is not the file the job was trained on`));
    await expect(checkSameData('validation file', null, recorded, a)).rejects.toThrow(/trained with a validation file .*give it again/);
    await expect(checkSameData('validation file', b, null, null)).rejects.toThrow(/trained without a validation file/);
    // job.json from before fingerprints: nothing to compare.
    await checkSameData('training file', b, undefined, null);
  });

  it('prints a continue command with every flag the job needs', () => {
    expect(continueCommand({ modelDir: 'm', trainFile: 't.jsonl', out: 'my out', validation: 'v.jsonl', dtype: 'f32', logEvery: 5, allowSmall: true })).toBe(
      "whittle train m t.jsonl --out 'my out' --resume --validation v.jsonl --dtype f32 --log-every 5 --allow-small",
    );
    expect(continueCommand({ modelDir: 'm', trainFile: 't.jsonl', out: 'o', validation: null, dtype: 'f16', logEvery: 1 })).toBe('whittle train m t.jsonl --out o --resume');
    expect(continueCommand({ modelDir: 'm', trainFile: 't.jsonl', out: 'o', validation: null, dtype: 'f16', logEvery: 1, checkpointEvery: 50 })).toBe('whittle train m t.jsonl --out o --resume --checkpoint-every 50');
  });
});
