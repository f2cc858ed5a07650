/**
 * Corpus and tokenizer of whittle-bilingual-small: reads the installed text (WordNet glosses from
 * Debian's wordnet-base, Chinese fortunes and Tang/Song poems from Debian's fortunes-zh), mixes in
 * the synthetic bilingual conversations of bilingualTasks.ts, learns a byte-level BPE on a
 * balanced English/Chinese sample, and writes the token stream that train_bilingual.py trains on:
 *
 *   npx tsx scripts/pretrain/bilingualData.ts --out .pretrain-bilingual [--vocab 6144] [--seed 2027]
 *       [--mix copy-rich|clinic-copy|desk-variety]   conversations from copyRichTask,
 *           clinicCopyTask or deskVarietyTask (the continued pretrainings' data) instead of bilingualTask
 *
 * Writes OUT/tokenizer.json, OUT/tokenizer_config.json, OUT/train.bin and OUT/valid.bin (uint16
 * token ids, documents separated by <|endoftext|>) and OUT/corpus.json (counts for the model card).
 * The text itself is never committed: this script reads it from the installed packages.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Rng } from '../../src/util/random';
import { readWordNet, entryText, type WordNetEntry } from './corpus';
import { trainBpe, tokenizerJson } from './bpe';
import { bilingualTask, clinicCopyTask, copyRichTask, type ChatTurn, type CopyVocabulary } from './bilingualTasks';
import { deskVarietyTask } from './deskTasks';
import { SPECIALS, tokenizerConfigJson } from './main';

const FORTUNES_DIR = '/usr/share/games/fortunes';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

/** fortune files: entries separated by "%" lines; ANSI colour codes and attributions dropped. */
export function readFortunes(file: string): string[] {
  const path = join(FORTUNES_DIR, file);
  if (!existsSync(path)) throw new Error(`${path} is missing: apt-get install fortunes-zh`);
  return readFileSync(path, 'utf8')
    .split(/\n%\n/)
    // eslint-disable-next-line no-control-regex
    .map((e) => e.replace(/\x1b\[[0-9;]*m/g, '').replace(/\n\s*--.*$/s, '').replace(/[ \t]*\n[ \t]*/g, (m) => (m.includes('\n') ? '\n' : m)).trim())
    .map((e) => e.replace(/([\u3000-\u9fff\uff00-\uffef])\n(?=[\u3000-\u9fff\uff00-\uffef])/g, '$1'))
    .filter((e) => e.length >= 8);
}

export function chatText(turns: readonly ChatTurn[]): string {
  return turns.map((t) => `<|im_start|>${t.role}\n${t.content}<|im_end|>\n`).join('');
}

function shuffle<T>(rng: Rng, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Plain nouns and adjectives that WordNet's own glosses use at least 3 times (so not too rare). */
function copyVocabulary(wordnet: WordNetEntry[]): CopyVocabulary {
  const freq = new Map<string, number>();
  for (const e of wordnet) for (const w of e.definition.toLowerCase().match(/[a-z]+/g) ?? []) freq.set(w, (freq.get(w) ?? 0) + 1);
  const words = (pos: WordNetEntry['pos']) =>
    [...new Set(wordnet.filter((e) => e.pos === pos).flatMap((e) => e.words))].filter((w) => /^[a-z]{3,10}$/.test(w) && (freq.get(w) ?? 0) >= 3).sort();
  return { nouns: words('noun'), adjectives: words('adjective') };
}

function main(): void {
  const out = arg('out', '.pretrain-bilingual');
  const vocab = Number(arg('vocab', '6144'));
  const seed = Number(arg('seed', '2027'));
  const chats = Number(arg('chats', '60000'));
  const maxLen = Number(arg('positions', '512'));
  mkdirSync(out, { recursive: true });
  const rng = new Rng(seed);
  const t0 = Date.now();

  const wordnet = readWordNet();
  const wnDocs = shuffle(rng, wordnet.map(entryText));
  const defs: [string, string][] = wordnet.filter((e) => e.words[0]!.length > 2).map((e) => [e.words[0]!, e.definition]);
  const examplesEn = wordnet.flatMap((e) => e.examples).filter((x) => x.length > 12 && x.length < 120);
  const zhDocs = shuffle(rng, [...readFortunes('chinese'), ...readFortunes('tang300'), ...readFortunes('song100')]);
  const zhSentences = zhDocs.flatMap((d) => d.split(/(?<=[。！？])/)).map((x) => x.trim()).filter((x) => x.length >= 6 && x.length <= 50 && /[\u4e00-\u9fff]/.test(x) && !/\n/.test(x));
  const mix = arg('mix', 'base');
  const tasks = { base: null, 'copy-rich': copyRichTask, 'clinic-copy': clinicCopyTask, 'desk-variety': deskVarietyTask }[mix];
  if (tasks === undefined) throw new Error(`--mix must be base, copy-rich, clinic-copy or desk-variety, not ${mix}`);
  const vocabulary = tasks ? copyVocabulary(wordnet) : null;
  const chatDocs = Array.from({ length: chats }, () =>
    chatText(tasks && vocabulary ? tasks(rng, vocabulary, examplesEn, zhSentences, defs) : bilingualTask(rng, examplesEn, zhSentences, defs)));

  // Plain text: as many English characters as Chinese ones (WordNet would otherwise swamp it).
  const zhChars = zhDocs.reduce((n, d) => n + d.length, 0);
  const enDocs: string[] = [];
  for (let i = 0, n = 0; i < wnDocs.length && n < zhChars * 1.5; i++) {
    enDocs.push(wnDocs[i]!);
    n += wnDocs[i]!.length;
  }
  const docs = shuffle(rng, [...enDocs, ...zhDocs, ...chatDocs]);
  const nValid = Math.round(docs.length * 0.01);

  const tokPath = join(out, 'tokenizer.json');
  if (!existsSync(tokPath)) {
    // Balanced sample: every Chinese document and conversation text, and English glosses of
    // about the same size, so common Chinese characters earn whole-character merges.
    const sample = [...zhDocs, ...enDocs.slice(0, Math.round(enDocs.length * 0.6)), ...chatDocs.slice(0, 15000).map((c) => c.replace(/<\|im_(start|end)\|>/g, ' '))];
    const bpe = trainBpe(sample, vocab, SPECIALS.length);
    writeFileSync(tokPath, JSON.stringify(tokenizerJson(bpe, SPECIALS)));
    console.log(`[${((Date.now() - t0) / 1000).toFixed(0)}s] tokenizer: ${bpe.vocab.size + SPECIALS.length} tokens`);
  }
  const tokJson = JSON.parse(readFileSync(tokPath, 'utf8')) as { model: { vocab: Record<string, number> } };
  const ids: Record<string, number> = {};
  for (const s of SPECIALS) ids[s] = tokJson.model.vocab[s]!;
  const config = tokenizerConfigJson(ids, maxLen);
  writeFileSync(join(out, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
  const tok = new Tokenizer(tokJson as never, config as never);
  const eot = ids['<|endoftext|>']!;
  const encode = (list: string[]) => {
    const parts: number[] = [];
    for (const d of list) {
      for (const id of tok.encode(d, { add_special_tokens: false }).ids) parts.push(id);
      parts.push(eot);
    }
    return Uint16Array.from(parts);
  };
  const valid = encode(docs.slice(0, nValid));
  const train = encode(docs.slice(nValid));
  writeFileSync(join(out, 'valid.bin'), valid);
  writeFileSync(join(out, 'train.bin'), train);

  // How many of the 3000 most frequent Chinese characters are one token.
  const freq = new Map<string, number>();
  for (const d of zhDocs) for (const ch of d) if (/[\u4e00-\u9fff]/.test(ch)) freq.set(ch, (freq.get(ch) ?? 0) + 1);
  const top = [...freq].sort((x, y) => y[1] - x[1]).map(([c]) => c);
  const single = (n: number) => top.slice(0, n).filter((c) => tok.encode(c, { add_special_tokens: false }).ids.length === 1).length;
  const stats = {
    seed, vocab, chats, mix, copyVocabulary: vocabulary ? { nouns: vocabulary.nouns.length, adjectives: vocabulary.adjectives.length } : null,
    documents: { wordnetGlosses: enDocs.length, chineseFortunesAndPoems: zhDocs.length, conversations: chatDocs.length, valid: nValid },
    characters: { english: enDocs.reduce((n, d) => n + d.length, 0), chinese: zhChars, conversations: chatDocs.reduce((n, d) => n + d.length, 0) },
    tokens: { train: train.length, valid: valid.length },
    chineseSingleToken: { top500: single(500), top1000: single(1000), top2000: single(2000), top3000: single(3000) },
  };
  writeFileSync(join(out, 'corpus.json'), JSON.stringify(stats, null, 2) + '\n');
  console.log(`[${((Date.now() - t0) / 1000).toFixed(0)}s]`, JSON.stringify(stats));
}

main();
