// Fuzzing tokenizer.json (and tokenizer_config.json): whatever a model folder holds, loading gives
// a tokenizer that encodes and decodes, or fails with TokenizerError; never another exception.

import { readFileSync } from 'node:fs';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { MAX_TOKEN_ID, TextTokenizer, TokenizerError } from '../../src/data/tokenizer';

type Json = Record<string, unknown>;
const read = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/models/tiny-llama/${name}`, import.meta.url), 'utf8')) as Json;
const TOKENIZER = read('tokenizer.json');
const CONFIG = read('tokenizer_config.json');

function outcome(tokenizerJson: unknown, tokenizerConfig: unknown, text: string): 'accepted' | 'rejected' {
  let tok: TextTokenizer;
  try {
    tok = TextTokenizer.fromJson(structuredClone(tokenizerJson), structuredClone(tokenizerConfig));
  } catch (e) {
    if (e instanceof TokenizerError) return 'rejected';
    throw e;
  }
  try {
    const ids = tok.encode(text);
    expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
    expect(typeof tok.decode(ids)).toBe('string');
  } catch (e) {
    if (e instanceof TokenizerError) return 'rejected';
    throw e;
  }
  return 'accepted';
}

const modelField = fc.constantFrom('type', 'vocab', 'merges', 'unk_token', 'byte_fallback', 'dropout', 'fuse_unk', 'continuing_subword_prefix');
const topField = fc.constantFrom('added_tokens', 'normalizer', 'pre_tokenizer', 'post_processor', 'decoder', 'truncation', 'padding');
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('BPE', 'WordPiece', 'Unigram', 'WordLevel', 'ByteLevel', { type: 'ByteLevel' }, { type: 'Nope' }, [['a', 'b']], ['a b'], { '<unk>': 0 }, [{ id: 1e9, content: 'x', special: true }]),
);
const configEdit = fc.record({ bos_token: fc.jsonValue({ maxDepth: 1 }), eos_token: fc.jsonValue({ maxDepth: 1 }), chat_template: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: [] });

describe('tokenizer.json fuzzing', () => {
  it('the fixture tokenizer is accepted', () => {
    expect(outcome(TOKENIZER, CONFIG, 'hello <|im_end|> world')).toBe('accepted');
  });

  it('refuses token ids past MAX_TOKEN_ID, and an empty vocabulary, by name', () => {
    const huge = structuredClone(TOKENIZER);
    huge.added_tokens = [{ id: 1e9, content: 'x', special: true }];
    expect(() => TextTokenizer.fromJson(huge, CONFIG)).toThrow(`tokenizer.json added token "x" has id 1000000000; ids are integers from 0 to ${MAX_TOKEN_ID - 1}`);
    const empty = structuredClone(TOKENIZER);
    (empty.model as Json).vocab = {};
    (empty.model as Json).merges = [];
    empty.added_tokens = [];
    expect(() => TextTokenizer.fromJson(empty, {})).toThrow(TokenizerError);
  });

  it('any JSON value is accepted or rejected with TokenizerError', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 2 }), (json, config) => {
        outcome(json, config, 'hi');
      }),
      { numRuns: 200, seed: 19 },
    );
  });

  it('the fixture with model, top-level and config fields replaced is accepted or rejected with TokenizerError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), modelField, topField, value), { minLength: 1, maxLength: 3 }),
        configEdit,
        fc.string({ maxLength: 20 }),
        (edits, configPatch, text) => {
          const json = structuredClone(TOKENIZER);
          const model = json.model as Json;
          for (const [inModel, mk, tk, v] of edits) {
            if (inModel) model[mk] = v;
            else json[tk] = v;
          }
          outcome(json, { ...CONFIG, ...configPatch }, text);
        },
      ),
      { numRuns: 300, seed: 20 },
    );
  });
});
