// What the model, training and GPU tests share: opening a model folder, chat data and learnable examples.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatTemplate } from '../../src/data/chatTemplate';
import type { ChatExample, ChatMessage } from '../../src/data/datasetTypes';
import type { TokenSequence } from '../../src/data/examples';
import { TextTokenizer } from '../../src/data/tokenizer';
import { nodeModelDir } from '../../src/formats/nodeByteSource';
import { loadCausalLM, type LoadedModel } from '../../src/model/load';
import type { LoraAdapter } from '../../src/model/lora';
import type { WeightDtype } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { FIXTURES } from '../model/golden';
import { getTestGpu } from './gpu';

/** The model folder at `path` on the test GPU (f32 weights unless asked). */
export async function openModelFolder(path: string, dtype: WeightDtype = 'f32'): Promise<LoadedModel> {
  const gpu = await getTestGpu();
  const dir = await nodeModelDir(path);
  try {
    return await loadCausalLM(gpu, dir, { dtype });
  } finally {
    await dir.close?.();
  }
}

/** The model of test/fixtures/models/<name> on the test GPU (f32 weights unless asked). */
export function openFixtureModel(name: string, dtype: WeightDtype = 'f32'): Promise<LoadedModel> {
  return openModelFolder(join(FIXTURES, 'models', name), dtype);
}

/** A model folder with its tokenizer and chat template, for tests that talk to it in text. */
export async function openChatModel(path: string) {
  const gpu = await getTestGpu();
  const loaded = await openModelFolder(path);
  const tokenizer = TextTokenizer.fromJson(loaded.files.tokenizerJson, loaded.files.tokenizerConfig);
  return { gpu, tokenizer, template: ChatTemplate.fromTokenizer(tokenizer), ...loaded };
}

/**
 * Learnable synthetic examples: prefixes of a few fixed random sequences, so a LoRA can lower the
 * loss in a few steps. The first 1-3 ids are untrained, like a chat prompt.
 */
export function patternExamples(n: number, seed: number, vocab: number): TokenSequence[] {
  const base = new Rng(99);
  const patterns = Array.from({ length: 2 }, () => Uint32Array.from({ length: 16 }, () => base.int(vocab)));
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const len = 6 + rng.int(11);
    const ids = patterns[rng.int(patterns.length)]!.slice(0, len);
    const trained = new Uint8Array(len).fill(1);
    trained.fill(0, 0, 1 + rng.int(3));
    return { ids, trained };
  });
}

/** The chat examples of a JSONL file of `{"messages": [...]}` lines (a shipped sample, a fixture). */
export function readChatJsonl(path: string): ChatExample[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => ({ kind: 'chat', messages: (JSON.parse(l) as { messages: ChatMessage[] }).messages }));
}

/** Loads uniform random A and B in [-range, range) from `rng` into every module of `adapter`. */
export function loadRandomLora(adapter: LoraAdapter, rng: Rng, range: number): void {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const m of adapter.modules.values()) {
    tensors.set(`${m.peftKey}.lora_A.weight`, { shape: [m.r, m.linear.inFeatures], data: rng.f32(m.r * m.linear.inFeatures, -range, range) });
    tensors.set(`${m.peftKey}.lora_B.weight`, { shape: [m.linear.outFeatures, m.r], data: rng.f32(m.linear.outFeatures * m.r, -range, range) });
  }
  adapter.loadTensors((n) => tensors.get(n));
}
