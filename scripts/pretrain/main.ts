/**
 * Whittle's embedded model, trained from scratch by Whittle's own engine: a byte-level BPE
 * tokenizer and a tiny Llama-family model pretrained on WordNet glosses, then instruction-tuned
 * on dictionary conversations, exported in Hugging Face layout to public/models/.
 *
 *   npm run pretrain -- [--out .pretrain] [--resume] [--steps 3000] [--hidden 192] ...
 *   npm run pretrain -- --bench --hidden 128   (measures steps/s of one size and exits)
 *
 * Resumable: a checkpoint (weights, AdamW moments, phase, step) is written every --ckpt-every
 * steps; the data position follows from the step, so --resume continues the same run.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, appendFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { acquireGpu, toF16Array, type Gpu } from '../../src/gpu';
import { bytesModelDir } from '../../src/formats/hfModelDir';
import { writeSafetensors, SafetensorsWeights, bytesSource, type TensorToWrite } from '../../src/formats/safetensors';
import { loadCausalLM } from '../../src/model/load';
import { BaseGradients } from '../../src/model/fullParameters';
import type { CausalLM, TokenBatch } from '../../src/model/transformer';
import { generate } from '../../src/model/generate';
import { AdamWOptimizer, type OptimizerSettings } from '../../src/train/optimizer';
import { learningRateAt } from '../../src/train/schedule';
import { TextTokenizer } from '../../src/data/tokenizer';
import { ChatTemplate } from '../../src/data/chatTemplate';
import type { ChatMessage } from '../../src/data/datasetTypes';
import { tokenizeExample } from '../../src/data/examples';
import { makeBatches, shuffleInPlace, epochRng } from '../../src/data/batching';
import { Rng } from '../../src/util/random';
import { readWordNet, entryText, CORPUS_SOURCE, CORPUS_LICENSE, type WordNetEntry } from './corpus';
import { trainBpe, tokenizerJson } from './bpe';

export const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const SYSTEM_PROMPT = 'You are a concise dictionary assistant.';

interface Args {
  out: string;
  export: string;
  resume: boolean;
  bench: boolean;
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  seq: number;
  batch: number;
  steps: number;
  lr: number;
  warmup: number;
  sftSteps: number;
  sftLr: number;
  ckptEvery: number;
  evalEvery: number;
  logEvery: number;
  seed: number;
  bpeDocs: number;
  /** Training documents packed (0: all); a slow device never gets through the whole corpus. */
  docs: number;
  /** Wall-clock time (ISO) after which pretraining stops early and instruction tuning begins. */
  stopAt: string;
  /** Only rewrite README.md from <out>/run.json. */
  cardOnly: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    out: '.pretrain', export: 'public/models/whittle-wordnet-tiny', resume: false, bench: false,
    vocab: 4096, hidden: 192, layers: 4, heads: 4, kvHeads: 2, intermediate: 512, seq: 128, batch: 8,
    steps: 3000, lr: 2e-3, warmup: 100, sftSteps: 300, sftLr: 5e-4, ckptEvery: 200, evalEvery: 250, logEvery: 10, seed: 1234,
    bpeDocs: 40000, docs: 0, stopAt: '', cardOnly: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof Args;
    if (!(k in a)) throw new Error(`unknown option ${argv[i]}`);
    if (typeof a[k] === 'boolean') (a as unknown as Record<string, unknown>)[k] = true;
    else {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${argv[i - 1]} needs a value`);
      (a as unknown as Record<string, unknown>)[k] = typeof a[k] === 'number' ? Number(v) : v;
    }
  }
  return a;
}

function modelConfigJson(a: Args, vocabSize: number, ids: Record<string, number>): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: vocabSize,
    hidden_size: a.hidden,
    intermediate_size: a.intermediate,
    num_hidden_layers: a.layers,
    num_attention_heads: a.heads,
    num_key_value_heads: a.kvHeads,
    head_dim: a.hidden / a.heads,
    hidden_act: 'silu',
    max_position_embeddings: 2 * a.seq,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    tie_word_embeddings: true,
    initializer_range: 0.02,
    bos_token_id: ids['<|endoftext|>'],
    eos_token_id: ids['<|im_end|>'],
    pad_token_id: ids['<|endoftext|>'],
    torch_dtype: 'float16',
    use_cache: true,
  };
}

/** tokenizer_config.json of a ChatML byte-level BPE tokenizer with the SPECIALS tokens at `ids`. */
export function tokenizerConfigJson(ids: Record<string, number>, maxLen: number): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const s of SPECIALS) decoder[String(ids[s])] = { content: s, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  return {
    add_bos_token: false,
    add_eos_token: false,
    added_tokens_decoder: decoder,
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: null,
    chat_template: CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: maxLen,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
}

/** HF tensor name -> the GPU buffer holding it (Llama, tied head). */
function namedBuffers(model: CausalLM): Map<string, GPUBuffer> {
  const w = model.weights;
  const out = new Map<string, GPUBuffer>();
  const shard = w.embed[0]!.buffer;
  out.set('model.embed_tokens.weight', 'buffer' in shard ? shard.buffer : shard);
  w.layers.forEach((L, i) => {
    out.set(`model.layers.${i}.input_layernorm.weight`, L.norm1.w);
    out.set(`model.layers.${i}.post_attention_layernorm.weight`, L.norm2.w);
    for (const lin of [...L.attnIn, L.attnOut, ...L.mlpIn, L.mlpOut]) out.set(`${lin.name}.weight`, lin.w);
  });
  out.set('model.norm.weight', w.finalNorm.w);
  return out;
}

function shapes(a: Args, V: number): Map<string, number[]> {
  const C = a.hidden;
  const D = C / a.heads;
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [V, C]);
  for (let i = 0; i < a.layers; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.input_layernorm.weight`, [C]);
    m.set(`${p}.post_attention_layernorm.weight`, [C]);
    m.set(`${p}.self_attn.q_proj.weight`, [a.heads * D, C]);
    m.set(`${p}.self_attn.k_proj.weight`, [a.kvHeads * D, C]);
    m.set(`${p}.self_attn.v_proj.weight`, [a.kvHeads * D, C]);
    m.set(`${p}.self_attn.o_proj.weight`, [C, a.heads * D]);
    m.set(`${p}.mlp.gate_proj.weight`, [a.intermediate, C]);
    m.set(`${p}.mlp.up_proj.weight`, [a.intermediate, C]);
    m.set(`${p}.mlp.down_proj.weight`, [C, a.intermediate]);
  }
  m.set('model.norm.weight', [C]);
  return m;
}

