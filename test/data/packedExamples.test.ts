import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { makeBatches, planBatches } from '../../src/data/batching';
import { ChatTemplate } from '../../src/data/chatTemplate';
import type { ChatExample } from '../../src/data/datasetTypes';
import { tokenizeExample, trainedTargets, type TokenizedExample, type TokenSequence } from '../../src/data/examples';
import type { ExampleList } from '../../src/data/exampleList';
import { PackedExamples } from '../../src/data/packedExamples';
import { TextTokenizer } from '../../src/data/tokenizer';
import { Rng } from '../../src/util/random';

const TINY = new URL('../fixtures/models/tiny-llama/', import.meta.url);
const read = (name: string) => JSON.parse(readFileSync(new URL(name, TINY), 'utf8')) as Record<string, unknown>;
const tokenizer = TextTokenizer.fromJson(read('tokenizer.json'), read('tokenizer_config.json'));
const template = ChatTemplate.fromTokenizer(tokenizer);

/** Seeded chat examples of varied lengths, some with an untrained reply. */
function examples(n: number): ChatExample[] {
  const rng = new Rng(7);
  const words = ['tea', 'river', 'clock', 'seed', 'rain', 'lamp'];
  const text = (k: number) => Array.from({ length: k }, () => words[rng.int(words.length)]!).join(' ');
  return Array.from({ length: n }, () => ({
    kind: 'chat' as const,
    messages: [
      { role: 'user' as const, content: text(1 + rng.int(30)) },
      { role: 'assistant' as const, content: text(1 + rng.int(20)), ...(rng.int(5) === 0 ? { weight: 0 as const } : {}) },
    ],
  }));
}

function pack(list: TokenizedExample[], maxId?: number): PackedExamples {
  const packed = new PackedExamples(maxId === undefined ? {} : { maxId });
  for (const e of list) packed.push(e);
  return packed;
}

const plain = (s: TokenSequence) => ({ ids: Array.from(s.ids), trained: Array.from(s.trained) });
const toArray = <T>(list: ExampleList<T>): T[] => Array.from({ length: list.length }, (_, i) => list.at(i)!);

describe('PackedExamples', () => {
  const chats = examples(60);
  const uncut = chats.map((e) => tokenizeExample(e, tokenizer, template));

  it('gives back each example as pushed, with the longest and truncated counts', () => {
    const packed = pack(uncut);
    expect(packed.count).toBe(60);
    expect(packed.tokens).toBe(uncut.reduce((s, e) => s + e.ids.length, 0));
    expect(packed.longest).toBe(Math.max(...uncut.map((e) => e.fullLength)));
    uncut.forEach((e, i) => expect(plain(packed.get(i))).toEqual(plain(e)));
    const cut = pack(chats.map((e) => tokenizeExample(e, tokenizer, template, { maxSeqLen: 24 })));
    expect(cut.truncatedCount).toBe(uncut.filter((e) => e.ids.length > 24).length);
    expect(cut.truncatedCount).toBeGreaterThan(0);
    expect(cut.longest).toBe(packed.longest);
    expect(() => packed.get(60)).toThrow(RangeError);
  });

  it('cuts an uncut example to exactly what tokenizing it with that maxSeqLen gives', () => {
    const packed = pack(uncut);
    for (const maxSeqLen of [2, 9, 24]) {
      chats.forEach((e, i) => expect(plain(packed.get(i, maxSeqLen))).toEqual(plain(tokenizeExample(e, tokenizer, template, { maxSeqLen }))));
    }
  });

  it('lists the kept examples for batching exactly as a plain array of them', () => {
    const packed = pack(uncut);
    const keep = (e: TokenSequence) => trainedTargets(e) > 0;
    const cut = chats.map((e) => tokenizeExample(e, tokenizer, template, { maxSeqLen: 24 })).filter(keep);
    expect(cut.length).toBeLessThan(60);
    const list = packed.list(24, keep);
    expect(list.length).toBe(cut.length);
    expect(toArray(list).map(plain)).toEqual(cut.map(plain));
    expect(list.at(cut.length)).toBeUndefined();
    expect(list.at(-1)).toBeUndefined();
    expect(toArray(packed.list(24)).map(plain)).toEqual(chats.map((e) => plain(tokenizeExample(e, tokenizer, template, { maxSeqLen: 24 }))));
    const options = { batchSize: 4, maxSeqLen: 24, seed: 3, epoch: 1, padId: 0 };
    expect(planBatches(list, options)).toEqual(planBatches(cut, options));
    expect(makeBatches(list, options)).toEqual(makeBatches(cut, options));
  });

  it('fills chunk after chunk and gives a long example a chunk of its own, copying nothing back', () => {
    const long = (n: number) => {
      const e = { ids: Uint32Array.from({ length: n }, (_, i) => (i * 7) % 97), trained: new Uint8Array(n).fill(1), truncated: false, fullLength: n, fullTrained: n - 1 };
      e.trained[0] = 0;
      return e;
    };
    const pushed: TokenizedExample[] = [];
    for (let i = 0; i < 4000; i++) pushed.push(i % 1000 === 17 ? long(20_000 + i) : i % 500 === 3 ? long(9_000) : uncut[i % 60]!);
    const packed = pack(pushed);
    expect(packed.count).toBe(4000);
    expect(packed.tokens).toBe(pushed.reduce((s, e) => s + e.ids.length, 0));
    expect(packed.tokens).toBeGreaterThan(4 * (1 << 16));
    pushed.forEach((e, i) => expect(plain(packed.get(i))).toEqual(plain(e)));
  });

  it('keeps ids in 2 bytes for a vocabulary of up to 65,536 ids and gives them back as Uint32Array', () => {
    const narrow = pack(uncut, tokenizer.vocabSize - 1);
    expect(tokenizer.vocabSize).toBeLessThanOrEqual(65_536);
    uncut.forEach((e, i) => {
      expect(narrow.get(i).ids).toBeInstanceOf(Uint32Array);
      expect(plain(narrow.get(i, 9))).toEqual(plain(pack([e]).get(0, 9)));
    });
    const options = { batchSize: 4, maxSeqLen: 24, seed: 3, epoch: 1, padId: 0 };
    expect(makeBatches(narrow.list(24), options)).toEqual(makeBatches(pack(uncut).list(24), options));
    const big = { ids: Uint32Array.of(1, 70_000), trained: Uint8Array.of(0, 1), truncated: false, fullLength: 2, fullTrained: 1 };
    expect(() => pack([big], 0xffff)).toThrow(/70000/);
    expect(plain(pack([big], 70_000).get(0)).ids).toEqual([1, 70_000]);
  });
});
