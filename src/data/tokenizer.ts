// Tokenizer over @huggingface/tokenizers, built from the parsed tokenizer.json and
// tokenizer_config.json objects (no file access, so the same code runs in the browser and in Node).

import { Tokenizer } from '@huggingface/tokenizers';

export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

export interface SpecialToken {
  token: string;
  id: number;
}

export interface EncodeOptions {
  /**
   * Apply tokenizer.json's post-processor (e.g. Llama 2 / TinyLlama prepend <s>). Default false:
   * chat templates write their own BOS, and adding it twice is a classic fine-tuning bug.
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /**
   * Default false, so decode(encode(text)) == text for byte-level BPE. Some configs (Llama 3)
   * set clean_up_tokenization_spaces, which rewrites " ." to "."; pass true to follow that.
   */
  cleanUpTokenizationSpaces?: boolean;
}

export interface TokenizerLoadOptions {
  /** A chat template from chat_template.jinja, which overrides tokenizer_config.chat_template. */
  chatTemplate?: string;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** tokenizer_config writes special tokens as strings or as {"content": ..., "__type": "AddedToken"}. */
function tokenString(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  return null;
}

function pickChatTemplate(value: unknown): string | null {
  if (typeof value === 'string') return value;
  // Some repos ship several named templates; "default" is the one apply_chat_template uses.
  if (Array.isArray(value)) {
    const entries = value.filter((e): e is { name: string; template: string } => isObject(e) && typeof e.template === 'string');
    return (entries.find((e) => e.name === 'default') ?? entries[0])?.template ?? null;
  }
  if (isObject(value)) {
    const t = value.default ?? Object.values(value)[0];
    return typeof t === 'string' ? t : null;
  }
  return null;
}

/**
 * Token ids above this are refused: the largest real vocabularies have about 262k entries, and
 * the tokenizer library spends time linear in the largest id (an added token with id 1e9 took
 * minutes to load).
 */
export const MAX_TOKEN_ID = 1 << 21;

function checkTokenIds(tokenizerJson: Json): void {
  const bad = (id: unknown) => typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= MAX_TOKEN_ID;
  for (const token of tokenizerJson.added_tokens as unknown[]) {
    const id = isObject(token) ? token.id : undefined;
    if (bad(id)) {
      throw new TokenizerError(`tokenizer.json added token ${JSON.stringify(isObject(token) ? (token.content ?? null) : token)} has id ${JSON.stringify(id ?? null)}; ids are integers from 0 to ${MAX_TOKEN_ID - 1}`);
    }
  }
  const vocab = (tokenizerJson.model as Json).vocab;
  if (isObject(vocab) && !Array.isArray(vocab)) {
    for (const [token, id] of Object.entries(vocab)) {
      if (bad(id)) throw new TokenizerError(`tokenizer.json vocabulary entry ${JSON.stringify(token)} has id ${JSON.stringify(id)}; ids are integers from 0 to ${MAX_TOKEN_ID - 1}`);
    }
  }
}

export class TextTokenizer {
  readonly bos: SpecialToken | null;
  readonly eos: SpecialToken | null;
  readonly pad: SpecialToken | null;
  readonly unk: SpecialToken | null;
  /** Largest token id + 1 (base vocabulary and added tokens); the model's vocab_size may be larger. */
  readonly vocabSize: number;
  readonly chatTemplate: string | null;
  /** Added tokens flagged special, by content. */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** tokenizer_config.json, with special tokens flattened to strings. */
  readonly config: Readonly<Json>;
  private readonly specialIds: Set<number>;

  private constructor(
    private readonly inner: Tokenizer,
    config: Json,
    chatTemplate: string | null,
  ) {
    this.config = config;
    this.chatTemplate = chatTemplate;
    const special = new Map<string, number>();
    let maxId = -1;
    for (const [id, token] of inner.get_added_tokens_decoder()) {
      if (token.special) special.set(token.content, id);
      maxId = Math.max(maxId, id);
    }
    for (const id of inner.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.specialTokens = special;
    this.specialIds = new Set(special.values());
    const resolve = (field: string): SpecialToken | null => {
      const token = tokenString(config[field]);
      if (token === null) return null;
      const id = inner.token_to_id(token);
      if (id === undefined) throw new TokenizerError(`tokenizer_config ${field} ${JSON.stringify(token)} is not in the vocabulary`);
      return { token, id };
    };
    this.bos = resolve('bos_token');
    this.eos = resolve('eos_token');
    this.pad = resolve('pad_token');
    this.unk = resolve('unk_token');
  }

  /** From parsed tokenizer.json and tokenizer_config.json. */
  static fromJson(tokenizerJson: unknown, tokenizerConfig: unknown, options: TokenizerLoadOptions = {}): TextTokenizer {
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) {
      throw new TokenizerError('tokenizer.json is not a tokenizer (no "model" object)');
    }
    if (!Array.isArray(tokenizerJson.added_tokens)) tokenizerJson = { ...tokenizerJson, added_tokens: [] };
    checkTokenIds(tokenizerJson as Json);
    const raw = isObject(tokenizerConfig) ? tokenizerConfig : {};
    const config: Json = { ...raw };
    for (const field of ['bos_token', 'eos_token', 'pad_token', 'unk_token', 'sep_token', 'cls_token', 'mask_token']) {
      if (field in config) config[field] = tokenString(config[field]) ?? undefined;
    }
    if (Array.isArray(config.additional_special_tokens)) {
      config.additional_special_tokens = config.additional_special_tokens.map(tokenString).filter((t) => t !== null);
    }
    let inner: Tokenizer;
    try {
      inner = new Tokenizer(tokenizerJson as object, config);
    } catch (e) {
      throw new TokenizerError(`cannot build the tokenizer: ${(e as Error).message}`);
    }
    let tokenizer: TextTokenizer;
    try {
      tokenizer = new TextTokenizer(inner, config, options.chatTemplate ?? pickChatTemplate(raw.chat_template));
      if (tokenizer.vocabSize === 0) throw new TokenizerError('tokenizer.json has an empty vocabulary');
      // A tokenizer.json the library accepts can still fail on the first text it meets: find out now.
      tokenizer.decode(tokenizer.encode('Whittle checks the tokenizer: 0123 àé\n'));
    } catch (e) {
      if (e instanceof TokenizerError) throw e;
      throw new TokenizerError(`cannot build the tokenizer: ${(e as Error).message}`);
    }
    return tokenizer;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = this.inner.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
    // A malformed tokenizer.json can map text to ids it has no token for; the model would index past its embedding.
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new TokenizerError(`the tokenizer produced token id ${String(id)}, outside its vocabulary (0..${this.vocabSize - 1})`);
    }
    return ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const list = Array.from(ids);
    for (const id of list) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new TokenizerError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
    if (list.length === 0) return '';
    return this.inner.decode(list, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * Special-token strings chat templates expect (bos_token, eos_token, ...). Unset ones are left
   * out, as transformers does, so `bos_token is defined` tests behave the same.
   */
  templateVariables(): Record<string, string> {
    const vars: Record<string, string> = {};
    if (this.bos) vars.bos_token = this.bos.token;
    if (this.eos) vars.eos_token = this.eos.token;
    if (this.pad) vars.pad_token = this.pad.token;
    if (this.unk) vars.unk_token = this.unk.token;
    return vars;
  }
}
