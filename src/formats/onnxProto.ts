// A minimal protobuf writer for the handful of ONNX messages a model file needs (ModelProto,
// GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto,
// TensorShapeProto, OperatorSetIdProto, StringStringEntryProto). Field numbers are those of
// onnx/onnx.proto. Nested messages are kept as lists of chunks and concatenated once at the
// end, so a multi-hundred-megabyte initializer is copied into the output exactly once.

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** Protobuf encoder: append fields, then `finish()`. */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private scratch: number[] = [];
  /** Bytes written so far. */
  length = 0;

  private flushScratch(): void {
    if (this.scratch.length === 0) return;
    const bytes = Uint8Array.from(this.scratch);
    this.scratch = [];
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private rawVarint(value: number | bigint): void {
    // Negative int64 values are written as their 64-bit two's complement (10 bytes), as protobuf does.
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new Error(`protobuf varint ${value} is not a safe integer`);
    let v = BigInt.asUintN(64, BigInt(value));
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      this.scratch.push(byte);
    } while (v !== 0n);
  }

  private tag(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  /** int32/int64/enum/bool field. */
  varint(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.rawVarint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    for (const x of b) this.scratch.push(x);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.rawVarint(data.byteLength);
    this.flushScratch();
    if (data.byteLength > 0) {
      this.chunks.push(data);
      this.length += data.byteLength;
    }
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** Embedded message: the child's chunks are adopted, not copied. */
  message(field: number, child: ProtoWriter): this {
    child.flushScratch();
    this.tag(field, WIRE_LEN);
    this.rawVarint(child.length);
    this.flushScratch();
    for (const c of child.chunks) this.chunks.push(c);
    this.length += child.length;
    return this;
  }

  /** Packed repeated int64 (used for the `ints` of attributes and tensor dims written packed). */
  packedVarints(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.rawVarint(v);
    // The same bytes as an embedded message: a length-delimited field.
    return this.message(field, inner);
  }

  /** Packed repeated float. */
  packedFloats(field: number, values: readonly number[]): this {
    const data = new Uint8Array(values.length * 4);
    const view = new DataView(data.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, data);
  }

  finish(): Uint8Array {
    this.flushScratch();
    if (this.length > 2 ** 31 - 1) {
      throw new Error(`the ONNX protobuf would be ${this.length} bytes, over protobuf's 2 GiB limit: store the weights as external data`);
    }
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// ONNX messages

/** TensorProto.DataType values. */
export const OnnxDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  BFLOAT16: 16,
} as const;
export type OnnxDataTypeName = keyof typeof OnnxDataType;

export interface OnnxTensor {
  name: string;
  dataType: OnnxDataTypeName;
  dims: readonly number[];
  /** Little-endian element bytes (raw_data), or null when the data lives in an external file. */
  data: ArrayBufferView | null;
  /** Where the bytes are when stored outside the .onnx file (data_location EXTERNAL). */
  external?: { location: string; offset: number; length: number };
}

export type OnnxAttribute =
  | { f: number }
  | { i: number }
  | { s: string }
  | { t: OnnxTensor }
  | { floats: readonly number[] }
  | { ints: readonly number[] };

export interface OnnxNode {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  domain?: string;
  attributes?: Record<string, OnnxAttribute>;
}

export interface OnnxValueInfo {
  name: string;
  elemType: OnnxDataTypeName;
  /** A number for a fixed dimension, a string for a symbolic one (dim_param). */
  shape: readonly (number | string)[];
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  initializers: readonly OnnxTensor[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
}

export interface OnnxModel {
  irVersion: number;
  opsetImports: readonly { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  graph: OnnxGraph;
  metadata?: Record<string, string>;
}

function tensorProto(t: OnnxTensor): ProtoWriter {
  const w = new ProtoWriter();
  // dims: repeated int64 = 1 (non-packed in proto2; parsers accept both, written unpacked as onnx does).
  for (const d of t.dims) w.varint(1, d);
  w.varint(2, OnnxDataType[t.dataType]);
  w.string(8, t.name);
  if (t.external) {
    for (const [key, value] of [
      ['location', t.external.location],
      ['offset', String(t.external.offset)],
      ['length', String(t.external.length)],
    ] as const) {
      w.message(13, new ProtoWriter().string(1, key).string(2, value));
    }
    w.varint(14, 1); // DataLocation.EXTERNAL
  } else {
    if (!t.data) throw new Error(`ONNX tensor ${t.name} has neither data nor an external location`);
    w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return w;
}

/** AttributeProto.AttributeType, the values this writer uses. */
const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

function attributeProto(name: string, a: OnnxAttribute): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if ('f' in a) w.varint(20, AttributeType.FLOAT).float(2, a.f);
  else if ('i' in a) w.varint(20, AttributeType.INT).varint(3, a.i);
  else if ('s' in a) w.varint(20, AttributeType.STRING).string(4, a.s);
  else if ('t' in a) w.varint(20, AttributeType.TENSOR).message(5, tensorProto(a.t));
  else if ('floats' in a) w.varint(20, AttributeType.FLOATS).packedFloats(7, a.floats);
  else w.varint(20, AttributeType.INTS).packedVarints(8, a.ints);
  return w;
}

function nodeProto(n: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [name, a] of Object.entries(n.attributes ?? {})) w.message(5, attributeProto(name, a));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function valueInfoProto(v: OnnxValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    const dim = new ProtoWriter();
    if (typeof d === 'number') dim.varint(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoWriter().varint(1, OnnxDataType[v.elemType]).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

function graphProto(g: OnnxGraph): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, nodeProto(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, tensorProto(t));
  for (const v of g.inputs) w.message(11, valueInfoProto(v));
  for (const v of g.outputs) w.message(12, valueInfoProto(v));
  return w;
}

/** Serialises a ModelProto. */
export function encodeOnnxModel(m: OnnxModel): Uint8Array {
  const w = new ProtoWriter();
  w.varint(1, m.irVersion);
  w.string(2, m.producerName);
  w.string(3, m.producerVersion);
  w.message(7, graphProto(m.graph));
  for (const o of m.opsetImports) w.message(8, new ProtoWriter().string(1, o.domain).varint(2, o.version));
  for (const [key, value] of Object.entries(m.metadata ?? {})) w.message(14, new ProtoWriter().string(1, key).string(2, value));
  return w.finish();
}
