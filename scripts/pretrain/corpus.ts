/**
 * The embedded model's corpus: WordNet 3.0 glosses and example sentences, from Debian's
 * `wordnet-base` package (/usr/share/wordnet). WordNet's licence permits use, copying,
 * modification and distribution with its notice (see CORPUS_LICENSE), so the trained weights
 * can ship with the app.
 */
import { readFileSync } from 'node:fs';

export const WORDNET_DIR = '/usr/share/wordnet';
export const CORPUS_SOURCE = 'WordNet 3.0 (Princeton University), Debian package wordnet-base 1:3.0';
export const CORPUS_LICENSE =
  'WordNet 3.0 license: permission to use, copy, modify and distribute this software and database ' +
  'for any purpose and without fee or royalty is granted, with the copyright notice retained. ' +
  'Copyright 2006 by Princeton University.';

export type PartOfSpeech = 'noun' | 'verb' | 'adjective' | 'adverb';

export interface WordNetEntry {
  words: string[];
  pos: PartOfSpeech;
  definition: string;
  examples: string[];
}

const FILES: [string, PartOfSpeech][] = [
  ['data.noun', 'noun'],
  ['data.verb', 'verb'],
  ['data.adj', 'adjective'],
  ['data.adv', 'adverb'],
];

/** Parses one data.* line: `offset lexfile pos w_cnt word lex_id ... | gloss; "example"; ...`. */
export function parseDataLine(line: string, pos: PartOfSpeech): WordNetEntry | null {
  if (line.startsWith('  ')) return null; // licence header
  const bar = line.indexOf(' | ');
  if (bar < 0) return null;
  const fields = line.slice(0, bar).split(' ');
  const count = parseInt(fields[3]!, 16);
  const words: string[] = [];
  for (let i = 0; i < count; i++) {
    // Adjective markers such as "(a)" or "(p)" follow some words.
    words.push(fields[4 + 2 * i]!.replace(/\([a-z]+\)$/, '').replace(/_/g, ' '));
  }
  const gloss = line.slice(bar + 3).trim();
  const examples = [...gloss.matchAll(/"([^"]+)"/g)].map((m) => m[1]!.trim());
  const definition = gloss.replace(/;?\s*"[^"]*"/g, '').replace(/[;\s]+$/, '').trim();
  if (!definition) return null;
  return { words, pos, definition, examples };
}

export function readWordNet(dir = WORDNET_DIR): WordNetEntry[] {
  const out: WordNetEntry[] = [];
  for (const [file, pos] of FILES) {
    for (const line of readFileSync(`${dir}/${file}`, 'latin1').split('\n')) {
      const e = parseDataLine(line, pos);
      if (e) out.push(e);
    }
  }
  return out;
}

/** A pretraining document for one entry: the definition, then the examples. */
export function entryText(e: WordNetEntry): string {
  const head = e.words.slice(0, 3).join(', ');
  let text = `${head} (${e.pos}): ${e.definition}.`;
  for (const ex of e.examples) text += ` For example: ${ex}.`;
  return text.replace(/\.\./g, '.');
}
