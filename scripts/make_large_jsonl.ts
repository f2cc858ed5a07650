/**
 * Writes a large chat JSONL file of N seeded, varied examples, for measuring the memory the CLI
 * holds while validating and training on big files (bench/NOTES.md). The files are not committed.
 *
 *   npx tsx scripts/make_large_jsonl.ts 150000 /tmp/large-150k.jsonl
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { Rng } from '../src/util/random';

const SUBJECTS = ['the river', 'a teapot', 'the harbour', 'my bicycle', 'the old clock', 'a seed', 'the library', 'winter rain'];
const ASKS = ['Describe', 'Explain', 'Summarise', 'Tell me about', 'What is special about'];
const WORDS = ['quiet', 'bright', 'slow', 'careful', 'warm', 'small', 'steady', 'green', 'patient', 'plain', 'clear', 'kind'];

function sentence(rng: Rng, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[rng.int(WORDS.length)]!);
  return out.join(' ') + '.';
}

export function largeExample(rng: Rng): string {
  const subject = SUBJECTS[rng.int(SUBJECTS.length)]!;
  const ask = `${ASKS[rng.int(ASKS.length)]} ${subject}.`;
  const reply = Array.from({ length: 1 + rng.int(3) }, () => sentence(rng, 3 + rng.int(10))).join(' ');
  return JSON.stringify({
    messages: [
      { role: 'system', content: 'You answer in one short paragraph.' },
      { role: 'user', content: ask },
      { role: 'assistant', content: reply },
    ],
  });
}

async function main(): Promise<void> {
  const [countArg, path] = process.argv.slice(2);
  const count = Number(countArg);
  if (!Number.isInteger(count) || count < 1 || path === undefined) throw new Error('usage: make_large_jsonl.ts COUNT OUT.jsonl');
  const rng = new Rng(count);
  const out = createWriteStream(path);
  for (let i = 0; i < count; i++) {
    if (!out.write(largeExample(rng) + '\n')) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

await main();
