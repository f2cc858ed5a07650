// ONNX export of a (merged) model as a decoder-only causal-LM graph with a KV cache, in the
// layout transformers.js and Optimum use, so onnxruntime-web (or any ONNX runtime) can run it:
//
//   inputs   input_ids [batch, seq] int64
//            attention_mask [batch, past+seq] int64 (1 = attend, 0 = padding)
//            position_ids [batch, seq] int64
//            past_key_values.{i}.key / .value [batch, kv_heads, past, head_dim] f32 (past may be 0)
//   outputs  logits [batch, seq, vocab] f32
//            present.{i}.key / .value [batch, kv_heads, past+seq, head_dim] f32
//
// Standard ONNX ops only (default opset 17): the norms, rotary embeddings, GQA, SwiGLU and GELU
// are decomposed. Linear weights are stored [in, out] so each projection is one MatMul; a tied
// LM head reuses the embedding through a Transpose node (constant-folded by runtimes) instead
// of storing the table twice. No Node imports.

import { checkWeightsAgainstConfig, ropeInverseFrequencies, type ModelConfig } from '../model/config';
import { encodeOnnxModel, type OnnxAttribute, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './onnxProto';

/** Where the weights come from: a SafetensorsWeights (e.g. of a merged model) fits. */
export interface OnnxWeightSource {
  readonly tensors: ReadonlyMap<string, { readonly shape: readonly number[] }>;
  read(name: string, options: { as: 'f32' }): Promise<Float32Array>;
}

export interface OnnxExportOptions {
  /** ONNX opset of the default domain: 17 (default) to 21. 17 is the first with LayerNormalization. */
  opset?: number;
  /**
   * Store the initializers in a separate file of this name (ONNX external data, as
   * `model.onnx_data` in transformers.js repos), needed above protobuf's 2 GiB limit.
   */
  externalDataFile?: string;
  /** Recorded as producer_version. */
  producerVersion?: string;
}

export interface OnnxExport {
  /** The .onnx ModelProto. */
  model: Uint8Array;
  /** The external data file's bytes when `externalDataFile` was given, else null. */
  externalData: Uint8Array | null;
}

export class OnnxExportError extends Error {
  override name = 'OnnxExportError';
}

const NEG_INF_F32 = -3.4028234663852886e38;

/** The graph as nodes and initializers, with fresh value names. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private count = 0;
  private readonly constants = new Map<string, string>();

  /** Adds a node; returns its output names (`outputs` names them, else fresh names). */
  node(opType: string, inputs: readonly string[], attributes: Record<string, OnnxAttribute> = {}, outputs: number | readonly string[] = 1): string[] {
    const id = this.count++;
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => `/${opType}_${id}/out${i}`) : [...outputs];
    this.nodes.push({ opType, inputs, outputs: outs, name: `${opType}_${id}`, attributes });
    return outs;
  }

  op(opType: string, inputs: readonly string[], attributes: Record<string, OnnxAttribute> = {}, output?: string): string {
    return this.node(opType, inputs, attributes, output ? [output] : 1)[0]!;
  }

  weight(name: string, dims: readonly number[], data: Float32Array): string {
    this.initializers.push({ name, dataType: 'FLOAT', dims, data });
    return name;
  }

  /** A shared float constant (dims [] for a scalar). */
  float(values: readonly number[], dims: readonly number[] = []): string {
    return this.constant('FLOAT', Float32Array.from(values), dims);
  }

  /** A shared int64 constant (dims [] for a scalar). */
  int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant('INT64', BigInt64Array.from(values.map((v) => BigInt(v))), dims);
  }

  private constant(dataType: 'FLOAT' | 'INT64', data: Float32Array | BigInt64Array, dims: readonly number[]): string {
    const key = `${dataType}:${dims.join('x')}:${[...data].join(',')}`;
    const hit = this.constants.get(key);
    if (hit) return hit;
    const name = `const_${this.constants.size}`;
    this.constants.set(key, name);
    this.initializers.push({ name, dataType, dims, data });
    return name;
  }
}

