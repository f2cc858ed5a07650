import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { f16BitsToF32, f32ToF16Bits } from '../../src/util/f16';
import { nodeModelDir, openFileSource } from '../../src/formats/nodeByteSource';
import {
  blobSource,
  bytesSource,
  parseSafetensorsIndex,
  readSafetensorsHeader,
  readTensor,
  SafetensorsError,
  SafetensorsWeights,
  writeSafetensors,
  type TensorToWrite,
} from '../../src/formats/safetensors';
import { Rng } from '../helpers/random';

const enc = new TextEncoder();

/** bf16 bits of values that bf16 represents exactly. */
function bf16Bits(values: number[]): Uint16Array {
  const f = new Float32Array(values);
  const u = new Uint32Array(f.buffer);
  return Uint16Array.from(u, (x) => x >>> 16);
}

/** A file whose header is the given JSON text (padded) followed by `dataBytes` bytes. */
function rawFile(headerJson: string, dataBytes: number): Uint8Array {
  const h = enc.encode(headerJson);
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  for (let i = 0; i < dataBytes; i++) out[8 + h.length + i] = i & 0xff;
  return out;
}

async function expectError(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  const err = await readSafetensorsHeader(bytesSource(bytes)).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SafetensorsError);
  expect((err as Error).message).toMatch(pattern);
}

function sampleTensors(): TensorToWrite[] {
  const rng = new Rng(7);
  const f32 = Float32Array.from({ length: 6 }, () => rng.uniform());
  return [
    { name: 'w.f32', dtype: 'F32', shape: [2, 3], data: f32 },
    { name: 'b.f16', dtype: 'F16', shape: [5], data: Uint16Array.from([1, -2, 0.5, 65504, -0.000061035156], f32ToF16Bits) },
    { name: 'a.bf16', dtype: 'BF16', shape: [3, 1], data: bf16Bits([1.5, -3.25, 1024]) },
    { name: 'ids', dtype: 'I64', shape: [2], data: new BigInt64Array([5n, -7n]) },
    { name: 'empty', dtype: 'U8', shape: [0, 4], data: new Uint8Array(0) },
    { name: 'scalar', dtype: 'F32', shape: [], data: new Float32Array([42]) },
  ];
}

