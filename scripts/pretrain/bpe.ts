/**
 * A byte-level BPE tokenizer trainer that writes Hugging Face's tokenizer.json, so the model it
 * makes loads with @huggingface/tokenizers like any Hub model (GPT-2-style ByteLevel
 * pre-tokenizer and decoder). Written here because no npm package trains one.
 */

/** GPT-2's reversible byte -> printable character map. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const map: string[] = new Array(256);
  bs.forEach((b, i) => (map[b] = String.fromCodePoint(cs[i]!)));
  return map;
}

/** The ByteLevel pre-tokenizer's split (GPT-2's pattern). */
const SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface TrainedBpe {
  vocab: Map<string, number>;
  merges: [string, string][];
}

/** Learns `vocabSize - 256 - specials` merges from the texts' word counts. */
export function trainBpe(texts: Iterable<string>, vocabSize: number, specials: number): TrainedBpe {
  const b2u = bytesToUnicode();
  const enc = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    for (const m of text.matchAll(SPLIT)) wordCounts.set(m[0], (wordCounts.get(m[0]) ?? 0) + 1);
  }
  // Words as symbol arrays, with counts.
  const words: { sym: string[]; count: number }[] = [];
  for (const [w, count] of wordCounts) words.push({ sym: [...enc.encode(w)].map((b) => b2u[b]!), count });
  const vocab = new Map<string, number>();
  for (let b = 0; b < 256; b++) vocab.set(b2u[b]!, b);
  const merges: [string, string][] = [];
  const target = vocabSize - specials;
  const key = (a: string, b: string) => `${a}\u0000${b}`;
  while (vocab.size < target) {
    const pairs = new Map<string, number>();
    for (const { sym, count } of words) {
      for (let i = 0; i + 1 < sym.length; i++) {
        const k = key(sym[i]!, sym[i + 1]!);
        pairs.set(k, (pairs.get(k) ?? 0) + count);
      }
    }
    let best = '';
    let bestCount = 1; // a pair seen once is not worth a token
    for (const [k, c] of pairs) {
      if (c > bestCount || (c === bestCount && best !== '' && k < best)) {
        best = k;
        bestCount = c;
      }
    }
    if (!best) break;
    const [a, b] = best.split('\u0000') as [string, string];
    merges.push([a, b]);
    vocab.set(a + b, vocab.size);
    for (const w of words) {
      const s = w.sym;
      if (s.length < 2) continue;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(s[i]!);
      }
      w.sym = out;
    }
  }
  return { vocab, merges };
}

/** tokenizer.json in the layout the Hugging Face tokenizers library writes. */
export function tokenizerJson(bpe: TrainedBpe, specials: string[]): object {
  const vocab: Record<string, number> = Object.fromEntries(bpe.vocab);
  const added = specials.map((content, i) => {
    const id = bpe.vocab.size + i;
    vocab[content] = id;
    return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: bpe.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}