function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[base + c]!;
  }
  return out;
}

/**
 * Builds the ONNX graph of the model. Returns the ModelProto bytes, with the initializers
 * inside them or, with `externalDataFile`, in a second buffer.
 */
export async function exportOnnxModel(config: ModelConfig, weights: OnnxWeightSource, options: OnnxExportOptions = {}): Promise<OnnxExport> {
  const opset = options.opset ?? 17;
  if (!Number.isInteger(opset) || opset < 17 || opset > 21) throw new OnnxExportError(`opset ${opset} is not supported (17 to 21)`);
  if (config.slidingWindow !== null) throw new OnnxExportError('sliding-window attention is not exported');
  const shapes = new Map<string, { name: string; shape: readonly number[] }>();
  for (const [name, t] of weights.tensors) shapes.set(name, { name, shape: t.shape });
  const { prefix } = checkWeightsAgainstConfig(shapes, config);

  const g = new GraphBuilder();
  const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, vocabSize: V, layers: L } = config;
  const nRep = H / Hkv;
  const read = (name: string) => weights.read(prefix + name, { as: 'f32' });
  const shapeOf = (name: string) => shapes.get(prefix + name)!.shape;
  /** A weight as stored ([out, in] Linear or [in, out] Conv1D) -> an [in, out] initializer. */
  const linearWeight = async (name: string, conv1d: boolean): Promise<string> => {
    const [d0, d1] = shapeOf(name) as [number, number];
    const data = await read(name);
    return conv1d ? g.weight(name, [d0, d1], data) : g.weight(name + '.T', [d1, d0], transpose2d(data, d0, d1));
  };
  const vector = async (name: string) => g.weight(name, shapeOf(name), await read(name));
  const linear = async (x: string, module: string, hasBias: boolean, conv1d: boolean): Promise<string> => {
    const y = g.op('MatMul', [x, await linearWeight(`${module}.weight`, conv1d)]);
    return hasBias ? g.op('Add', [y, await vector(`${module}.bias`)]) : y;
  };
  const reduceMeanLast = (x: string) =>
    opset >= 18 ? g.op('ReduceMean', [x, g.int64([-1])], { keepdims: { i: 1 } }) : g.op('ReduceMean', [x], { axes: { ints: [-1] }, keepdims: { i: 1 } });
  const rmsNorm = async (x: string, module: string) => {
    const meanSq = reduceMeanLast(g.op('Mul', [x, x]));
    const rms = g.op('Sqrt', [g.op('Add', [meanSq, g.float([config.normEps])])]);
    return g.op('Mul', [g.op('Div', [x, rms]), await vector(`${module}.weight`)]);
  };
  const layerNorm = async (x: string, module: string) =>
    g.op('LayerNormalization', [x, await vector(`${module}.weight`), await vector(`${module}.bias`)], { axis: { i: -1 }, epsilon: { f: config.normEps } });
  const norm = (x: string, module: string) => (config.normType === 'rms' ? rmsNorm(x, module) : layerNorm(x, module));

  // ---- inputs
  const inputIds = 'input_ids';
  const attentionMask = 'attention_mask';
  const positionIds = 'position_ids';

  // ---- attention mask [batch, 1, 1, seq, total]: causal (key j <= past + query i) and not padding.
  const total = g.op('Gather', [g.op('Shape', [attentionMask]), g.int64([1], [])], { axis: { i: 0 } });
  const seq = g.op('Gather', [g.op('Shape', [inputIds]), g.int64([1], [])], { axis: { i: 0 } });
  const past = g.op('Sub', [total, seq]);
  const one = g.int64([1], []);
  const keyIdx = g.op('Range', [g.int64([0], []), total, one]);
  const queryIdx = g.op('Range', [past, total, one]);
  const causal = g.op('LessOrEqual', [g.op('Unsqueeze', [keyIdx, g.int64([0])]), g.op('Unsqueeze', [queryIdx, g.int64([1])])]);
  const notPad = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: { i: 9 } }), g.int64([1, 2, 3])]);
  const allowed = g.op('And', [causal, notPad]);

  // ---- rotary tables [batch, 1, seq, head_dim] from the positions (rotate-half layout, as HF).
  let cos = '';
  let sin = '';
  if (config.positionEncoding === 'rope') {
    const inv = g.float([...ropeInverseFrequencies(config)], [D / 2]);
    const pos = g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: { i: 1 } }), g.int64([-1])]);
    const angle = g.op('Mul', [pos, inv]);
    const emb = g.op('Concat', [angle, angle], { axis: { i: -1 } });
    cos = g.op('Unsqueeze', [g.op('Cos', [emb]), g.int64([1])]);
    sin = g.op('Unsqueeze', [g.op('Sin', [emb]), g.int64([1])]);
  }
  const rope = (x: string) => {
    const first = g.op('Slice', [x, g.int64([0]), g.int64([D / 2]), g.int64([3])]);
    const second = g.op('Slice', [x, g.int64([D / 2]), g.int64([D]), g.int64([3])]);
    const rotated = g.op('Concat', [g.op('Neg', [second]), first], { axis: { i: -1 } });
    return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
  };
  /** [batch, seq, heads*D] -> [batch, heads, seq, D] */
  const splitHeads = (x: string, heads: number) => g.op('Transpose', [g.op('Reshape', [x, g.int64([0, 0, heads, D])])], { perm: { ints: [0, 2, 1, 3] } });

  /** Attention of q [b, H, s, D] over the cache (k, v [b, Hkv, total, D]) -> [b, s, H*D]. */
  const attend = (q: string, k: string, v: string) => {
    // Query heads grouped by the key/value head they share: broadcasting MatMul does GQA's repeat.
    const q5 = g.op('Reshape', [q, g.int64([0, Hkv, nRep, -1, D])]);
    const kT = g.op('Unsqueeze', [g.op('Transpose', [k], { perm: { ints: [0, 1, 3, 2] } }), g.int64([2])]);
    const scores = g.op('Mul', [g.op('MatMul', [q5, kT]), g.float([1 / Math.sqrt(D)])]);
    const masked = g.op('Where', [allowed, scores, g.float([NEG_INF_F32])]);
    const probs = g.op('Softmax', [masked], { axis: { i: -1 } });
    const o = g.op('MatMul', [probs, g.op('Unsqueeze', [v, g.int64([2])])]);
    const merged = g.op('Transpose', [g.op('Reshape', [o, g.int64([0, H, -1, D])])], { perm: { ints: [0, 2, 1, 3] } });
    return g.op('Reshape', [merged, g.int64([0, 0, H * D])]);
  };
  const cache = (l: number, kNew: string, vNew: string) => {
    const k = g.op('Concat', [`past_key_values.${l}.key`, kNew], { axis: { i: 2 } }, `present.${l}.key`);
    const v = g.op('Concat', [`past_key_values.${l}.value`, vNew], { axis: { i: 2 } }, `present.${l}.value`);
    return { k, v };
  };

  let x: string;
  let embedTable: string;
  if (config.family === 'llama') {
    embedTable = await vector('model.embed_tokens.weight');
    x = g.op('Gather', [embedTable, inputIds], { axis: { i: 0 } });
    for (let l = 0; l < L; l++) {
      const p = `model.layers.${l}.`;
      const h = await norm(x, `${p}input_layernorm`);
      const q = rope(splitHeads(await linear(h, `${p}self_attn.q_proj`, config.attentionBias, false), H));
      const k = rope(splitHeads(await linear(h, `${p}self_attn.k_proj`, config.attentionBias, false), Hkv));
      const v = splitHeads(await linear(h, `${p}self_attn.v_proj`, config.attentionBias, false), Hkv);
      const kv = cache(l, k, v);
      const a = await linear(attend(q, kv.k, kv.v), `${p}self_attn.o_proj`, config.attentionOutBias, false);
      x = g.op('Add', [x, a]);
      const h2 = await norm(x, `${p}post_attention_layernorm`);
      const gate = await linear(h2, `${p}mlp.gate_proj`, config.mlpBias, false);
      const up = await linear(h2, `${p}mlp.up_proj`, config.mlpBias, false);
      const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
      x = g.op('Add', [x, await linear(act, `${p}mlp.down_proj`, config.mlpBias, false)]);
    }
    x = await norm(x, 'model.norm');
  } else {
    embedTable = await vector('wte.weight');
    const positions = await vector('wpe.weight');
    x = g.op('Add', [g.op('Gather', [embedTable, inputIds], { axis: { i: 0 } }), g.op('Gather', [positions, positionIds], { axis: { i: 0 } })]);
    const split = g.int64([C, C, C]);
    for (let l = 0; l < L; l++) {
      const p = `h.${l}.`;
      const h = await norm(x, `${p}ln_1`);
      const qkv = await linear(h, `${p}attn.c_attn`, true, true);
      const [q, k, v] = g.node('Split', [qkv, split], { axis: { i: -1 } }, 3) as [string, string, string];
      const kv = cache(l, splitHeads(k, H), splitHeads(v, H));
      x = g.op('Add', [x, await linear(attend(splitHeads(q, H), kv.k, kv.v), `${p}attn.c_proj`, true, true)]);
      const h2 = await norm(x, `${p}ln_2`);
      const f = await linear(h2, `${p}mlp.c_fc`, true, true);
      x = g.op('Add', [x, await linear(gelu(g, f, config.hiddenAct), `${p}mlp.c_proj`, true, true)]);
    }
    x = await norm(x, 'ln_f');
  }
  let headT: string;
  if (config.tieWordEmbeddings) {
    headT = g.op('Transpose', [embedTable], { perm: { ints: [1, 0] } });
  } else {
    // lm_head is never under GPT-2's "transformer." prefix.
    const data = await weights.read('lm_head.weight', { as: 'f32' });
    headT = g.weight('lm_head.weight.T', [C, V], transpose2d(data, V, C));
  }
  g.op('MatMul', [x, headT], {}, 'logits');

  const kvShape = (s: string) => ['batch_size', Hkv, s, D];
  const inputs: OnnxValueInfo[] = [
    { name: inputIds, elemType: 'INT64', shape: ['batch_size', 'sequence_length'] },
    { name: attentionMask, elemType: 'INT64', shape: ['batch_size', 'total_sequence_length'] },
    { name: positionIds, elemType: 'INT64', shape: ['batch_size', 'sequence_length'] },
  ];
  const outputs: OnnxValueInfo[] = [{ name: 'logits', elemType: 'FLOAT', shape: ['batch_size', 'sequence_length', V] }];
  for (let l = 0; l < L; l++) {
    for (const kind of ['key', 'value']) {
      inputs.push({ name: `past_key_values.${l}.${kind}`, elemType: 'FLOAT', shape: kvShape('past_sequence_length') });
      outputs.push({ name: `present.${l}.${kind}`, elemType: 'FLOAT', shape: kvShape('total_sequence_length') });
    }
  }

  let externalData: Uint8Array | null = null;
  if (options.externalDataFile) {
    // Each tensor starts on a 4096-byte boundary, as onnx's external-data writer aligns them (for mmap).
    const big = g.initializers.filter((t) => t.data && t.data.byteLength >= 1024);
    let size = 0;
    const offsets = big.map((t) => {
      const at = Math.ceil(size / 4096) * 4096;
      size = at + t.data!.byteLength;
      return at;
    });
    externalData = new Uint8Array(size);
    big.forEach((t, i) => {
      const d = t.data!;
      externalData!.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), offsets[i]!);
      t.external = { location: options.externalDataFile!, offset: offsets[i]!, length: d.byteLength };
      t.data = null;
    });
  }

  const model = encodeOnnxModel({
    irVersion: 8,
    opsetImports: [{ domain: '', version: opset }],
    producerName: 'whittle',
    producerVersion: options.producerVersion ?? '0.1.0',
    graph: { name: `${config.modelType}-causal-lm`, nodes: g.nodes, initializers: g.initializers, inputs, outputs },
    metadata: { model_type: config.modelType },
  });
  return { model, externalData };
}

