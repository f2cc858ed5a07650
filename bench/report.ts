/**
 * The one-shot benchmark's two helpers besides the suites: the PyTorch + PEFT peer's input (the
 * train and generate cases of ours, their configs and their very tokens) and the report that
 * merges every suite's result file with the peer's rows into one table and one JSON document.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { randomBatch } from '../src/model/randomModel';
import { markdownTable, type BenchRow } from '../src/bench/table';
import { generatePrompt, generateRowNames } from './generate';
import { namedModel } from './synthetic';
import { DEFAULT_MODELS, layersOption, modelList, positiveInt as positive, SUITE_OPTIONS, weightDtype } from './options';
import { LORA_ALPHA, parseShape, trainCaseName } from './train';
import { DEFAULT_OPTIMIZER } from '../src/train/optimizer';

/** Input of bench/peers/peft_peer.py. */
export interface PeftPeerCases {
  train: Array<{ name: string; config: Record<string, unknown>; B: number; T: number; r: number; alpha: number; lr: number; steps: number; warmup: number; tokens: number[]; targets: number[] }>;
  generate: Array<{ config: Record<string, unknown>; prompt: number[]; newTokens: number; reps: number; prefillName: string; decodeName: string }>;
}

/** One row of bench/peers/peft_peer.py's output: the peer's time for the row of ours named `of`. */
export interface PeftPeerRow {
  suite: 'train' | 'generate';
  of: string;
  dtype: string;
  ms: number;
  tokensPerSecond: number;
}

export interface PeftPeerOutput {
  environment: { torch: string; transformers: string; peft: string; device: string; deviceName: string; [k: string]: unknown };
  rows: PeftPeerRow[];
}

/**
 * The peer's cases for the train and generate flags a bench run got (the same flags and
 * defaults as `npm run bench -- train generate`), so the peer's rows name ours.
 */
export function peftPeerCases(argv: string[]): PeftPeerCases {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...SUITE_OPTIONS,
      // One suite's models, in place of --models.
      'train-models': { type: 'string' },
      'generate-models': { type: 'string' },
    },
  });
  const dtype = weightDtype(values.dtype);
  const layers = layersOption(values.layers);
  const models = (list: string) => modelList(list, layers);
  const rank = positive('rank', values.rank);
  const steps = positive('steps', values.steps);
  const prompt = positive('prompt', values.prompt);
  const newTokens = positive('new-tokens', values['new-tokens']);
  const reps = positive('reps', values.reps);
  const cases: PeftPeerCases = { train: [], generate: [] };
  for (const spec of models(values['train-models'] ?? values.models ?? DEFAULT_MODELS.train)) {
    const named = namedModel(spec.name, spec.layers);
    for (const [B, T] of values.shapes.split(',').map(parseShape)) {
      if (T > named.config.maxPositions) continue; // the train suite skips it too
      const batch = randomBatch(named.config, B, T, 7);
      cases.train.push({
        name: trainCaseName(named.label, B, T, dtype, rank),
        config: named.json,
        B,
        T,
        r: rank,
        alpha: LORA_ALPHA,
        lr: DEFAULT_OPTIMIZER.lr,
        steps,
        warmup: 1,
        tokens: Array.from(batch.tokens),
        targets: Array.from(batch.targets),
      });
    }
  }
  for (const spec of models(values['generate-models'] ?? values.models ?? DEFAULT_MODELS.generate)) {
    const named = namedModel(spec.name, spec.layers);
    const names = generateRowNames(named.label, prompt, newTokens, dtype);
    cases.generate.push({ config: named.json, prompt: generatePrompt(named.config.vocabSize, prompt), newTokens, reps, prefillName: names.prefill, decodeName: names.decode });
  }
  return cases;
}

/** A suite's result file (bench/run.ts's writeResults). */
interface ResultDocument {
  suite: string;
  adapter: Record<string, unknown>;
  machine: Record<string, unknown>;
  flags: Record<string, unknown>;
  seconds: number;
  rows: BenchRow[];
  [k: string]: unknown;
}