/** GPT-2/Llama-style init: N(0, 0.02), residual projections scaled by 1/sqrt(2L), norms 1. */
function initialWeights(a: Args, V: number): TensorToWrite[] {
  const rng = new Rng(a.seed);
  const out: TensorToWrite[] = [];
  for (const [name, shape] of shapes(a, V)) {
    const n = shape.reduce((x, y) => x * y, 1);
    const data = new Float32Array(n);
    if (name.endsWith('norm.weight')) data.fill(1);
    else {
      const std = /o_proj|down_proj/.test(name) ? 0.02 / Math.sqrt(2 * a.layers) : 0.02;
      for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
    }
    out.push({ name, dtype: 'F32', shape, data });
  }
  return out;
}

async function readTensors(gpu: Gpu, model: CausalLM, a: Args, V: number, which: (b: GPUBuffer) => GPUBuffer, prefix = ''): Promise<TensorToWrite[]> {
  const sh = shapes(a, V);
  const out: TensorToWrite[] = [];
  for (const [name, buf] of namedBuffers(model)) {
    const shape = sh.get(name)!;
    const n = shape.reduce((x, y) => x * y, 1);
    out.push({ name: prefix + name, dtype: 'F32', shape, data: await gpu.readF32(which(buf), n) });
  }
  return out;
}

interface Checkpoint {
  phase: 'pretrain' | 'sft';
  step: number;
  tokensSeen: number;
  wallSeconds: number;
}

function writeAtomic(path: string, data: Uint8Array | string): void {
  writeFileSync(path + '.tmp', data);
  renameSync(path + '.tmp', path);
}

async function saveCheckpoint(gpu: Gpu, model: CausalLM, full: BaseGradients, opt: AdamWOptimizer, a: Args, V: number, ck: Checkpoint): Promise<void> {
  const state = (b: GPUBuffer) => full.states.get(b)!;
  const tensors = [
    ...(await readTensors(gpu, model, a, V, (b) => b)),
    ...(await readTensors(gpu, model, a, V, (b) => state(b).expAvg, 'exp_avg.')),
    ...(await readTensors(gpu, model, a, V, (b) => state(b).expAvgSq, 'exp_avg_sq.')),
  ];
  writeAtomic(join(a.out, 'checkpoint.safetensors'), writeSafetensors(tensors, { optimizer_step: String(opt.step) }));
  writeAtomic(join(a.out, 'checkpoint.json'), JSON.stringify(ck, null, 1));
}

