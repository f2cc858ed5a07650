/** The PyTorch peers' runner (Node only: it spawns Python). */
import { spawnSync } from 'node:child_process';

import type { PeerEnvironment } from '../src/bench/table';

/** The interpreter for the PyTorch peers: Debian's python3 has python3-torch; WHITTLE_PYTHON overrides. */
export function peerPython(): string {
  return process.env.WHITTLE_PYTHON ?? '/usr/bin/python3';
}

/** Null when the peer interpreter can import torch, else why not (for the table's note). */
export function torchUnavailable(): string | null {
  const r = spawnSync(peerPython(), ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.error) return `${peerPython()} not runnable (${r.error.message})`;
  if (r.status !== 0) return `${peerPython()} cannot import torch`;
  return null;
}

/** A peer's stdout: what it ran on, and one result per case. */
export interface PeerOutput<T> {
  environment: PeerEnvironment;
  results: T[];
}

/**
 * Runs a peer script with `input` as JSON on stdin and returns its JSON stdout. The peer's
 * stderr (progress) passes through to ours.
 */
export function runPeer<T>(script: string, input: unknown, timeoutMs = 30 * 60_000): PeerOutput<T> {
  const r = spawnSync(peerPython(), [script], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
    timeout: timeoutMs,
  });
  if (r.error) throw new Error(`${script}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${script} exited with ${r.status}`);
  return JSON.parse(r.stdout) as PeerOutput<T>;
}
