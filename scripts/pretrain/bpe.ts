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

/**
 * Learns `vocabSize - 256 - specials` merges from the texts' word counts. Pair counts are kept
 * up to date incrementally (only the words holding the merged pair are recounted), so a merge
 * costs the words it touches rather than a pass over the whole vocabulary.
 */
export function trainBpe(texts: Iterable<string>, vocabSize: number, specials: number): TrainedBpe {
  const b2u = bytesToUnicode();
  const enc = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    for (const m of text.matchAll(SPLIT)) wordCounts.set(m[0], (wordCounts.get(m[0]) ?? 0) + 1);
  }
  const symbols: string[] = []; // symbol id -> its string
  const vocab = new Map<string, number>();
  for (let b = 0; b < 256; b++) {
    vocab.set(b2u[b]!, b);
    symbols.push(b2u[b]!);
  }
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, count] of wordCounts) {
    words.push([...enc.encode(w)]);
    counts.push(count);
  }
  // Pair (a, b) as a * 2^16 + b (vocabularies stay under 65536 symbols).
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: number) => {
    const s = words[wi]!;
    const c = counts[wi]! * sign;
    for (let i = 0; i + 1 < s.length; i++) {
      const k = s[i]! * 65536 + s[i + 1]!;
      pairCount.set(k, (pairCount.get(k) ?? 0) + c);
      if (sign > 0) {
        let set = pairWords.get(k);
        if (!set) pairWords.set(k, (set = new Set()));
        set.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1);
  const merges: [string, string][] = [];
  const target = vocabSize - specials;
  const keyString = (k: number) => `${symbols[Math.floor(k / 65536)]!}\u0000${symbols[k % 65536]!}`;
  while (vocab.size < target) {
    let best = -1;
    let bestCount = 1; // a pair seen once is not worth a token
    for (const [k, c] of pairCount) {
      // Ties go to the lexicographically smaller pair, as the rescanning trainer did.
      if (c > bestCount || (c === bestCount && best >= 0 && keyString(k) < keyString(best))) {
        best = k;
        bestCount = c;
      }
    }
    if (best < 0) break;
    const a = Math.floor(best / 65536);
    const b = best % 65536;
    const merged = symbols.length;
    const text = symbols[a]! + symbols[b]!;
    symbols.push(text);
    merges.push([symbols[a]!, symbols[b]!]);
    // Different merges can spell the same string ("ab"+"c", "a"+"bc"): one id for both.
    if (!vocab.has(text)) vocab.set(text, vocab.size);
    for (const wi of pairWords.get(best) ?? []) {
      const s = words[wi]!;
      addPairs(wi, -1);
      const out: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(s[i]!);
      }
      words[wi] = out;
      addPairs(wi, 1);
    }
    pairWords.delete(best);
    for (const [k, c] of pairCount) if (c <= 0) pairCount.delete(k);
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
