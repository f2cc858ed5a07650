/**
 * How a pirate rewrite is judged on a sentence the pirate-style sample never showed: it must keep
 * the sentence's content and apply the sample's own rules (scripts/make_samples.ts). A rewrite
 * passes when it keeps at least half of the input's content words and applies at least two rules.
 *
 *   /usr/bin/python3 scripts/pretrain/finetune_probe.py --sample pirate-style ... | npx tsx scripts/pirateCriterion.ts
 *
 * scores the probe's JSON lines ({ q, base, tuned }) the same way test/train/demoFinetune.test.ts does.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { PIRATE_WORDS, pirateEnding, pirateWord } from './make_samples';

/** Words that carry no content of their own (articles, pronouns, auxiliaries, prepositions). */
const FUNCTION_WORDS = new Set([
  'a', 'an', 'the', 'i', 'we', 'you', 'he', 'she', 'it', 'they', 'me', 'us', 'him', 'her', 'them', 'my', 'our', 'your',
  'his', 'their', 'its', 'is', 'are', 'am', 'was', 'were', 'be', 'do', 'does', 'have', 'has', 'to', 'of', 'in', 'on',
  'at', 'for', 'by', 'with', 'from', 'and', 'or', 'but', 'this', 'that', 'these', 'those', 'some',
]);

/** Lower-case words of a text; an apostrophe inside or after a word stays with it (th', cookin', y'all). */
function words(text: string): string[] {
  return text.toLowerCase().match(/[a-z]+(?:'[a-z]*)?/g) ?? [];
}

/** The input's words that carry its content: every word but the function words. */
export function contentWords(sentence: string): string[] {
  return words(sentence).filter((w) => !FUNCTION_WORDS.has(w));
}

/** Content words of `input` that `output` keeps, as they are or as the word rules rewrite them. */
export function keptContentWords(input: string, output: string): string[] {
  const out = ` ${words(output).join(' ')} `;
  return contentWords(input).filter((w) => out.includes(` ${w} `) || out.includes(` ${pirateWord(w).toLowerCase()} `));
}

/**
 * The sample's rules that apply to `input` and that `output` shows: each word swap of an input
 * word ("my" -> "me"), "-ing" -> "-in'" on one of its participles, and the ending for its kind
 * of sentence (", arr!", ", matey?", "Yo ho ho!").
 */
export function rulesApplied(input: string, output: string): string[] {
  const out = ` ${words(output).join(' ')} `;
  const inWords = words(input);
  const applied = [...new Set(inWords.filter((w) => PIRATE_WORDS.has(w)))]
    .filter((w) => out.includes(` ${PIRATE_WORDS.get(w)!} `))
    .map((w) => `${w} -> ${PIRATE_WORDS.get(w)!}`);
  const participles = inWords.filter((w) => !PIRATE_WORDS.has(w) && pirateWord(w) !== w);
  if (participles.some((w) => out.includes(` ${pirateWord(w)} `))) applied.push("-ing -> -in'");
  if (output.trim().endsWith(pirateEnding(input.trim()))) applied.push('ending');
  return applied;
}

export interface PirateScore {
  kept: number;
  contentWords: number;
  rules: string[];
  pass: boolean;
}

export function scorePirateRewrite(input: string, output: string): PirateScore {
  const kept = keptContentWords(input, output).length;
  const n = contentWords(input).length;
  const rules = rulesApplied(input, output);
  return { kept, contentWords: n, rules, pass: 2 * kept >= n && rules.length >= 2 };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const lines = readFileSync(0, 'utf8').split('\n').filter((l) => l.startsWith('{'));
  const passed = { base: 0, tuned: 0 };
  for (const line of lines) {
    const { q, base, tuned } = JSON.parse(line) as { q: string; base: string; tuned: string };
    for (const [name, out] of [['base', base], ['tuned', tuned]] as const) {
      const s = scorePirateRewrite(q, out);
      if (s.pass) passed[name]++;
      console.log(`${name} ${s.pass ? 'PASS' : 'fail'} kept ${s.kept}/${s.contentWords} rules [${s.rules.join(', ')}]: ${out}`);
    }
  }
  console.log(`passed: base ${passed.base} of ${lines.length}, tuned ${passed.tuned} of ${lines.length}`);
}
