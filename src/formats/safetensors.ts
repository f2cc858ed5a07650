// safetensors reader and writer (https://github.com/huggingface/safetensors, format section).
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data section.
// Reading is random-access through a ByteSource so a multi-gigabyte model is streamed tensor by
// tensor and never held whole in memory. Every inconsistency in a header is a SafetensorsError
// naming the tensor or field: files come from users and from the network.

import { bf16BitsToF32Array, fromF16Array, toF16Array } from '../util/f16';

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
  constructor(
    message: string,
    /** The tensor the problem concerns, when there is one. */
    readonly tensor?: string,
  ) {
    super(message);
  }
}

/** Bytes per element of every dtype the reference implementation writes (sub-byte types excluded). */
export const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

/** The dtypes readTensor can convert to f32/f16; the others are reported and readable as 'raw'. */
export const FLOAT_DTYPES: readonly SafetensorsDtype[] = ['F32', 'F16', 'BF16'];

export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, value);
}

/** Same bound as the reference implementation: a bigger header is corrupt or hostile. */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Random-access bytes: a file, a Blob, a buffer. `read` must return exactly `length` bytes; the
 * returned array may be a view into shared memory, so callers must not modify it.
 */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

function checkRange(size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new SafetensorsError(`invalid read of ${length} bytes at ${offset}`);
  }
  if (offset + length > size) {
    throw new SafetensorsError(`read of ${length} bytes at ${offset} runs past the end of the ${size}-byte file`);
  }
}

/** A source over bytes already in memory; reads are views, not copies. */
export function bytesSource(data: Uint8Array): ByteSource {
  return {
    size: data.byteLength,
    read(offset, length) {
      checkRange(data.byteLength, offset, length);
      return Promise.resolve(data.subarray(offset, offset + length));
    },
  };
}

/** A source over a browser Blob or File: each read slices only the bytes it needs. */
export function blobSource(blob: Blob): ByteSource {
  return {
    size: blob.size,
    async read(offset, length) {
      checkRange(blob.size, offset, length);
      const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      if (bytes.byteLength !== length) {
        throw new SafetensorsError(`short read: wanted ${length} bytes at ${offset}, got ${bytes.byteLength}`);
      }
      return bytes;
    },
  };
}

/** src.read with the length checked, since ByteSources are user-supplied. */
async function readExact(src: ByteSource, offset: number, length: number, what: string, tensor?: string): Promise<Uint8Array> {
  const bytes = await src.read(offset, length);
  if (bytes.byteLength !== length) {
    throw new SafetensorsError(`${what}: short read (${bytes.byteLength} of ${length} bytes at ${offset})`, tensor);
  }
  return bytes;
}

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Product of the shape (1 for a scalar). */
  elements: number;
  byteLength: number;
  /** Absolute offset of the first byte in the file. */
  fileOffset: number;
}

export interface SafetensorsHeader {
  fileSize: number;
  /** N, the JSON length (padding included). */
  headerBytes: number;
  /** 8 + N: where the data section starts. */
  dataStart: number;
  metadata: Record<string, string>;
  /** In file order (by offset). */
  tensors: Map<string, TensorInfo>;
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function elementCount(shape: readonly number[], what: string, tensor?: string): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) throw new SafetensorsError(`${what}: shape [${shape.join(', ')}] is too large`, tensor);
  }
  return n;
}

function parseShape(value: unknown, name: string): number[] {
  if (!Array.isArray(value)) throw new SafetensorsError(`tensor ${name}: shape is ${describe(value)}, not a list`, name);
  for (const d of value) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new SafetensorsError(`tensor ${name}: shape entry ${describe(d)} is not a non-negative integer`, name);
    }
  }
  return value as number[];
}