function gelu(g: GraphBuilder, x: string, act: ModelConfig['hiddenAct']): string {
  const half = g.op('Mul', [x, g.float([0.5])]);
  if (act === 'gelu') {
    return g.op('Mul', [half, g.op('Add', [g.op('Erf', [g.op('Div', [x, g.float([Math.SQRT2])])]), g.float([1])])]);
  }
  if (act !== 'gelu_new') throw new OnnxExportError(`activation ${act} is not exported for GPT-2`);
  // 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³)))
  const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
  const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [cube, g.float([0.044715])])]), g.float([Math.sqrt(2 / Math.PI)])]);
  return g.op('Mul', [half, g.op('Add', [g.op('Tanh', [inner]), g.float([1])])]);
}

/** The .onnx bytes of the model, initializers inside (models up to protobuf's 2 GiB). */
export async function exportOnnx(config: ModelConfig, weights: OnnxWeightSource, options: Omit<OnnxExportOptions, 'externalDataFile'> = {}): Promise<Uint8Array> {
  return (await exportOnnxModel(config, weights, options)).model;
}

/** Above this many bytes of weights, the transformers.js folder stores them as external data. */
export const ONNX_EXTERNAL_DATA_THRESHOLD = 1_800_000_000;

/**
 * A folder transformers.js loads (`AutoModelForCausalLM.from_pretrained(dir)`): the merged
 * model's config, generation config and tokenizer files plus onnx/model.onnx (and
 * onnx/model.onnx_data when the weights are too big for one protobuf).
 */