/** Every suite result file in `dir` (files that are not one are left alone). */
export function readResultDocuments(dir: string): ResultDocument[] {
  const docs: ResultDocument[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    } catch {
      continue;
    }
    const d = doc as ResultDocument;
    if (typeof d?.suite === 'string' && Array.isArray(d.rows)) docs.push(d);
  }
  const order = ['kernels', 'train', 'generate', 'memory'];
  return docs.sort((a, b) => order.indexOf(a.suite) - order.indexOf(b.suite));
}

/**
 * Our rows with the PEFT peer's merged in: a float32 peer row fills the `peer` columns of the row
 * of ours it names (unless a peer is already there); every other dtype gets its own row right
 * after ours, repeating our time so the speed ratio reads on one line. Peer rows whose row of
 * ours is missing (a suite cut short) are listed with no time of ours.
 */
export function mergePeftPeer(rows: BenchRow[], peer: PeftPeerOutput | null): BenchRow[] {
  if (!peer) return rows;
  const env = peer.environment;
  const label = (dtype: string) => `PEFT ${env.peft} + transformers ${env.transformers}, torch ${env.torch} ${dtype} on ${env.deviceName}`;
  const extra = new Map<BenchRow, BenchRow[]>();
  const orphans: BenchRow[] = [];
  for (const p of peer.rows) {
    const ours = rows.find((r) => r.suite === p.suite && r.name === p.of);
    const gflops = ours?.gflops !== undefined && p.suite === 'train' ? (ours.gflops * ours.ms) / p.ms : undefined;
    const side = { name: label(p.dtype), ms: p.ms, tokensPerSecond: p.tokensPerSecond, ...(gflops !== undefined ? { gflops } : {}) };
    if (!ours) {
      orphans.push({ suite: p.suite, name: p.of, ms: NaN, peer: side, note: 'no row of ours: its suite failed or ran out of time' });
    } else if (p.dtype === 'float32' && !ours.peer) {
      ours.peer = side;
    } else {
      const row: BenchRow = { suite: ours.suite, name: `${ours.name} vs ${p.dtype}`, ms: ours.ms, peer: side, note: 'our time from the row above' };
      if (ours.gflops !== undefined) row.gflops = ours.gflops;
      if (ours.tokensPerSecond !== undefined) row.tokensPerSecond = ours.tokensPerSecond;
      extra.set(ours, [...(extra.get(ours) ?? []), row]);
    }
  }
  return [...rows.flatMap((r) => [r, ...(extra.get(r) ?? [])]), ...orphans];
}

/** The one-shot report: every suite's rows (peer merged in) as one table, and one JSON document. */
export function oneShotReport(dir: string, peer: PeftPeerOutput | null): { table: string; document: Record<string, unknown> } {
  const docs = readResultDocuments(dir);
  if (docs.length === 0 && !peer) throw new Error(`no suite result files in ${dir}`);
  const rows = mergePeftPeer(docs.flatMap((d) => d.rows), peer);
  const first = docs[0];
  const adapter = first?.adapter as { description?: string; device?: string; vendor?: string } | undefined;
  const probe = rows.find((r) => r.name.startsWith('FMA probe'));
  const lines = [
    `adapter: ${adapter ? adapter.description || adapter.device || adapter.vendor : '(no suite finished)'}`,
    ...docs.map((d) => `${d.suite}: ${d.seconds.toFixed(0)} s`),
    ...(probe?.gflops ? [`FMA probe peak: ${probe.gflops.toFixed(1)} GFLOP/s f32 ('of FMA peak' = a row's GFLOP/s over it)`] : []),
    ...(peer ? [`PEFT peer: ${peer.environment.deviceName} (${peer.environment.device}), torch ${peer.environment.torch}, transformers ${peer.environment.transformers}, peft ${peer.environment.peft}`] : ['PEFT peer: none']),
  ];
  const document = {
    date: new Date().toISOString(),
    adapter: first?.adapter,
    machine: first?.machine,
    suites: docs.map(({ rows: _rows, ...rest }) => rest),
    peftPeer: peer?.environment ?? null,
    rows,
  };
  return { table: `${lines.join('\n')}\n\n${markdownTable(rows)}`, document };
}