function parseTensorEntry(name: string, entry: unknown, dataBytes: number, dataStart: number): TensorInfo {
  if (!isPlainObject(entry)) throw new SafetensorsError(`tensor ${name}: entry is ${describe(entry)}, not an object`, name);
  const { dtype, shape: rawShape, data_offsets: offsets } = entry;
  if (!isSafetensorsDtype(dtype)) throw new SafetensorsError(`tensor ${name}: unknown dtype ${describe(dtype)}`, name);
  const shape = parseShape(rawShape, name);
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    throw new SafetensorsError(`tensor ${name}: data_offsets is ${describe(offsets)}, not [begin, end]`, name);
  }
  const [begin, end] = offsets as unknown[];
  for (const o of [begin, end]) {
    if (typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0) {
      throw new SafetensorsError(`tensor ${name}: data_offsets entry ${describe(o)} is not a non-negative integer`, name);
    }
  }
  const b = begin as number;
  const e = end as number;
  if (e < b) throw new SafetensorsError(`tensor ${name}: data_offsets [${b}, ${e}] end before they begin`, name);
  const elements = elementCount(shape, `tensor ${name}`, name);
  const byteLength = elements * DTYPE_BYTES[dtype];
  if (e - b !== byteLength) {
    throw new SafetensorsError(
      `tensor ${name}: ${dtype} [${shape.join(', ')}] needs ${byteLength} bytes but data_offsets [${b}, ${e}] hold ${e - b}`,
      name,
    );
  }
  if (e > dataBytes) {
    throw new SafetensorsError(
      `tensor ${name}: data_offsets [${b}, ${e}] run past the ${dataBytes}-byte data section (file truncated?)`,
      name,
    );
  }
  return { name, dtype, shape: [...shape], elements, byteLength, fileOffset: dataStart + b };
}

/**
 * Validates a header's JSON against the file it came from. Exposed for tests and for sources
 * that already hold the header bytes; most callers want readSafetensorsHeader.
 */
export function parseSafetensorsHeader(json: Uint8Array, fileSize: number): SafetensorsHeader {
  const headerBytes = json.byteLength;
  const dataStart = 8 + headerBytes;
  const dataBytes = fileSize - dataStart;
  if (dataBytes < 0) throw new SafetensorsError(`header of ${headerBytes} bytes does not fit in a ${fileSize}-byte file`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    throw new SafetensorsError('header is not valid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(parsed)) throw new SafetensorsError(`header is ${describe(parsed)}, not a JSON object`);

  const metadata: Record<string, string> = {};
  const infos: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) throw new SafetensorsError(`__metadata__ is ${describe(entry)}, not an object`);
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw new SafetensorsError(`__metadata__.${k} is ${describe(v)}, not a string`);
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    infos.push(parseTensorEntry(name, entry, dataBytes, dataStart));
  }

  infos.sort((a, b) => a.fileOffset - b.fileOffset || a.byteLength - b.byteLength);
  for (let i = 1; i < infos.length; i++) {
    const prev = infos[i - 1]!;
    const cur = infos[i]!;
    if (cur.fileOffset < prev.fileOffset + prev.byteLength) {
      throw new SafetensorsError(`tensors ${prev.name} and ${cur.name} overlap in the data section`, cur.name);
    }
  }
  const tensors = new Map<string, TensorInfo>();
  for (const info of infos) tensors.set(info.name, info);
  return { fileSize, headerBytes, dataStart, metadata, tensors };
}

/** Reads and validates the header: 8 + N bytes, whatever the file size. */
export async function readSafetensorsHeader(
  src: ByteSource,
  options: { maxHeaderBytes?: number } = {},
): Promise<SafetensorsHeader> {
  const limit = options.maxHeaderBytes ?? MAX_HEADER_BYTES;
  if (src.size < 8) throw new SafetensorsError(`file is ${src.size} bytes, too small for the 8-byte header length`);
  const prefix = await readExact(src, 0, 8, 'header length');
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  if (high !== 0 || low > limit) {
    const n = BigInt(high) * 2n ** 32n + BigInt(low);
    throw new SafetensorsError(`header length ${n} exceeds the ${limit}-byte limit`);
  }
  if (low > src.size - 8) {
    throw new SafetensorsError(`header length ${low} exceeds the ${src.size - 8} bytes after the length field (file truncated?)`);
  }
  if (low === 0) throw new SafetensorsError('header length is 0');
  return parseSafetensorsHeader(await readExact(src, 8, low, 'header'), src.size);
}

export type ReadAs = 'f32' | 'f16' | 'raw';

export interface ReadTensorOptions<A extends ReadAs = ReadAs> {
  /**
   * 'f32': Float32Array from F32/F16/BF16. 'f16': Uint16Array of IEEE half bits from F32/F16/BF16
   * (F32 and BF16 round to nearest even; values beyond the f16 range become +-Infinity).
   * 'raw': the stored bytes (any dtype), little-endian as in the file.
   */
  as: A;
  /** Read only elements [elementOffset, elementOffset + elementCount) of the flattened tensor. */
  elementOffset?: number;
  elementCount?: number;
}