export async function exportTransformersJsFolder(
  config: ModelConfig,
  weights: OnnxWeightSource,
  mergedFiles: ReadonlyMap<string, Uint8Array>,
  options: Omit<OnnxExportOptions, 'externalDataFile'> & { forceExternalData?: boolean } = {},
): Promise<Map<string, Uint8Array>> {
  let bytes = 0;
  for (const t of weights.tensors.values()) bytes += t.shape.reduce((a, b) => a * b, 1) * 4;
  const external = options.forceExternalData || bytes > ONNX_EXTERNAL_DATA_THRESHOLD;
  const { model, externalData } = await exportOnnxModel(config, weights, { ...options, ...(external ? { externalDataFile: 'model.onnx_data' } : {}) });
  const out = new Map<string, Uint8Array>();
  for (const [name, data] of mergedFiles) {
    if (name.endsWith('.safetensors') || name === 'model.safetensors.index.json') continue;
    out.set(name, data);
  }
  const configBytes = mergedFiles.get('config.json');
  if (configBytes) {
    // transformers.js picks the weights file by dtype (its WASM default is q8, i.e.
    // model_quantized.onnx): this folder has fp32 only. It fetches model.onnx_data only when the
    // config says the model has one.
    const json = JSON.parse(new TextDecoder().decode(configBytes)) as Record<string, unknown>;
    const jsConfig = (json['transformers.js_config'] ?? {}) as Record<string, unknown>;
    json['transformers.js_config'] = { ...jsConfig, dtype: 'fp32', ...(externalData ? { use_external_data_format: { 'model.onnx': true } } : {}) };
    out.set('config.json', new TextEncoder().encode(JSON.stringify(json, null, 2) + '\n'));
  }
  out.set('onnx/model.onnx', model);
  if (externalData) out.set('onnx/model.onnx_data', externalData);
  return out;
}
