import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesModelDir, loadHfModelDir } from '../../src/formats/hfModelDir';
import { exportMergedModel } from '../../src/formats/mergedModel';
import { exportOnnx, exportTransformersJsFolder } from '../../src/formats/onnx';
import { ProtoWriter } from '../../src/formats/onnxProto';
import { parseModelConfig, type ModelConfig } from '../../src/model/config';
import { loadCausalLM, type LoadedModel } from '../../src/model/load';
import { defaultLoraConfig } from '../../src/model/lora';
import { expectClose, maxRelError } from '../helpers/compare';
import { getTestGpu } from '../helpers/gpu';
import { FIXTURES, readGolden } from '../model/golden';

beforeAll(() => {
  // The WASM backend in Node: one thread (no worker files needed), wasm found next to the bundle.
  ort.env.wasm.numThreads = 1;
});

/** The tiny model with the golden adapter merged in (f32), as a file map. */
async function mergedFixture(name: string) {
  const dir = join(FIXTURES, 'models', name);
  const folder = new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
  const files = await loadHfModelDir(bytesModelDir(folder));
  const config = parseModelConfig(files.config);
  const golden = await readGolden(name);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const n of golden.names) if (n.startsWith('base_model.')) tensors.set(n, { shape: [...golden.shape(n)], data: await golden.f32(n) });
  const lora = defaultLoraConfig(config, { r: Number(golden.metadata.rank), alpha: Number(golden.metadata.alpha) });
  const merged = await exportMergedModel(files, tensors, lora, config, { dtype: 'F32' });
  const mergedWeights = (await loadHfModelDir(bytesModelDir(merged))).weights;
  return { config, merged, mergedWeights, golden };
}

type Feeds = Record<string, ort.Tensor>;

const i64 = (rows: readonly (readonly number[])[]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0]!.length]);

