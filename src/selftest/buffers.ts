import type { Gpu } from '../gpu';

/**
 * Runs `fn` inside `gpu.checked` (validation errors become exceptions) and releases every buffer
 * it passed through `track`, whether it returned or threw: a failing kernel check leaks nothing.
 */
export async function withBuffers<T>(gpu: Gpu, fn: (track: (b: GPUBuffer) => GPUBuffer) => Promise<T>): Promise<T> {
  const made: GPUBuffer[] = [];
  try {
    return await gpu.checked(() => fn((b) => (made.push(b), b)));
  } finally {
    for (const b of made) gpu.release(b);
  }
}
