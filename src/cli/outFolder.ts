// The folder `whittle train --out` writes into: one writer at a time (a lock file holding the
// writer's pid), one job per folder (another job's folder is refused unless resumed or
// overwritten), and the identity of the data a job was trained on (content hashes), so that a
// resume on other data is refused instead of silently training on it.

import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { CliError } from './io';

export const LOCK_FILE = '.whittle-train.lock';

interface LockOwner {
  pid: number;
  host: string;
  started: string;
  /** Tells this lock from a later one of the same process (a takeover, a second run in-process). */
  token?: string;
}

/** Whether a process with this pid runs on this machine (EPERM: it runs, as another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(path: string): Promise<LockOwner | null> {
  try {
    const owner = JSON.parse(await readFile(path, 'utf8')) as Partial<LockOwner>;
    return typeof owner.pid === 'number' && typeof owner.host === 'string' ? { pid: owner.pid, host: owner.host, started: String(owner.started ?? ''), token: owner.token } : null;
  } catch {
    return null;
  }
}

/**
 * Takes the folder's lock, creating the folder. A lock held by a live process refuses with its
 * pid; one left by a process that is gone (killed, crashed) is taken over. Returns the release.
 * `isAlive` is injectable for tests.
 */
export async function lockOutFolder(out: string, isAlive: (pid: number) => boolean = processAlive): Promise<() => Promise<void>> {
  await mkdir(out, { recursive: true });
  const path = join(out, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString(), token: randomUUID() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(JSON.stringify(me) + '\n');
      await handle.close();
      return async () => {
        const owner = await readOwner(path);
        if (owner?.token === me.token) await rm(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = await readOwner(path);
    if (owner !== null && (owner.host !== me.host || isAlive(owner.pid))) {
      const where = owner.host === me.host ? `process ${owner.pid}` : `process ${owner.pid} on ${owner.host}`;
      throw new CliError(
        `${out} is in use: another whittle train (${where}, started ${owner.started}) is writing into it. ` +
          `Wait for it to finish, or pick another --out (if that process is gone, delete ${path})`,
      );
    }
    // Stale (its process is gone) or unreadable (a writer killed mid-write): take it over.
    await rm(path, { force: true });
  }
  throw new CliError(`could not take the lock ${path}: another process keeps creating it`);
}

/** The files a train job writes into --out (besides the lock). */
export const JOB_OUTPUTS = ['job.json', 'metrics.csv', 'adapter_model.safetensors', 'adapter_config.json', 'checkpoints'];

/**
 * Refuses an --out that holds another job's files, unless the run resumes it; with `overwrite`
 * those files are deleted first (only Whittle's own outputs, nothing else in the folder).
 */
export async function claimJobFolder(out: string, mode: { resume: boolean; overwrite: boolean }): Promise<void> {
  if (mode.resume) return;
  const present: string[] = [];
  for (const name of JOB_OUTPUTS) {
    try {
      await stat(join(out, name));
      present.push(name);
    } catch {
      // absent
    }
  }
  if (present.length === 0) return;
  if (!mode.overwrite) {
    throw new CliError(
      `${out} already holds a training job (${present.join(', ')}). ` +
        'Add --resume to continue it, --overwrite to replace it, or pick another --out',
    );
  }
  for (const name of present) await rm(join(out, name), { recursive: true, force: true });
}

export interface FileFingerprint {
  bytes: number;
  sha256: string;
}

/** Size and SHA-256 of a file, streamed (never read whole). */
export async function fingerprintFile(path: string): Promise<FileFingerprint> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/**
 * Refuses a resume whose data file differs from the one the job was trained on. `recorded` is
 * job.json's fingerprint (absent in folders written before fingerprints were kept: not checked).
 */
export async function checkSameData(what: string, path: string | null, recorded: FileFingerprint | null | undefined, recordedPath: string | null): Promise<void> {
  if (recorded === undefined) return;
  if (recorded === null || path === null) {
    if ((recorded === null) !== (path === null)) {
      throw new CliError(
        path === null
          ? `--resume: the job was trained with a ${what} (${recordedPath}); give it again`
          : `--resume: the job was trained without a ${what}; ${path} cannot be added to it`,
      );
    }
    return;
  }
  const now = await fingerprintFile(path);
  if (now.sha256 !== recorded.sha256) {
    throw new CliError(
      `--resume: ${what} ${path} is not the file the job was trained on (${recordedPath}: ${recorded.bytes} bytes, ` +
        `sha256 ${recorded.sha256.slice(0, 12)}...; this one: ${now.bytes} bytes, sha256 ${now.sha256.slice(0, 12)}...)`,
    );
  }
}

/** Quotes an argument for a POSIX shell when it needs it. */
function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The command that continues a stopped job: every flag that the resumed run needs. */
export function continueCommand(parts: { modelDir: string; trainFile: string; out: string; validation: string | null; dtype: string; logEvery: number; allowSmall?: boolean; allowUntrained?: boolean; checkpointEvery?: number }): string {
  const args = ['whittle', 'train', parts.modelDir, parts.trainFile, '--out', parts.out, '--resume'];
  if (parts.validation !== null) args.push('--validation', parts.validation);
  if (parts.dtype !== 'f16') args.push('--dtype', parts.dtype);
  if (parts.logEvery !== 1) args.push('--log-every', String(parts.logEvery));
  if (parts.allowSmall === true) args.push('--allow-small');
  if (parts.allowUntrained === true) args.push('--allow-untrained');
  if (parts.checkpointEvery !== undefined) args.push('--checkpoint-every', String(parts.checkpointEvery));
  return args.map(shellQuote).join(' ');
}