function emptyPast(config: ModelConfig, B: number): Feeds {
  const feeds: Feeds = {};
  for (let l = 0; l < config.layers; l++) {
    for (const kind of ['key', 'value']) feeds[`past_key_values.${l}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [B, config.kvHeads, 0, config.headDim]);
  }
  return feeds;
}

/** The golden token batch through the ONNX model, unpadded and with no past. */
async function runGoldenTokens(session: ort.InferenceSession, config: ModelConfig, golden: Awaited<ReturnType<typeof readGolden>>) {
  const [B, T] = golden.shape('tokens') as [number, number];
  const flat = [...(await golden.i32('tokens'))];
  const rows = Array.from({ length: B }, (_, b) => flat.slice(b * T, (b + 1) * T));
  const result = await session.run({
    input_ids: i64(rows),
    attention_mask: i64(rows.map((r) => r.map(() => 1))),
    position_ids: i64(rows.map((r) => r.map((_, j) => j))),
    ...emptyPast(config, B),
  });
  return { B, T, flat, rows, result };
}

/** Greedy decoding with the ONNX model, feeding each step's present.* back as past_key_values. */
async function ortGreedy(session: ort.InferenceSession, config: ModelConfig, prompts: number[][], steps: number): Promise<number[][]> {
  const B = prompts.length;
  const V = config.vocabSize;
  let past = emptyPast(config, B);
  let pastLen = 0;
  let ids = prompts;
  const out: number[][] = prompts.map(() => []);
  for (let step = 0; step < steps; step++) {
    const S = ids[0]!.length;
    const result = await session.run({
      input_ids: i64(ids),
      attention_mask: i64(ids.map(() => new Array<number>(pastLen + S).fill(1))),
      position_ids: i64(ids.map(() => Array.from({ length: S }, (_, j) => pastLen + j))),
      ...past,
    });
    expect(result['present.0.key']!.dims).toEqual([B, config.kvHeads, pastLen + S, config.headDim]);
    const logits = result.logits!.data as Float32Array;
    const next = ids.map((_, b) => {
      const row = logits.subarray((b * S + S - 1) * V, (b * S + S) * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
      return best;
    });
    next.forEach((t, b) => out[b]!.push(t));
    past = {};
    for (let l = 0; l < config.layers; l++) for (const kind of ['key', 'value']) past[`past_key_values.${l}.${kind}`] = result[`present.${l}.${kind}`]!;
    pastLen += S;
    ids = next.map((t) => [t]);
  }
  return out;
}

const engines: LoadedModel[] = [];
afterAll(() => {
  for (const m of engines) m.model.destroy();
});

describe.each([
  ['tiny-llama', 17],
  ['tiny-qwen2', 18],
  ['tiny-gpt2', 17],
] as const)('%s as ONNX (opset %i) in onnxruntime-web', (name, opset) => {
  it('gives our engine\'s logits, honours attention_mask padding, and decodes greedily with past_key_values', async () => {
    const { config, merged, mergedWeights, golden } = await mergedFixture(name);
    const onnx = await exportOnnx(config, mergedWeights, { opset });
    const session = await ort.InferenceSession.create(onnx);
    const layerNames = (prefix: string) => Array.from({ length: config.layers }, (_, l) => [`${prefix}.${l}.key`, `${prefix}.${l}.value`]).flat();
    expect(session.inputNames).toEqual(['input_ids', 'attention_mask', 'position_ids', ...layerNames('past_key_values')]);
    expect(session.outputNames).toEqual(['logits', ...layerNames('present')]);

    const { B, T, flat, rows, result } = await runGoldenTokens(session, config, golden);
    expect(result.logits!.dims).toEqual([B, T, config.vocabSize]);
    const logits = result.logits!.data as Float32Array;

    const engine = await loadCausalLM(await getTestGpu(), bytesModelDir(merged), { dtype: 'f32' });
    engines.push(engine);
    const ours = await engine.model.logits(Uint32Array.from(flat), B, T);
    expectClose(logits, ours, 1e-4, `${name} ONNX vs engine`);
    expectClose(logits, await golden.f32('lora_logits'), 1e-4, `${name} ONNX vs PyTorch`);

    // Left padding: row 0 is its first T - 2 tokens behind two pad positions (mask 0, HF's
    // position_ids = cumsum(mask) - 1 with pads at 1). Real positions must see only real tokens.
    const pad = 2;
    const padded = await session.run({
      input_ids: i64([[0, 0, ...rows[0]!.slice(0, T - pad)], rows[1]!]),
      attention_mask: i64([[0, 0, ...new Array<number>(T - pad).fill(1)], new Array<number>(T).fill(1)]),
      position_ids: i64([[1, 1, ...Array.from({ length: T - pad }, (_, j) => j)], Array.from({ length: T }, (_, j) => j)]),
      ...emptyPast(config, B),
    });
    const V = config.vocabSize;
    const p = padded.logits!.data as Float32Array;
    expectClose(p.subarray(pad * V, T * V), logits.subarray(0, (T - pad) * V), 1e-5, 'left-padded row');
    expectClose(p.subarray(T * V, 2 * T * V), logits.subarray(T * V, 2 * T * V), 1e-5, 'unpadded row');
    expect(p.subarray(0, pad * V).every(Number.isFinite)).toBe(true);

    // Greedy continuation, step by step through the cache, as PyTorch's (which our engine's
    // generate() reproduces token for token: test/model/generate.test.ts).
    const steps = 8;
    const prompt = rows.map((r) => r.slice(0, 5));
    const viaOnnx = await ortGreedy(session, config, prompt, steps);
    const torch = [...(await golden.i32('greedy_lora'))];
    const W = golden.shape('greedy_lora')[1]!;
    expect(viaOnnx).toEqual(prompt.map((_, b) => torch.slice(b * W + 5, (b + 1) * W)));
    await session.release();
  });
});

describe('ONNX files', () => {
  it('writes a transformers.js folder with external data that onnxruntime loads to the same logits', async () => {
    const { config, merged, mergedWeights, golden } = await mergedFixture('tiny-gpt2');
    const folder = await exportTransformersJsFolder(config, mergedWeights, merged, { forceExternalData: true });
    expect([...folder.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'onnx/model.onnx', 'onnx/model.onnx_data', 'tokenizer.json', 'tokenizer_config.json']);
    const cfg = JSON.parse(new TextDecoder().decode(folder.get('config.json'))) as Record<string, unknown>;
    expect(cfg['transformers.js_config']).toEqual({ dtype: 'fp32', use_external_data_format: { 'model.onnx': true } });
    expect(cfg.model_type).toBe('gpt2');
    const model = folder.get('onnx/model.onnx')!;
    const data = folder.get('onnx/model.onnx_data')!;
    // The weights live in the data file: the graph itself is small.
    expect(model.byteLength).toBeLessThan(data.byteLength / 10);
    const session = await ort.InferenceSession.create(model, { externalData: [{ path: 'model.onnx_data', data }] });
    const { result } = await runGoldenTokens(session, config, golden);
    expect(maxRelError(result.logits!.data as Float32Array, await golden.f32('lora_logits'))).toBeLessThan(1e-4);
    await session.release();
  });

  it('encodes protobuf varints, negative int64s and nested lengths as protobuf does', () => {
    const child = new ProtoWriter().varint(1, 300).string(2, 'hi');
    const bytes = new ProtoWriter().varint(1, -1).varint(2, 1).message(3, child).finish();
    expect([...bytes]).toEqual([
      0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // field 1 = -1 (ten bytes)
      0x10, 0x01, // field 2 = 1
      0x1a, 0x07, 0x08, 0xac, 0x02, 0x12, 0x02, 0x68, 0x69, // field 3 = {1: 300, 2: "hi"}
    ]);
  });
});