describe('safetensors writer and reader', () => {
  it('round-trips tensors, dtypes, shapes and metadata', async () => {
    const tensors = sampleTensors();
    const file = writeSafetensors(tensors, { format: 'pt', note: 'ünïcode' });
    const src = bytesSource(file);
    const header = await readSafetensorsHeader(src);
    expect(header.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    expect([...header.tensors.keys()].sort()).toEqual(tensors.map((t) => t.name).sort());
    for (const t of tensors) {
      const info = header.tensors.get(t.name)!;
      expect(info.dtype).toBe(t.dtype);
      expect(info.shape).toEqual(t.shape);
      const raw = await readTensor(src, header, t.name, { as: 'raw' });
      expect(raw).toEqual(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    const w = tensors[0]!.data as Float32Array;
    expect(await readTensor(src, header, 'w.f32', { as: 'f32' })).toEqual(w);
    expect(await readTensor(src, header, 'w.f32', { as: 'f16' })).toEqual(Uint16Array.from(w, f32ToF16Bits));
    expect(Array.from(await readTensor(src, header, 'b.f16', { as: 'f32' }))).toEqual([1, -2, 0.5, 65504, f16BitsToF32(f32ToF16Bits(-0.000061035156))]);
    expect(await readTensor(src, header, 'b.f16', { as: 'f16' })).toEqual(tensors[1]!.data);
    expect(Array.from(await readTensor(src, header, 'a.bf16', { as: 'f32' }))).toEqual([1.5, -3.25, 1024]);
    expect(Array.from(await readTensor(src, header, 'a.bf16', { as: 'f16' }), f16BitsToF32)).toEqual([1.5, -3.25, 1024]);
    expect(Array.from(await readTensor(src, header, 'scalar', { as: 'f32' }))).toEqual([42]);
    expect((await readTensor(src, header, 'empty', { as: 'raw' })).length).toBe(0);
  });

  it('lays the file out like the reference implementation', async () => {
    // What safetensors' save_file writes for {"a": tensor([1., 2.])}: compact JSON with dtype,
    // shape, data_offsets in that order, space-padded to a multiple of 8.
    const file = writeSafetensors([{ name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]);
    const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const expected = new Uint8Array(8 + 56 + 8);
    new DataView(expected.buffer).setBigUint64(0, 56n, true);
    expected.set(enc.encode(json + ' '.repeat(56 - json.length)), 8);
    expected.set(new Uint8Array(new Float32Array([1, 2]).buffer), 64);
    expect(file).toEqual(expected);

    // Larger elements first, then by name: every tensor is aligned to its element size.
    const header = await readSafetensorsHeader(bytesSource(writeSafetensors(sampleTensors())));
    expect(header.headerBytes % 8).toBe(0);
    const order = [...header.tensors.values()].filter((t) => t.byteLength > 0).map((t) => t.name);
    expect(order).toEqual(['ids', 'scalar', 'w.f32', 'a.bf16', 'b.f16']);
    for (const t of header.tensors.values()) expect(t.fileOffset % { F32: 4, F16: 2, BF16: 2, I64: 8, U8: 1 }[t.dtype as 'F32']!).toBe(0);
  });

  it('keeps awkward names intact', async () => {
    const names = ['__proto__', '0', 'constructor', 'a"b\\c', 'ünï/cøde 🤖'];
    const file = writeSafetensors(names.map((name, i) => ({ name, dtype: 'F32', shape: [1], data: new Float32Array([i]) })), {
      __proto__: 'x',
    } as unknown as Record<string, string>);
    const src = bytesSource(file);
    const header = await readSafetensorsHeader(src);
    for (const [i, name] of names.entries()) expect(Array.from(await readTensor(src, header, name, { as: 'f32' }))).toEqual([i]);
  });

  it('reads element ranges', async () => {
    const data = Float32Array.from({ length: 37 }, (_, i) => i * 0.5);
    const file = writeSafetensors([
      { name: 'x', dtype: 'F32', shape: [37], data },
      { name: 'y', dtype: 'BF16', shape: [4], data: bf16Bits([1, 2, 3, 4]) },
    ]);
    const src = bytesSource(file);
    const header = await readSafetensorsHeader(src);
    expect(await readTensor(src, header, 'x', { as: 'f32', elementOffset: 5, elementCount: 11 })).toEqual(data.slice(5, 16));
    expect(await readTensor(src, header, 'x', { as: 'f32', elementOffset: 30 })).toEqual(data.slice(30));
    expect(Array.from(await readTensor(src, header, 'y', { as: 'f32', elementOffset: 1, elementCount: 2 }))).toEqual([2, 3]);
    await expect(readTensor(src, header, 'x', { as: 'f32', elementOffset: 30, elementCount: 8 })).rejects.toThrow(/outside its 37 elements/);
    await expect(readTensor(src, header, 'x', { as: 'f32', elementOffset: -1 })).rejects.toBeInstanceOf(SafetensorsError);
  });

  it('reports integer tensors but reads them only raw', async () => {
    const src = bytesSource(writeSafetensors(sampleTensors()));
    const header = await readSafetensorsHeader(src);
    await expect(readTensor(src, header, 'ids', { as: 'f32' })).rejects.toThrow(/dtype I64, which cannot be read as f32/);
    await expect(readTensor(src, header, 'nope', { as: 'f32' })).rejects.toThrow(/no tensor named nope/);
  });

  it('validates what it writes', () => {
    expect(() => writeSafetensors([{ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }])).toThrow(/needs 12 bytes, data has 8/);
    expect(() =>
      writeSafetensors([
        { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
        { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
      ]),
    ).toThrow(/duplicate tensor name x/);
    expect(() => writeSafetensors([{ name: '__metadata__', dtype: 'F32', shape: [1], data: new Float32Array(1) }])).toThrow(SafetensorsError);
    expect(() => writeSafetensors([{ name: 'x', dtype: 'F33' as 'F32', shape: [1], data: new Float32Array(1) }])).toThrow(/unknown dtype/);
    expect(() => writeSafetensors([{ name: 'x', dtype: 'F32', shape: [-1], data: new Float32Array(1) }])).toThrow(/non-negative integer/);
  });
});

describe('safetensors header validation', () => {
  const good = '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';

  it('accepts a hand-made header', async () => {
    const header = await readSafetensorsHeader(bytesSource(rawFile(good, 8)));
    expect(header.tensors.get('x')).toMatchObject({ dtype: 'F32', shape: [2], elements: 2, byteLength: 8, fileOffset: 8 + good.length });
  });

  it('converts tensors that start at odd offsets (other writers do not align)', async () => {
    // Header of odd length: the data section starts at an odd offset, so typed views cannot be used.
    const json = '{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]},"f":{"dtype":"F32","shape":[2],"data_offsets":[10,18]}} ';
    const file = rawFile(json, 18);
    const data = new DataView(file.buffer, 8 + json.length);
    expect((8 + json.length) % 2).toBe(1);
    const src = bytesSource(file);
    const header = await readSafetensorsHeader(src);
    const h = [0, 1, 2].map((i) => f16BitsToF32(data.getUint16(2 * i, true)));
    const b = [0, 1].map((i) => new Float32Array(new Uint32Array([data.getUint16(6 + 2 * i, true) << 16]).buffer)[0]!);
    const f = [0, 1].map((i) => data.getFloat32(10 + 4 * i, true));
    expect(Array.from(await readTensor(src, header, 'h', { as: 'f32' }))).toEqual(h);
    expect(Array.from(await readTensor(src, header, 'b', { as: 'f32' }))).toEqual(b);
    expect(Array.from(await readTensor(src, header, 'f', { as: 'f32' }))).toEqual(f);
    expect(Array.from(await readTensor(src, header, 'f', { as: 'f16' }))).toEqual(f.map(f32ToF16Bits));
    expect(Array.from(await readTensor(src, header, 'h', { as: 'f16', elementOffset: 1 }))).toEqual([data.getUint16(2, true), data.getUint16(4, true)]);
  });

  it('rejects a file too short for the length field', async () => {
    await expectError(new Uint8Array(5), /5 bytes, too small/);
  });

  it('rejects a header length larger than the file (truncated file)', async () => {
    const f = rawFile(good, 8);
    await expectError(f.subarray(0, 30), /header length 54 exceeds the 22 bytes/);
  });

  it('rejects absurd header lengths', async () => {
    const f = rawFile(good, 8);
    new DataView(f.buffer).setBigUint64(0, 2n ** 63n + 5n, true);
    await expectError(f, /exceeds the 100000000-byte limit/);
    new DataView(f.buffer).setBigUint64(0, 0n, true);
    await expectError(f, /header length is 0/);
  });

  it('rejects a header that is not JSON, not UTF-8, or not an object', async () => {
    await expectError(rawFile('{"x": {"dtype": "F32",', 0), /not valid JSON/);
    const bad = rawFile('{"x":1}', 0);
    bad[9] = 0xff;
    await expectError(bad, /not valid UTF-8/);
    await expectError(rawFile('[1, 2]', 0), /an array, not a JSON object/);
    await expectError(rawFile('null    ', 0), /null, not a JSON object/);
  });

  it('rejects bad tensor entries, naming the tensor', async () => {
    const cases: [string, RegExp][] = [
      ['{"x":5}', /tensor x: entry is number 5, not an object/],
      ['{"x":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}}', /tensor x: unknown dtype the string "F17"/],
      ['{"x":{"shape":[2],"data_offsets":[0,8]}}', /tensor x: unknown dtype missing/],
      ['{"x":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}', /tensor x: shape is number 2, not a list/],
      ['{"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', /tensor x: shape entry number -2 is not a non-negative integer/],
      ['{"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}', /shape entry number 1.5/],
      ['{"x":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}', /shape entry the string "2"/],
      ['{"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', /data_offsets is an array, not \[begin, end\]/],
      ['{"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', /data_offsets \[8, 0\] end before they begin/],
      ['{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8.5]}}', /data_offsets entry number 8.5/],
      // A header that lies about the shape: 3 floats do not fit in 8 bytes.
      ['{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', /F32 \[3\] needs 12 bytes but data_offsets \[0, 8\] hold 8/],
      // ... or about the offsets: past the end of the data section.
      ['{"x":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', /data_offsets \[4, 12\] run past the 8-byte data section/],
      ['{"x":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}', /is too large/],
      ['{"__metadata__":{"format":1}}', /__metadata__.format is number 1, not a string/],
      ['{"__metadata__":[]}', /__metadata__ is an array/],
    ];
    for (const [json, pattern] of cases) await expectError(rawFile(json, 8), pattern);
  });

  it('rejects overlapping tensors', async () => {
    await expectError(
      rawFile('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2],"data_offsets":[6,10]}}', 16),
      /tensors a and b overlap/,
    );
  });

  it('rejects a written file that was truncated', async () => {
    const file = writeSafetensors(sampleTensors());
    await expectError(file.subarray(0, file.length - 3), /run past the .*-byte data section \(file truncated\?\)/);
  });

  it('refuses to read a tensor from a different source than the header came from', async () => {
    const file = writeSafetensors(sampleTensors());
    const header = await readSafetensorsHeader(bytesSource(file));
    await expect(readTensor(bytesSource(file.subarray(0, file.length - 1)), header, 'w.f32', { as: 'f32' })).rejects.toThrow(
      /header was read from a/,
    );
  });
});

describe('byte sources', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'whittle-st-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('Blob and file sources read the same tensors as the bytes source', async () => {
    const file = writeSafetensors(sampleTensors(), { format: 'pt' });
    const path = join(dir, 'm.safetensors');
    await writeFile(path, file);
    const fileSrc = await openFileSource(path);
    try {
      for (const src of [blobSource(new Blob([file.slice()])), fileSrc]) {
        expect(src.size).toBe(file.length);
        const header = await readSafetensorsHeader(src);
        expect(header.metadata).toEqual({ format: 'pt' });
        for (const t of sampleTensors()) {
          expect(await readTensor(src, header, t.name, { as: 'raw' })).toEqual(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
        }
        await expect(src.read(file.length - 2, 4)).rejects.toBeInstanceOf(SafetensorsError);
      }
    } finally {
      await fileSrc.close();
    }
  });

  it('a source that returns too few bytes is a SafetensorsError, not a crash', async () => {
    const file = writeSafetensors(sampleTensors());
    const short = (cut: number) => ({ size: file.length, read: (o: number, n: number) => Promise.resolve(file.subarray(o, o + Math.max(0, n - cut))) });
    await expect(readSafetensorsHeader(short(3))).rejects.toThrow(/header length: short read \(5 of 8 bytes at 0\)/);
    const header = await readSafetensorsHeader(bytesSource(file));
    await expect(readTensor(short(1), header, 'w.f32', { as: 'f32' })).rejects.toThrow(/tensor w.f32: short read/);
  });

  it('sharded weights resolve through the index', async () => {
    const shard1 = writeSafetensors([{ name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]);
    const shard2 = writeSafetensors([
      { name: 'b', dtype: 'BF16', shape: [1], data: bf16Bits([3]) },
      { name: 'c', dtype: 'F16', shape: [1], data: Uint16Array.of(f32ToF16Bits(4)) },
    ]);
    const index = parseSafetensorsIndex({
      metadata: { total_size: 14 },
      weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' },
    });
    expect(index.files).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    const files = [
      { name: 'model-00001-of-00002.safetensors', source: bytesSource(shard1) },
      { name: 'model-00002-of-00002.safetensors', source: bytesSource(shard2) },
    ];
    const weights = await SafetensorsWeights.open(files, index);
    expect(weights.tensors.get('b')!.file).toBe('model-00002-of-00002.safetensors');
    expect(Array.from(await weights.read('a', { as: 'f32' }))).toEqual([1, 2]);
    expect(Array.from(await weights.read('b', { as: 'f32' }))).toEqual([3]);
    expect(Array.from(await weights.read('c', { as: 'f32' }))).toEqual([4]);
    await expect(weights.read('d', { as: 'f32' })).rejects.toThrow(/no tensor named d/);

    const wrong = parseSafetensorsIndex({ weight_map: { a: 'model-00002-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } });
    await expect(SafetensorsWeights.open(files, wrong)).rejects.toThrow(/puts a in model-00002-of-00002.safetensors but it is in model-00001/);
    const missing = parseSafetensorsIndex({ weight_map: { z: 'model-00001-of-00002.safetensors' } });
    await expect(SafetensorsWeights.open(files, missing)).rejects.toThrow(/puts z in .* but no file holds it/);
    await expect(SafetensorsWeights.open([files[0]!, { name: 'again.safetensors', source: bytesSource(shard1) }])).rejects.toThrow(
      /tensor a is in both/,
    );
    const truncated = [files[0]!, { name: 'model-00002-of-00002.safetensors', source: bytesSource(shard2.subarray(0, 20)) }];
    await expect(SafetensorsWeights.open(truncated, index)).rejects.toThrow(/^model-00002-of-00002.safetensors: header length/);
  });

  it('rejects malformed indexes', () => {
    expect(() => parseSafetensorsIndex([])).toThrow(/not a JSON object/);
    expect(() => parseSafetensorsIndex({})).toThrow(/weight_map is missing/);
    expect(() => parseSafetensorsIndex({ weight_map: { a: 3 } })).toThrow(/weight_map.a is number 3/);
    expect(() => parseSafetensorsIndex({ weight_map: { a: '../secret.safetensors' } })).toThrow(/not a file in the model folder/);
    expect(() => parseSafetensorsIndex({ weight_map: {} })).toThrow(/weight_map is empty/);
  });

  it('opens a model folder on disk', async () => {
    const sub = join(dir, 'model');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(sub);
    await writeFile(join(sub, 'model.safetensors'), writeSafetensors([{ name: 'a', dtype: 'F32', shape: [1], data: new Float32Array([9]) }]));
    const md = await nodeModelDir(sub);
    try {
      expect(md.fileNames).toEqual(['model.safetensors']);
      const src = await md.open('model.safetensors');
      const header = await readSafetensorsHeader(src);
      expect(Array.from(await readTensor(src, header, 'a', { as: 'f32' }))).toEqual([9]);
    } finally {
      await md.close();
    }
  });
});
