// What a CLI command may touch besides the file system: its two output streams and the GPU.
// Injected so tests run commands in-process and share one device.

import type { Gpu, KernelChoice } from '../gpu';
import type { WriteFs } from '../util/atomicWrite';

export interface CliIo {
  /** Writes to standard output (no newline added). */
  stdout(text: string): void;
  /** Writes to standard error (no newline added). */
  stderr(text: string): void;
  /**
   * The GPU to run on. Absent: the CLI calls acquireGpu() and destroys the device when the command
   * ends. A GPU given here is the caller's and is never destroyed.
   */
  acquireGpu?: () => Promise<Gpu>;
  /** Aborts long commands (train stops after the current step and saves); Ctrl-C in a terminal. */
  signal?: AbortSignal;
  /** A one-line progress display redrawn in place (only when standard error is a terminal). */
  progress?: (done: number, total: number, label: string) => void;
  /** The file system calls train's checkpoints and export's files are written with (tests inject failures). */
  writeFs?: WriteFs;
}

/** `[#########...........]  45%  label`, sized for an 80-column terminal. */
export function progressBar(done: number, total: number, label: string, width = 24): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(frac * 100)).padStart(3)}%  ${label}`;
}

/** Bad input: the message is printed as is and the exit code is 1. */
export class CliError extends Error {
  override name = 'CliError';
}

export function nodeIo(): CliIo {
  const io: CliIo = {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
  };
  if (process.stderr.isTTY) {
    io.progress = (done, total, label) => {
      const line = progressBar(done, total, label).slice(0, Math.max(20, (process.stderr.columns ?? 80) - 1));
      process.stderr.write(`\r\x1b[2K${line}${done >= total ? '\n' : ''}`);
    };
  }
  return io;
}

/** The per-command context: io plus a lazily acquired GPU. */
export interface CliContext {
  io: CliIo;
  gpu(): Promise<Gpu>;
  /**
   * The kernel plan for the GPU this command opens (`--kernels`; default 'auto'). Call before
   * the first gpu(); a plan other than 'auto' opens a device of its own even when io gives one.
   */
  useKernels(choice: KernelChoice): void;
  /** stdout with a newline. */
  print(line?: string): void;
  /** stderr with a newline. */
  note(line?: string): void;
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}
