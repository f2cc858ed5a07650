// Node only (CLI, checkpoint store): files written so that a failure never leaves a truncated file
// under the real name. The bytes go to a temporary file beside the target, renamed into place
// once complete; on any failure the temporary file is removed and the error names the path, and
// for a full disk the bytes that were needed.

import { rename, rm, writeFile } from 'node:fs/promises';

/** The file system calls an atomic write makes (injectable, so tests can fail them). */
export interface WriteFs {
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { force: true }): Promise<void>;
}

export const nodeWriteFs: WriteFs = { writeFile, rename, rm };

export class OutputWriteError extends Error {
  override name = 'OutputWriteError';
  constructor(
    message: string,
    readonly path: string,
    /** The errno code (ENOSPC, EACCES, ...) when the file system gave one. */
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const mib = bytes / (1024 * 1024);
  return mib < 1 ? `${(bytes / 1024).toFixed(1)} KiB (${bytes} bytes)` : `${mib.toFixed(1)} MiB (${bytes} bytes)`;
}

/** An error of writing `bytes` to `path`, as an OutputWriteError that names both. */
export function writeFailure(path: string, bytes: number, error: unknown): OutputWriteError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code !== undefined && DISK_FULL.has(code)) {
    return new OutputWriteError(`no space left on the device for ${path}: it needs ${sizeText(bytes)}; free some space and run again`, path, code);
  }
  return new OutputWriteError(`could not write ${path} (${sizeText(bytes)}): ${(error as Error).message}`, path, code);
}

/** Writes `data` to `path` through `<path>.<pid>.tmp` and a rename; never leaves the temporary file. */
export async function writeFileAtomic(path: string, data: Uint8Array | string, fs: WriteFs = nodeWriteFs): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw writeFailure(path, bytes, e);
  }
}
