// Fuzzing checkpoint files: whatever bytes a checkpoint folder holds (a truncated write, another
// file under a checkpoint's name, edited metadata), parseCheckpoint returns a checkpoint or throws
// CheckpointError / SafetensorsError; never another exception.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { CheckpointError, parseCheckpoint, serializeCheckpoint, type Checkpoint } from '../../src/train/checkpoint';
import { SafetensorsError } from '../../src/formats/safetensors';
import { resolveHyperparameters } from '../../src/train/hyperparameters';

const VALID: Checkpoint = {
  name: 'step-00000002',
  state: { step: 2, epoch: 0, batchIndex: 2, totalSteps: 6, seed: 1, elapsedMs: 10, finished: false },
  hyperparameters: resolveHyperparameters({ seed: 1 }, 12),
  metrics: [],
  tensors: new Map([['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }]]),
};

async function outcome(bytes: Uint8Array): Promise<'accepted' | 'rejected'> {
  try {
    const cp = await parseCheckpoint(bytes);
    // What is accepted is self-consistent: the state passed its checks, tensors match their shapes.
    expect(Number.isInteger(cp.state.step) && cp.state.step >= 0).toBe(true);
    for (const t of cp.tensors.values()) expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
    return 'accepted';
  } catch (e) {
    if (e instanceof CheckpointError || e instanceof SafetensorsError) return 'rejected';
    throw e;
  }
}

describe('checkpoint fuzzing', () => {
  const valid = serializeCheckpoint(VALID);

  it('the unmodified checkpoint is accepted', async () => {
    expect(await outcome(valid)).toBe('accepted');
  });

  it('truncations, byte flips and random files are accepted or rejected with a named error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.nat(valid.length).map((n) => valid.slice(0, n)),
          fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((flips) => {
            const b = valid.slice();
            for (const [at, v] of flips) b[at] = v;
            return b;
          }),
          fc.uint8Array({ maxLength: 300 }),
        ),
        async (bytes) => {
          await outcome(bytes);
        },
      ),
      { numRuns: 400, seed: 16 },
    );
  });

  it('edited metadata (state, metrics, hyperparameters as any JSON) is accepted or rejected with a named error', async () => {
    const metaValue = fc.oneof(fc.json({ maxDepth: 2 }), fc.string({ maxLength: 20 }));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('state', 'metrics', 'hyperparameters', 'format', 'version', 'name'), metaValue, async (key, value) => {
        // Rewrite one metadata entry by round-tripping through a checkpoint with that field replaced.
        const text = new TextDecoder().decode(valid);
        const headerLength = Number(new DataView(valid.buffer, valid.byteOffset).getBigUint64(0, true));
        const header = JSON.parse(text.slice(8, 8 + headerLength)) as { __metadata__: Record<string, string> };
        header.__metadata__[key] = value;
        const json = new TextEncoder().encode(JSON.stringify(header));
        const data = valid.subarray(8 + headerLength);
        const bytes = new Uint8Array(8 + json.length + data.length);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
        bytes.set(json, 8);
        bytes.set(data, 8 + json.length);
        await outcome(bytes);
      }),
      { numRuns: 300, seed: 61 },
    );
  });
});