export type ReadResult<A extends ReadAs> = A extends 'f32' ? Float32Array : A extends 'f16' ? Uint16Array : Uint8Array;

function alignedCopy(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}

/**
 * Reads one tensor (or a contiguous element range of it, for uploads split across GPU buffers).
 * The result is always a fresh array that the caller owns.
 */
export async function readTensor<A extends ReadAs>(
  src: ByteSource,
  header: SafetensorsHeader,
  name: string,
  options: ReadTensorOptions<A>,
): Promise<ReadResult<A>> {
  const info = header.tensors.get(name);
  if (!info) throw new SafetensorsError(`no tensor named ${name} in this file`, name);
  const start = options.elementOffset ?? 0;
  const count = options.elementCount ?? info.elements - start;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > info.elements) {
    throw new SafetensorsError(`tensor ${name}: element range [${start}, ${start + count}) is outside its ${info.elements} elements`, name);
  }
  const size = DTYPE_BYTES[info.dtype];
  const as: ReadAs = options.as;
  if (as !== 'raw' && !FLOAT_DTYPES.includes(info.dtype)) {
    throw new SafetensorsError(`tensor ${name} has dtype ${info.dtype}, which cannot be read as ${as}; read it as 'raw'`, name);
  }
  if (src.size !== header.fileSize) {
    throw new SafetensorsError(`source is ${src.size} bytes but the header was read from a ${header.fileSize}-byte file`, name);
  }
  const bytes = await readExact(src, info.fileOffset + start * size, count * size, `tensor ${name}`, name);
  // Conversions read through a typed view and write a new array, so they can use the source bytes
  // in place when aligned; identity reads copy, because the caller owns the result.
  const view = <T>(make: (b: ArrayBuffer, offset: number, n: number) => T, align: number): T =>
    bytes.byteOffset % align === 0 && bytes.buffer instanceof ArrayBuffer
      ? make(bytes.buffer, bytes.byteOffset, count)
      : make(alignedCopy(bytes), 0, count);
  const f32View = () => view((b, o, n) => new Float32Array(b, o, n), 4);
  const u16View = () => view((b, o, n) => new Uint16Array(b, o, n), 2);
  let result: Float32Array | Uint16Array | Uint8Array;
  if (as === 'raw') {
    result = new Uint8Array(alignedCopy(bytes));
  } else if (info.dtype === 'F32') {
    result = as === 'f32' ? new Float32Array(alignedCopy(bytes)) : toF16Array(f32View());
  } else if (info.dtype === 'F16') {
    result = as === 'f16' ? new Uint16Array(alignedCopy(bytes)) : fromF16Array(u16View());
  } else {
    const f32 = bf16BitsToF32Array(u16View());
    result = as === 'f32' ? f32 : toF16Array(f32);
  }
  return result as ReadResult<A>;
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
  /** Exactly product(shape) * dtype size bytes, little-endian. */
  data: ArrayBufferView;
}

/**
 * Serialises tensors into one safetensors file. Like the reference implementation, tensors are
 * ordered by element size (largest first) then by name, so every tensor starts at a multiple of
 * its element size (the header is space-padded to 8 bytes), and typed-array views need no copy.
 */