async function restoreMoments(gpu: Gpu, model: CausalLM, full: BaseGradients, weights: SafetensorsWeights): Promise<void> {
  for (const [name, buf] of namedBuffers(model)) {
    const s = full.states.get(buf)!;
    gpu.write(s.expAvg, await weights.read(`exp_avg.${name}`, { as: 'f32' }));
    gpu.write(s.expAvgSq, await weights.read(`exp_avg_sq.${name}`, { as: 'f32' }));
  }
}

/** Documents -> one token stream with <|endoftext|> between documents -> rows of T+1 tokens. */
function packRows(docs: number[][], eot: number, T: number): Uint16Array[] {
  const rows: Uint16Array[] = [];
  let row = new Uint16Array(T + 1);
  let fill = 0;
  for (const doc of docs) {
    for (const id of [...doc, eot]) {
      row[fill++] = id;
      if (fill === T + 1) {
        rows.push(row);
        // The last token of a row starts the next, so no target is lost at row edges.
        const next = new Uint16Array(T + 1);
        next[0] = id;
        row = next;
        fill = 1;
      }
    }
  }
  return rows;
}

function rowBatch(rows: readonly Uint16Array[], T: number): TokenBatch {
  const B = rows.length;
  const tokens = new Uint32Array(B * T);
  const targets = new Uint32Array(B * T);
  rows.forEach((r, b) => {
    tokens.set(r.subarray(0, T), b * T);
    targets.set(r.subarray(1, T + 1), b * T);
  });
  return { B, T, tokens, targets, mask: new Float32Array(B * T).fill(1) };
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Dictionary conversations from WordNet entries (definition and usage questions). */
export function dictionaryConversations(entries: readonly WordNetEntry[], seed: number): ChatMessage[][] {
  const rng = new Rng(seed);
  const out: ChatMessage[][] = [];
  const defineQ = ['What does the word "{w}" mean?', 'Define "{w}".', 'What is the meaning of "{w}"?', 'What does "{w}" mean?'];
  for (const e of entries) {
    const word = e.words[0]!;
    const system: ChatMessage[] = rng.next() < 0.3 ? [{ role: 'system', content: SYSTEM_PROMPT }] : [];
    const q = defineQ[rng.int(defineQ.length)]!.replace('{w}', word);
    out.push([...system, { role: 'user', content: q }, { role: 'assistant', content: `"${capitalise(word)}" (${e.pos}) means: ${e.definition}.` }]);
    const ex = e.examples.find((x) => x.toLowerCase().includes(word.toLowerCase()));
    if (ex) out.push([...system, { role: 'user', content: `Use "${word}" in a sentence.` }, { role: 'assistant', content: `${capitalise(ex)}.`.replace(/([.!?])\.$/, '$1') }]);
  }
  return out;
}

function fmt(x: number, d = 4): string {
  return Number.isFinite(x) ? x.toFixed(d) : String(x);
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.cardOnly) {
    // Rewrites the model card from the recorded run (after editing the card text).
    const run = JSON.parse(readFileSync(join(a.out, 'run.json'), 'utf8')) as RunRecord;
    writeFileSync(join(a.export, 'README.md'), modelCard(run));
    return;
  }
  const t0 = Date.now();
  mkdirSync(a.out, { recursive: true });
  const log = (...m: unknown[]) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0)}s]`, ...m);

  // ---- corpus and tokenizer
  const entries = readWordNet();
  const docRng = new Rng(a.seed);
  const order = shuffleInPlace(entries.map((_, i) => i), docRng);
  const nVal = Math.round(entries.length * 0.01);
  const valDocs = new Set(order.slice(0, nVal));
  const tokPath = join(a.out, 'tokenizer.json');
  if (!existsSync(tokPath)) {
    // Merges come from a seeded sample of the corpus: word statistics settle long before 12 M chars.
    const sample = order.slice(nVal, nVal + a.bpeDocs).map((i) => entryText(entries[i]!));
    const bpe = trainBpe(sample, a.vocab, SPECIALS.length);
    writeFileSync(tokPath, JSON.stringify(tokenizerJson(bpe, SPECIALS)));
    log(`tokenizer: ${bpe.vocab.size + SPECIALS.length} tokens from ${sample.length} documents`);
  }
  const tokJson = JSON.parse(readFileSync(tokPath, 'utf8')) as { model: { vocab: Record<string, number> } };
  const ids: Record<string, number> = {};
  for (const s of SPECIALS) ids[s] = tokJson.model.vocab[s]!;
  const V = Object.keys(tokJson.model.vocab).length;
  const tokenizerConfig = tokenizerConfigJson(ids, 256);
  const tokenizer = TextTokenizer.fromJson(tokJson, tokenizerConfig);
  const template = ChatTemplate.fromTokenizer(tokenizer);
  const configJson = modelConfigJson(a, V, ids);

  const streamPath = join(a.out, `rows-${a.seq}.bin`);
  let trainRows: Uint16Array[];
  let valRows: Uint16Array[];
  if (existsSync(streamPath)) {
    const meta = JSON.parse(readFileSync(streamPath + '.json', 'utf8')) as { train: number; val: number };
    const all = new Uint16Array(readFileSync(streamPath).buffer.slice(0));
    const R = a.seq + 1;
    const rows = Array.from({ length: meta.train + meta.val }, (_, i) => all.subarray(i * R, (i + 1) * R));
    trainRows = rows.slice(0, meta.train);
    valRows = rows.slice(meta.train);
  } else {
    const fast = new Tokenizer(tokJson as never, tokenizerConfig as never);
    const enc = (i: number) => fast.encode(entryText(entries[i]!), { add_special_tokens: false }).ids;
    const trainDocs = order.filter((i) => !valDocs.has(i));
    trainRows = packRows((a.docs > 0 ? trainDocs.slice(0, a.docs) : trainDocs).map(enc), ids['<|endoftext|>']!, a.seq);
    valRows = packRows(order.slice(0, nVal).map(enc), ids['<|endoftext|>']!, a.seq);
    const all = new Uint16Array((trainRows.length + valRows.length) * (a.seq + 1));
    [...trainRows, ...valRows].forEach((r, i) => all.set(r, i * (a.seq + 1)));
    writeFileSync(streamPath, all);
    writeFileSync(streamPath + '.json', JSON.stringify({ train: trainRows.length, val: valRows.length }));
  }
  log(`corpus: ${entries.length} documents, ${trainRows.length} train rows + ${valRows.length} validation rows of ${a.seq} tokens (${((trainRows.length * a.seq) / 1e6).toFixed(2)} M train tokens)`);

  // ---- model (from the checkpoint when resuming)
  const gpu = await acquireGpu();
  const ckPath = join(a.out, 'checkpoint.json');
  let ck: Checkpoint = { phase: 'pretrain', step: 0, tokensSeen: 0, wallSeconds: 0 };
  let weightsFile: Uint8Array;
  if (a.resume && existsSync(ckPath)) {
    ck = JSON.parse(readFileSync(ckPath, 'utf8')) as Checkpoint;
    weightsFile = new Uint8Array(readFileSync(join(a.out, 'checkpoint.safetensors')));
    log(`resuming ${ck.phase} at step ${ck.step}`);
  } else {
    weightsFile = writeSafetensors(initialWeights(a, V));
  }
  const dir = bytesModelDir({ 'config.json': new TextEncoder().encode(JSON.stringify(configJson)), 'model.safetensors': weightsFile });
  const { model, config } = await loadCausalLM(gpu, dir, { dtype: 'f32' });
  const full = new BaseGradients(gpu, config, model.weights);
  log(`model: hidden ${a.hidden}, ${a.layers} layers, ${a.heads} heads / ${a.kvHeads} kv, ffn ${a.intermediate}, vocab ${V}: ${full.parameterCount} parameters`);

  const evalBatches = (rows: Uint16Array[], max: number): TokenBatch[] => {
    const out: TokenBatch[] = [];
    for (let i = 0; i + a.batch <= rows.length && out.length < max; i += a.batch) out.push(rowBatch(rows.slice(i, i + a.batch), a.seq));
    return out;
  };
  const meanLoss = async (batches: readonly TokenBatch[]) => {
    let s = 0;
    let n = 0;
    for (const b of batches) {
      const t = await model.evaluate(b);
      s += t.lossSum;
      n += t.tokens;
    }
    return s / n;
  };
  const valSet = evalBatches(valRows, 8);

  if (a.bench) {
    const opt = new AdamWOptimizer(gpu, full.tensors());
    const settings: OptimizerSettings = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1 };
    const n = 5;
    let start = 0;
    let loss = 0;
    for (let s = 0; s < n; s++) {
      if (s === 2) start = Date.now(); // the first steps compile pipelines
      const t = await model.forwardBackward(rowBatch(trainRows.slice(s * a.batch, (s + 1) * a.batch), a.seq), null, { gradScale: 1 / (a.batch * a.seq), accumulate: false, full });
      opt.apply(settings);
      loss = t!.lossSum / t!.tokens;
      log(`bench step ${s} loss ${fmt(loss)}`);
    }
    await opt.readGradNorm();
    const secs = (Date.now() - start) / 1000 / (n - 2);
    console.log(JSON.stringify({ hidden: a.hidden, layers: a.layers, intermediate: a.intermediate, params: full.parameterCount, B: a.batch, T: a.seq, secPerStep: +secs.toFixed(3), stepsPerSec: +(1 / secs).toFixed(3), tokensPerSec: Math.round((a.batch * a.seq) / secs), loss }));
    process.exit(0);
  }

  const csvPath = join(a.out, 'training-log.csv');
  if (!existsSync(csvPath) || !a.resume) writeFileSync(csvPath, 'phase,step,lr,train_loss,val_loss,grad_norm,tokens_seen,elapsed_s\n');
  const wallStart = Date.now() - ck.wallSeconds * 1000;
  const elapsed = () => (Date.now() - wallStart) / 1000;

  // ---- pretraining
  const preSettings: OptimizerSettings = { lr: a.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1 };
  const preSchedule = { kind: 'cosine' as const, baseLr: a.lr, warmupSteps: a.warmup, totalSteps: a.steps };
  let finalTrain = NaN;
  let finalVal = NaN;
  let pretrainTokens = ck.tokensSeen;
  let pretrainWall = ck.wallSeconds;
  let pretrainSteps = a.steps;
  const summaryPath = join(a.out, 'summary.json');
  if (ck.phase === 'pretrain') {
    const opt = new AdamWOptimizer(gpu, full.tensors());
    if (ck.step > 0) {
      await restoreMoments(gpu, model, full, await SafetensorsWeights.open([{ name: 'c', source: bytesSource(weightsFile) }]));
      opt.step = ck.step;
    }
    const perEpoch = Math.floor(trainRows.length / a.batch);
    let epochOrder: Uint16Array[] = [];
    let epochOf = -1;
    let window = 0;
    let windowLoss = 0;
    if (ck.step === 0) log(`initial validation loss ${fmt(await meanLoss(valSet))} (ln V = ${fmt(Math.log(V))})`);
    for (let step = ck.step; step < a.steps; step++) {
      const epoch = Math.floor(step / perEpoch);
      if (epoch !== epochOf) {
        epochOrder = shuffleInPlace([...trainRows], epochRng(a.seed, epoch));
        epochOf = epoch;
      }
      const i = (step % perEpoch) * a.batch;
      const batch = rowBatch(epochOrder.slice(i, i + a.batch), a.seq);
      const t = (await model.forwardBackward(batch, null, { gradScale: 1 / (a.batch * a.seq), accumulate: false, full }))!;
      const lr = learningRateAt(preSchedule, step);
      opt.apply(preSettings, lr);
      pretrainTokens += a.batch * a.seq;
      window++;
      windowLoss += t.lossSum / t.tokens;
      const late = a.stopAt !== '' && Date.now() > Date.parse(a.stopAt);
      if (late) log(`--stop-at ${a.stopAt} passed: pretraining ends at step ${step + 1} of ${a.steps}`);
      const last = step + 1 === a.steps || late;
      if ((step + 1) % a.logEvery === 0 || last) {
        const norm = await opt.readGradNorm();
        const val = (step + 1) % a.evalEvery === 0 || last ? await meanLoss(valSet) : NaN;
        const train = windowLoss / window;
        finalTrain = train;
        if (!Number.isNaN(val)) finalVal = val;
        appendFileSync(csvPath, `pretrain,${step + 1},${lr.toExponential(3)},${fmt(train)},${Number.isNaN(val) ? '' : fmt(val)},${fmt(norm)},${pretrainTokens},${elapsed().toFixed(1)}\n`);
        log(`pretrain ${step + 1}/${a.steps} lr ${lr.toExponential(2)} loss ${fmt(train)}${Number.isNaN(val) ? '' : ` val ${fmt(val)}`} |g| ${fmt(norm, 3)} ${(pretrainTokens / 1e6).toFixed(2)} M tokens`);
        window = 0;
        windowLoss = 0;
      }
      if ((step + 1) % a.ckptEvery === 0 || last) {
        await saveCheckpoint(gpu, model, full, opt, a, V, { phase: last ? 'sft' : 'pretrain', step: last ? 0 : step + 1, tokensSeen: pretrainTokens, wallSeconds: elapsed() });
      }
      if (last) {
        pretrainSteps = step + 1;
        break;
      }
    }
    pretrainWall = elapsed();
    writeFileSync(summaryPath, JSON.stringify({ pretrainTrainLoss: finalTrain, pretrainValLoss: finalVal, pretrainTokens, pretrainWall, pretrainSteps }));
    opt.destroy();
    ck = { phase: 'sft', step: 0, tokensSeen: pretrainTokens, wallSeconds: pretrainWall };
  }
  const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as { pretrainTrainLoss: number; pretrainValLoss: number; pretrainTokens: number; pretrainWall: number; pretrainSteps: number };

  // ---- instruction tuning (full parameters, fresh AdamW, loss on assistant tokens only)
  const convRng = new Rng(a.seed + 1);
  const conversations = dictionaryConversations(entries, a.seed + 2);
  shuffleInPlace(conversations, convRng);
  const nSftVal = 64;
  const tok = (m: ChatMessage[]) => tokenizeExample({ kind: 'chat', messages: m }, tokenizer, template, { maxSeqLen: a.seq, endOfTurn: '<|im_end|>' });
  const sftPool = conversations.slice(nSftVal, nSftVal + a.sftSteps * a.batch).map(tok);
  const sftVal = makeBatches(conversations.slice(0, nSftVal).map(tok), { batchSize: a.batch, maxSeqLen: a.seq, seed: a.seed, epoch: 0, padId: ids['<|endoftext|>']!, strategy: 'pad' });
  const sftBatches = makeBatches(sftPool, { batchSize: a.batch, maxSeqLen: a.seq, seed: a.seed, epoch: 0, padId: ids['<|endoftext|>']!, strategy: 'pad' });
  const sftSteps = Math.min(a.sftSteps, sftBatches.length);
  const sftSettings: OptimizerSettings = { lr: a.sftLr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.0, maxGradNorm: 1 };
  const sftSchedule = { kind: 'cosine' as const, baseLr: a.sftLr, warmupSteps: Math.ceil(sftSteps * 0.05), totalSteps: sftSteps };
  const sftMean = async () => {
    let s = 0;
    let n = 0;
    for (const b of sftVal) {
      const t = await model.evaluate(b);
      s += t.lossSum;
      n += t.tokens;
    }
    return s / n;
  };
  let sftTrain = NaN;
  let sftValLoss = NaN;
  const sftValBefore = await sftMean();
  log(`instruction tuning: ${sftSteps} steps, validation loss before ${fmt(sftValBefore)}`);
  {
    const opt = new AdamWOptimizer(gpu, full.tensors());
    if (ck.step > 0) {
      await restoreMoments(gpu, model, full, await SafetensorsWeights.open([{ name: 'c', source: bytesSource(weightsFile) }]));
      opt.step = ck.step;
    }
    let window = 0;
    let windowLoss = 0;
    let tokensSeen = 0;
    for (let step = ck.step; step < sftSteps; step++) {
      const batch = sftBatches[step]!;
      const t = (await model.forwardBackward(batch, null, { gradScale: 1 / batch.trainedTokens, accumulate: false, full }))!;
      const lr = learningRateAt(sftSchedule, step);
      opt.apply(sftSettings, lr);
      tokensSeen += batch.B * batch.T;
      window++;
      windowLoss += t.lossSum / t.tokens;
      const last = step + 1 === sftSteps;
      if ((step + 1) % a.logEvery === 0 || last) {
        const norm = await opt.readGradNorm();
        const val = (step + 1) % 50 === 0 || last ? await sftMean() : NaN;
        sftTrain = windowLoss / window;
        if (!Number.isNaN(val)) sftValLoss = val;
        appendFileSync(csvPath, `sft,${step + 1},${lr.toExponential(3)},${fmt(sftTrain)},${Number.isNaN(val) ? '' : fmt(val)},${fmt(norm)},${tokensSeen},${elapsed().toFixed(1)}\n`);
        log(`sft ${step + 1}/${sftSteps} lr ${lr.toExponential(2)} loss ${fmt(sftTrain)}${Number.isNaN(val) ? '' : ` val ${fmt(val)}`}`);
        window = 0;
        windowLoss = 0;
      }
      if ((step + 1) % a.ckptEvery === 0 && !last) await saveCheckpoint(gpu, model, full, opt, a, V, { phase: 'sft', step: step + 1, tokensSeen: ck.tokensSeen, wallSeconds: elapsed() });
    }
    opt.destroy();
  }
  const totalWall = elapsed();

  // ---- samples
  const samples: { prompt: string; reply: string }[] = [];
  for (const q of ['What does the word "water" mean?', 'What does the word "lucid" mean?', 'Define "happy".', 'Use "run" in a sentence.', 'What is the meaning of "computer"?']) {
    const prompt = template.render([{ role: 'user', content: q }], { addGenerationPrompt: true });
    const r = await generate(model, [tokenizer.encode(prompt)], null, { maxNewTokens: 40, eosTokenIds: [ids['<|im_end|>']!] });
    samples.push({ prompt: q, reply: tokenizer.decode(r.tokens[0]!, { skipSpecialTokens: true }) });
    log(`> ${q}\n  ${samples.at(-1)!.reply}`);
  }

  // ---- export (F16 weights, HF layout)
  mkdirSync(a.export, { recursive: true });
  const f32 = await readTensors(gpu, model, a, V, (b) => b);
  const f16 = f32.map((t) => ({ ...t, dtype: 'F16' as const, data: toF16Array(t.data as Float32Array) }));
  writeFileSync(join(a.export, 'model.safetensors'), writeSafetensors(f16, { format: 'pt' }));
  writeFileSync(join(a.export, 'config.json'), JSON.stringify(configJson, null, 2) + '\n');
  writeFileSync(join(a.export, 'tokenizer.json'), readFileSync(tokPath));
  writeFileSync(join(a.export, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2) + '\n');
  writeFileSync(
    join(a.export, 'generation_config.json'),
    JSON.stringify({ bos_token_id: ids['<|endoftext|>'], eos_token_id: ids['<|im_end|>'], pad_token_id: ids['<|endoftext|>'], do_sample: false, max_new_tokens: 64, repetition_penalty: 1.1 }, null, 2) + '\n',
  );
  writeFileSync(join(a.export, 'training-log.csv'), readFileSync(csvPath));
  const run = {
    ...summary, sftTrainLoss: sftTrain, sftValLoss, sftValBefore, sftSteps, totalWall, params: full.parameterCount, V,
    trainRows: trainRows.length, valRows: valRows.length, samples, args: a, adapter: `${gpu.adapter.vendor} ${gpu.adapter.device} ${gpu.adapter.description}`,
  };
  writeFileSync(join(a.out, 'run.json'), JSON.stringify(run, null, 1));
  writeFileSync(join(a.export, 'README.md'), modelCard(run));
  log(`exported to ${a.export}`);
  full.destroy();
  model.destroy();
  process.exit(0);
}

interface RunRecord {
  pretrainTrainLoss: number;
  pretrainValLoss: number;
  pretrainTokens: number;
  pretrainWall: number;
  pretrainSteps: number;
  sftTrainLoss: number;
  sftValLoss: number;
  sftValBefore: number;
  sftSteps: number;
  totalWall: number;
  params: number;
  V: number;
  trainRows: number;
  valRows: number;
  samples: { prompt: string; reply: string }[];
  args: Args;
}

function modelCard(r: RunRecord): string {
  const a = r.args;
  const mins = (s: number) => `${(s / 60).toFixed(1)} min`;
  const epochs = (r.pretrainSteps * a.batch) / r.trainRows;
  return `---
