// Fuzzing: whatever bytes arrive, reading either succeeds with a self-consistent header or fails
// with SafetensorsError; never another exception, never a hang. Failures print fast-check's seed
// and counterexample path for replay.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  bytesSource,
  DTYPE_BYTES,
  FLOAT_DTYPES,
  readSafetensorsHeader,
  readTensor,
  SafetensorsError,
  writeSafetensors,
  type SafetensorsDtype,
  type TensorToWrite,
} from '../../src/formats/safetensors';

const DTYPES = Object.keys(DTYPE_BYTES) as SafetensorsDtype[];

type Outcome = 'accepted' | 'rejected';

/** Reads the header and every tensor in every form; returns whether the header was accepted. */
async function exercise(bytes: Uint8Array): Promise<Outcome> {
  const src = bytesSource(bytes);
  let header;
  try {
    header = await readSafetensorsHeader(src);
  } catch (e) {
    if (e instanceof SafetensorsError) return 'rejected';
    throw e;
  }
  // An accepted header must describe tensors that lie inside the file and do not overlap.
  const spans = [...header.tensors.values()].sort((a, b) => a.fileOffset - b.fileOffset);
  let end = header.dataStart;
  for (const t of spans) {
    expect(t.fileOffset).toBeGreaterThanOrEqual(end);
    expect(t.byteLength).toBe(t.elements * DTYPE_BYTES[t.dtype]);
    end = t.fileOffset + t.byteLength;
  }
  expect(end).toBeLessThanOrEqual(bytes.length);
  for (const t of spans) {
    for (const as of ['raw', 'f32', 'f16'] as const) {
      try {
        const out = await readTensor(src, header, t.name, { as });
        expect(out.length).toBe(as === 'raw' ? t.byteLength : t.elements);
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw e;
        expect(as !== 'raw' && !FLOAT_DTYPES.includes(t.dtype)).toBe(true);
      }
    }
  }
  return 'accepted';
}

function withHeader(json: string, data: Uint8Array, claimedLength?: bigint): Uint8Array {
  const h = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, claimedLength ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const tensorArb: fc.Arbitrary<TensorToWrite> = fc
  .record({
    name: fc.string({ maxLength: 6 }),
    dtype: fc.constantFrom(...DTYPES),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
  })
  .map(({ name, dtype, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    return { name, dtype, shape, data: Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff) };
  });

const validFileArb = fc
  .uniqueArray(tensorArb, { maxLength: 5, selector: (t) => t.name })
  .map((tensors) => writeSafetensors(tensors, { format: 'pt' }));

const RUNS = { mutations: 1500, headers: 1000, lies: 1000, noise: 500 };

describe('safetensors fuzzing', () => {
  it('random byte mutations and truncations of valid files', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        validFileArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.option(fc.nat(), { nil: undefined }),
        async (file, edits, cut) => {
          const bytes = file.slice();
          for (const [at, value] of edits) bytes[at % bytes.length] = value;
          const input = cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
          if ((await exercise(input)) === 'accepted') accepted++;
        },
      ),
      { numRuns: RUNS.mutations },
    );
    expect(accepted).toBeGreaterThan(0); // some mutations only touch data bytes
  });

  it('headers whose numbers lie (offsets, shapes, lengths edited)', async () => {
    let accepted = 0;
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(
        validFileArb,
        fc.array(fc.tuple(fc.nat(), fc.oneof(fc.integer({ min: -3, max: 300 }), fc.constantFrom(2 ** 53, 1e300, 0.5, -0))), { maxLength: 4 }),
        fc.option(fc.integer({ min: -8, max: 8 }), { nil: undefined }),
        async (file, edits, lengthSkew) => {
          const n = Number(new DataView(file.buffer).getBigUint64(0, true));
          const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, Record<string, number[]>>;
          const numbers: { arr: number[]; i: number }[] = [];
          for (const [name, entry] of Object.entries(header)) {
            if (name === '__metadata__') continue;
            for (const key of ['shape', 'data_offsets']) entry[key]!.forEach((_, i) => numbers.push({ arr: entry[key]!, i }));
          }
          for (const [at, value] of edits) {
            const slot = numbers[at % Math.max(1, numbers.length)];
            if (slot) slot.arr[slot.i] = value;
          }
          const data = file.subarray(8 + n);
          const json = JSON.stringify(header);
          const claimed = lengthSkew === undefined ? undefined : BigInt(Math.max(0, new TextEncoder().encode(json).length + lengthSkew));
          if ((await exercise(withHeader(json, data, claimed))) === 'accepted') accepted++;
          else rejected++;
        },
      ),
      { numRuns: RUNS.lies },
    );
    expect(accepted).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });

  it('random JSON headers', async () => {
    const entryArb = fc.record(
      {
        dtype: fc.oneof(fc.constantFrom(...DTYPES), fc.string(), fc.integer(), fc.constant(null)),
        shape: fc.oneof(
          fc.array(fc.oneof(fc.integer({ min: -2, max: 12 }), fc.double(), fc.string({ maxLength: 2 }), fc.constant(2 ** 53)), { maxLength: 4 }),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        data_offsets: fc.oneof(
          fc.tuple(fc.integer({ min: -4, max: 400 }), fc.integer({ min: -4, max: 400 })),
          fc.array(fc.integer({ min: -4, max: 400 }), { maxLength: 3 }),
          fc.jsonValue({ maxDepth: 2 }),
        ),
      },
      { requiredKeys: [] },
    );
    const headerArb = fc.oneof(
      fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(entryArb, fc.jsonValue({ maxDepth: 2 })), { maxKeys: 4 }),
      fc.record({ __metadata__: fc.oneof(fc.dictionary(fc.string(), fc.string()), fc.jsonValue({ maxDepth: 2 })) }),
      fc.jsonValue({ maxDepth: 3 }),
    );
    await fc.assert(
      fc.asyncProperty(headerArb, fc.uint8Array({ maxLength: 400 }), async (header, data) => {
        await exercise(withHeader(JSON.stringify(header) ?? '', data));
      }),
      { numRuns: RUNS.headers },
    );
  });

  it('noise: random bytes and random length fields', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.option(fc.oneof(fc.bigInt({ min: 0n, max: 400n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })), { nil: undefined }), async (bytes, length) => {
        const input = bytes.slice();
        if (length !== undefined && input.length >= 8) new DataView(input.buffer).setBigUint64(0, length, true);
        await exercise(input);
      }),
      { numRuns: RUNS.noise },
    );
  });
});