export function writeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === '__metadata__') throw new SafetensorsError('a tensor cannot be named __metadata__', t.name);
    if (seen.has(t.name)) throw new SafetensorsError(`duplicate tensor name ${t.name}`, t.name);
    seen.add(t.name);
    if (!isSafetensorsDtype(t.dtype)) throw new SafetensorsError(`tensor ${t.name}: unknown dtype ${describe(t.dtype)}`, t.name);
    parseShape(t.shape, t.name);
    const want = elementCount(t.shape, `tensor ${t.name}`, t.name) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== want) {
      throw new SafetensorsError(
        `tensor ${t.name}: ${t.dtype} [${t.shape.join(', ')}] needs ${want} bytes, data has ${t.data.byteLength}`,
        t.name,
      );
    }
  }
  const ordered = [...tensors].sort(
    (a, b) => DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );

  // Built as text rather than through an object so names such as "__proto__" or "0" keep their
  // meaning and their order.
  const entries: string[] = [];
  if (metadata) {
    const meta: string[] = [];
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(`metadata ${k} is ${describe(v)}, not a string`);
      meta.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    entries.push(`"__metadata__":{${meta.join(',')}}`);
  }
  let offset = 0;
  for (const t of ordered) {
    const end = offset + t.data.byteLength;
    entries.push(
      `${JSON.stringify(t.name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = new TextEncoder().encode(`{${entries.join(',')}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded > MAX_HEADER_BYTES) throw new SafetensorsError(`header would be ${padded} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);

  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + padded);
  let at = 8 + padded;
  for (const t of ordered) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sharded models: model.safetensors.index.json plus model-0000i-of-0000n.safetensors

export interface SafetensorsIndex {
  /** tensor name -> shard file name */
  weightMap: Map<string, string>;
  /** Shard file names, in first-mention order. */
  files: string[];
  metadata: Record<string, unknown>;
}

function checkShardName(file: string, tensor: string): void {
  const parts = file.split(/[\\/]/);
  if (file === '' || file.startsWith('/') || parts.includes('..') || /^[a-zA-Z]:/.test(file)) {
    throw new SafetensorsError(`weight_map sends ${tensor} to ${JSON.stringify(file)}, which is not a file in the model folder`, tensor);
  }
}

export function parseSafetensorsIndex(json: unknown): SafetensorsIndex {
  if (!isPlainObject(json)) throw new SafetensorsError(`safetensors index is ${describe(json)}, not a JSON object`);
  const map = json.weight_map;
  if (!isPlainObject(map)) throw new SafetensorsError(`safetensors index: weight_map is ${describe(map)}, not an object`);
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  for (const [tensor, file] of Object.entries(map)) {
    if (typeof file !== 'string') throw new SafetensorsError(`weight_map.${tensor} is ${describe(file)}, not a file name`, tensor);
    checkShardName(file, tensor);
    weightMap.set(tensor, file);
    if (!files.includes(file)) files.push(file);
  }
  if (weightMap.size === 0) throw new SafetensorsError('safetensors index: weight_map is empty');
  const metadata = isPlainObject(json.metadata) ? json.metadata : {};
  return { weightMap, files, metadata };
}

export interface WeightInfo extends TensorInfo {
  /** The file that holds the tensor. */
  file: string;
}

/** The tensors of one or several safetensors files, addressed by name. */
export class SafetensorsWeights {
  private constructor(
    private readonly shards: Map<string, { source: ByteSource; header: SafetensorsHeader }>,
    readonly tensors: Map<string, WeightInfo>,
  ) {}

  /**
   * Opens shards and reads their headers. With an index, every tensor the weight_map names must
   * be in the shard it points to; tensors a shard holds but the map omits are still available.
   * A tensor in two files is an error either way.
   */
  static async open(files: readonly { name: string; source: ByteSource }[], index?: SafetensorsIndex): Promise<SafetensorsWeights> {
    if (files.length === 0) throw new SafetensorsError('no safetensors files given');
    const shards = new Map<string, { source: ByteSource; header: SafetensorsHeader }>();
    const tensors = new Map<string, WeightInfo>();
    for (const { name, source } of files) {
      let header: SafetensorsHeader;
      try {
        header = await readSafetensorsHeader(source);
      } catch (e) {
        if (e instanceof SafetensorsError) throw new SafetensorsError(`${name}: ${e.message}`, e.tensor);
        throw e;
      }
      shards.set(name, { source, header });
      for (const info of header.tensors.values()) {
        const other = tensors.get(info.name);
        if (other) throw new SafetensorsError(`tensor ${info.name} is in both ${other.file} and ${name}`, info.name);
        tensors.set(info.name, { ...info, file: name });
      }
    }
    if (index) {
      for (const file of index.files) {
        if (!shards.has(file)) throw new SafetensorsError(`the index lists ${file} but that file was not provided`);
      }
      for (const [tensor, file] of index.weightMap) {
        const found = tensors.get(tensor);
        if (!found) throw new SafetensorsError(`the index puts ${tensor} in ${file} but no file holds it`, tensor);
        if (found.file !== file) throw new SafetensorsError(`the index puts ${tensor} in ${file} but it is in ${found.file}`, tensor);
      }
    }
    return new SafetensorsWeights(shards, tensors);
  }

  get files(): string[] {
    return [...this.shards.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  read<A extends ReadAs>(name: string, options: ReadTensorOptions<A>): Promise<ReadResult<A>> {
    const info = this.tensors.get(name);
    if (!info) return Promise.reject(new SafetensorsError(`no tensor named ${name} in the model's weights`, name));
    const shard = this.shards.get(info.file)!;
    return readTensor(shard.source, shard.header, name, options);
  }
}