license: other
license_name: wordnet-3.0
library_name: whittle
pipeline_tag: text-generation
language: en
tags: [llama, tiny, from-scratch, wordnet, whittle]
---

# whittle-wordnet-tiny

A ${(r.params / 1e6).toFixed(2)} M-parameter Llama-family language model trained **from scratch by Whittle's own
WebGPU engine** (forward, backward and AdamW all in Whittle's WGSL kernels, run from Node), so the
app has a base model that works offline with no download. It knows one thing: dictionary-style
English, learned from WordNet glosses. It is a demo and a test fixture, not a useful assistant.

## Corpus and licence

- ${CORPUS_SOURCE}: every synset's gloss and example sentences, one document per synset
  (\`words (part of speech): definition. For example: ....\`), 117,659 documents, 12.75 M characters.
- ${CORPUS_LICENSE}
- 1% of the documents (seeded shuffle, seed ${a.seed}) are held out for the validation loss.
- ${a.docs > 0 ? `This run packed the first ${a.docs.toLocaleString('en-US')} shuffled training documents` : 'This run packed all training documents'}
  (${r.trainRows.toLocaleString('en-US')} rows of ${a.seq} tokens); it saw ${(r.pretrainTokens / 1e6).toFixed(2)} M tokens of them.

## Tokenizer

Byte-level BPE (GPT-2 pre-tokenizer and byte map), ${r.V} tokens: 256 bytes, ${r.V - 259} merges learned on a seeded
sample of ${a.bpeDocs} training documents, and the specials \`<|endoftext|>\` (document separator, padding),
\`<|im_start|>\` and \`<|im_end|>\` (ChatML; \`<|im_end|>\` is the EOS). \`tokenizer.json\` is Hugging Face's format.

## Architecture

\`model_type: llama\`: ${a.layers} layers, hidden ${a.hidden}, ${a.heads} query heads / ${a.kvHeads} key-value heads (GQA, head dim ${a.hidden / a.heads}),
SwiGLU MLP ${a.intermediate}, RMSNorm (eps 1e-5), RoPE (theta 10000), tied input/output embeddings,
no biases. **${r.params.toLocaleString('en-US')} parameters**; weights stored as F16 (${((r.params * 2) / 1e6).toFixed(1)} MB).
Trained with ${a.seq}-token sequences; \`max_position_embeddings\` is ${2 * a.seq}.

## Training (the recorded run: \`training-log.csv\`)

1. **Pretraining**: documents joined with \`<|endoftext|>\` and packed into rows of ${a.seq} tokens
   (attention crosses document boundaries inside a row, which is acceptable for pretraining).
   ${r.pretrainSteps} steps of ${a.batch} × ${a.seq} tokens = ${(r.pretrainTokens / 1e6).toFixed(2)} M tokens seen (${epochs.toFixed(2)} epochs of
   ${((r.trainRows * a.seq) / 1e6).toFixed(2)} M training tokens). AdamW (β 0.9/0.95, weight decay 0.1 on matrices, grad
   clip 1), peak LR ${a.lr}, ${a.warmup} warmup steps then cosine to 0 over ${a.steps} steps${r.pretrainSteps < a.steps ? ` (stopped at step ${r.pretrainSteps} by the run's time limit, before the schedule ended)` : ''}. Init N(0, 0.02), residual projections / √(2L).
   - final train loss (mean of the last ${a.logEvery} steps): **${fmt(r.pretrainTrainLoss, 3)}**
   - final validation loss (held-out documents, ${Math.min(8, Math.floor(r.valRows / a.batch)) * a.batch} rows): **${fmt(r.pretrainValLoss, 3)}**
     (uniform guess: ln ${r.V} = ${fmt(Math.log(r.V), 3)})
2. **Instruction tuning** (full parameters, fresh AdamW, peak LR ${a.sftLr}, cosine, ${r.sftSteps} steps of ${a.batch}
   conversations): ChatML conversations generated from WordNet entries — "What does the word "X" mean?" →
   "\\"X\\" (pos) means: definition." and "Use "X" in a sentence." → a WordNet example sentence, with the system
   prompt "${SYSTEM_PROMPT}" on 30% of them. Loss on assistant tokens (and their \`<|im_end|>\`) only.
   - held-out conversations' loss: ${fmt(r.sftValBefore, 3)} before → **${fmt(r.sftValLoss, 3)}** after (train ${fmt(r.sftTrainLoss, 3)})

Wall time: ${mins(r.pretrainWall)} pretraining, ${mins(r.totalWall)} in all, on **Mesa lavapipe** (Vulkan in software)
through Dawn, on **2 CPU cores shared with other jobs** — no GPU. That budget is why the model is this
small: with a real GPU the same recipe (same script, larger \`--hidden/--layers/--steps\`) trains a far larger model.

## Sample generations (greedy, from the run)

${r.samples.map((s) => `- **${s.prompt}** → ${s.reply.trim() || '(empty)'}`).join('\n')}

## Reproduce

\`\`\`
npm run pretrain -- --out .pretrain --vocab ${a.vocab} --bpe-docs ${a.bpeDocs}${a.docs > 0 ? ` --docs ${a.docs}` : ''} --steps ${a.steps} --hidden ${a.hidden} --layers ${a.layers} --heads ${a.heads} --kv-heads ${a.kvHeads} --intermediate ${a.intermediate} --seq ${a.seq} --batch ${a.batch} --lr ${a.lr} --warmup ${a.warmup} --sft-steps ${a.sftSteps} --sft-lr ${a.sftLr} --eval-every ${a.evalEvery} --seed ${a.seed}
npm run pretrain -- --out .pretrain --resume   # continue an interrupted run from its last checkpoint
\`\`\`
(needs Debian's \`wordnet-base\` in /usr/share/wordnet). Results depend on the GPU's float rounding, so
another device gives close but not identical losses.

## Limits

Tiny and trained for minutes: it babbles, invents definitions, repeats itself, and knows nothing
outside WordNet's dictionary style. Do not rely on anything it says. Its use is to exercise Whittle
(loading, chat templates, generation, LoRA fine-tuning) offline.
`;
}

if (process.argv[1]?.endsWith('main.ts')) await main();
