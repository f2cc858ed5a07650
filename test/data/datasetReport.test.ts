import { createReadStream, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  buildDatasetReport,
  DatasetReportBuilder,
  exampleKey,
  formatIssue,
  tokenHistogram,
  validateJsonl,
  type DatasetReportOptions,
} from '../../src/data/datasetReport';
import type { ChatExample, DatasetReport, ParsedLine, TokenCount } from '../../src/data/datasetTypes';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/data/${name}`, import.meta.url));

/** A stand-in tokenizer: 2 tokens of template per message plus one per character. */
function fakeCount(example: ChatExample): TokenCount {
  let tokens = 0;
  let trainedTokens = 0;
  for (const m of example.messages) {
    tokens += 2 + m.content.length;
    if (example.kind === 'text' || (m.role === 'assistant' && m.weight !== 0)) trainedTokens += 1 + m.content.length;
  }
  return { tokens, trainedTokens };
}

const chatLine = (user: string, reply: string, system?: string) =>
  JSON.stringify({
    messages: [...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content: user }, { role: 'assistant', content: reply }],
  });

function report(lines: string[], options: DatasetReportOptions = {}): Promise<DatasetReport> {
  return validateJsonl(lines.join('\n'), options);
}

describe('onValidExample', () => {
  it('hands over each valid example as it is read, with its line and format, as keepExamples keeps them', async () => {
    const lines = [chatLine('a', 'b'), '{"messages": 3}', JSON.stringify({ prompt: 'p', completion: 'c' }), chatLine('c', 'd', 'sys')];
    const seen: [number, string, string][] = [];
    const r = await report(lines, { keepExamples: true, onValidExample: (example, line, format) => seen.push([line, format, example.messages.at(-1)!.content]) });
    expect(seen).toEqual([
      [1, 'chat', 'b'],
      [3, 'prompt_completion', 'c'],
      [4, 'chat', 'd'],
    ]);
    expect(r.format).toBe('chat');
    expect(r.validExamples!.map((l) => l.line)).toEqual([1, 4]);
  });
});

describe('report on the error fixture', () => {
  it('lists every error kind with its line number', async () => {
    const r = await validateJsonl(createReadStream(fixture('chat_errors.jsonl')), { countTokens: fakeCount, maxSeqLen: 4096 });
    expect(r.errors.map(formatIssue)).toEqual([
      expect.stringMatching(/^line 2: not valid JSON \(/),
      'line 3: not a JSON object (got an array); each line must be one {...} example',
      'line 4: unknown key "mesages" (did you mean "messages"?)',
      'line 4: no "messages" list',
      'line 5: "messages" is a string, not a list',
      'line 6: messages[0].role is missing',
      'line 7: messages[0].content is missing',
      'line 8: messages[1].role "bot" is not one of system, user, assistant (did you mean "assistant"?)',
      'line 9: unknown key "contents" in messages[0] (did you mean "content"?)',
      'line 10: messages[0].content is an array, not a string (content parts are not supported; join them into one string)',
      'line 11: messages[0].content is empty',
      'line 12: no assistant message: each example needs at least one reply to learn from',
      'line 13: messages[1].weight is 0.5; it must be 0 or 1',
      'line 14: "tools" (tool / function calling) is not supported yet; remove it',
      'line 14: "tool_calls" (tool / function calling) is not supported yet; remove it',
      'line 14: messages[1].content is null, not a string',
      'line 14: messages[2].role "tool" (tool / function calling) is not supported yet',
      'line 16: this line is a prompt/completion example but the file is chat (messages); use one format per file',
      'line 17: every assistant message has weight 0, so nothing would be trained on',
    ]);
    expect(r.errorCount).toBe(19);
    expect(r.errorCounts).toEqual({
      invalid_json: 1,
      not_object: 1,
      unknown_key: 2,
      missing_messages: 1,
      invalid_messages: 1,
      missing_role: 1,
      missing_content: 1,
      invalid_role: 1,
      content_not_string: 2,
      empty_content: 1,
      no_assistant_message: 1,
      invalid_weight: 1,
      unsupported_feature: 3,
      mixed_format: 1,
      nothing_to_train: 1,
    });
    expect(r.errorsTruncated).toBe(false);
    expect(r).toMatchObject({
      ok: false,
      format: 'chat',
      formatSource: 'majority',
      formatFirstLine: 1,
      formatCounts: { chat: 13, prompt_completion: 1, text: 0 },
      lines: 18,
      nonBlankLines: 17,
      examples: 2,
      invalidLines: 15,
    });
    expect(r.warnings.map((w) => w.code)).toEqual(['too_few_examples', 'missing_system']);
    expect(r.warnings[1]).toMatchObject({ count: 1, lines: [18] });
  });

  it('gives the same report for the file read whole, as bytes and as a stream', async () => {
    const text = readFileSync(fixture('chat_errors.jsonl'), 'utf8');
    const options = { countTokens: fakeCount, maxSeqLen: 64 };
    const fromString = await validateJsonl(text, options);
    const fromBytes = await validateJsonl(new TextEncoder().encode(text), options);
    const fromStream = await validateJsonl(createReadStream(fixture('chat_errors.jsonl'), { highWaterMark: 7 }), options);
    expect(fromBytes).toEqual(fromString);
    expect(fromStream).toEqual(fromString);
  });
});

describe('format detection', () => {
  it('reads each fixture format cleanly', async () => {
    const chat = await validateJsonl(createReadStream(fixture('chat_valid.jsonl')), { countTokens: fakeCount, keepExamples: true });
    expect(chat).toMatchObject({ ok: true, format: 'chat', examples: 12, errorCount: 0, warnings: [] });
    const weighted = chat.validExamples![3]!.example.messages;
    expect(weighted.map((m) => m.weight)).toEqual([undefined, undefined, 0, undefined, 1]);
    expect(chat.validExamples![5]!.example.messages[1]!.name).toBe('alice');

    const pc = await validateJsonl(createReadStream(fixture('prompt_completion.jsonl')), { keepExamples: true });
    expect(pc).toMatchObject({ ok: true, format: 'prompt_completion', examples: 10, errorCount: 0, warnings: [] });
    expect(pc.validExamples![0]).toEqual({
      line: 1,
      example: {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'What is 2+2?' },
          { role: 'assistant', content: ' 4.' },
        ],
      },
    });

    const text = await validateJsonl(createReadStream(fixture('text.jsonl')), { keepExamples: true });
    expect(text).toMatchObject({ ok: true, format: 'text', examples: 10, errorCount: 0, warnings: [] });
    expect(text.validExamples![0]!.example).toEqual({ kind: 'text', messages: [{ role: 'assistant', content: 'What is 2+2? 4.' }] });
  });

  it('takes the majority format and flags the other lines', async () => {
    const pc = (i: number) => JSON.stringify({ prompt: `p${i}`, completion: `c${i}` });
    const r = await report([chatLine('a', 'b'), pc(1), chatLine('c', 'd'), pc(2), pc(3)]);
    expect(r).toMatchObject({ format: 'prompt_completion', formatSource: 'majority', formatFirstLine: 2, examples: 3, invalidLines: 2 });
    expect(r.formatCounts).toEqual({ chat: 2, prompt_completion: 3, text: 0 });
    expect(r.errors.map(formatIssue)).toEqual([
      'line 1: this line is a chat (messages) example but the file is prompt/completion; use one format per file',
      'line 3: this line is a chat (messages) example but the file is prompt/completion; use one format per file',
    ]);
  });

  it('breaks a tie in favour of the format seen first', async () => {
    const text = (i: number) => JSON.stringify({ text: `t${i}` });
    const a = await report([text(1), chatLine('a', 'b'), text(2), chatLine('c', 'd')]);
    expect(a).toMatchObject({ format: 'text', formatFirstLine: 1 });
    const b = await report([chatLine('a', 'b'), text(1), text(2), chatLine('c', 'd')]);
    expect(b).toMatchObject({ format: 'chat', formatFirstLine: 1 });
  });

  it("validates lines without a format key against the file's format", async () => {
    const pc = (i: number) => JSON.stringify({ prompt: `p${i}`, completion: `c${i}` });
    const r = await report([pc(1), '{"promt":"x","completion":"y"}', '{"answer":1}']);
    expect(r.format).toBe('prompt_completion');
    // Line 2 has "completion", so it counts as prompt/completion; line 3 has no format key.
    expect(r.errors.map(formatIssue)).toEqual([
      'line 2: unknown key "promt" (did you mean "prompt"?)',
      'line 2: prompt is missing (for examples without a prompt, use {"text": ...})',
      'line 3: unknown key "answer"',
      'line 3: prompt is missing (for examples without a prompt, use {"text": ...})',
      'line 3: completion is missing',
    ]);
  });

  it('defaults to chat when no line names a format', async () => {
    const r = await report(['{"mesages":[]}', '42']);
    expect(r).toMatchObject({ format: 'chat', formatSource: 'default', formatFirstLine: 0, examples: 0, invalidLines: 2, ok: false });
    expect(r.errors.map((e) => e.code)).toEqual(['unknown_key', 'missing_messages', 'not_object']);
  });
});

describe('warnings', () => {
  const tenValid = Array.from({ length: 10 }, (_, i) => chatLine(`question ${i}`, `answer ${i}`, 'sys'));

  it('no examples', async () => {
    const empty = await validateJsonl('');
    expect(empty.warnings).toEqual([{ code: 'no_examples', message: 'the file has no examples' }]);
    expect(empty).toMatchObject({ ok: false, examples: 0, lines: 0, stats: null, epochs: 0 });
    const broken = await report(['{', '[]']);
    expect(broken.warnings).toEqual([{ code: 'no_examples', message: 'no valid examples: fix the errors listed' }]);
  });

  it('fewer than 10 examples, and not at 10', async () => {
    const nine = await report(tenValid.slice(0, 9));
    expect(nine.warnings).toEqual([
      { code: 'too_few_examples', count: 9, message: 'only 9 valid examples; at least 10 are needed, and 50 to 100 usually work better' },
    ]);
    expect((await report(tenValid)).warnings).toEqual([]);
    expect((await report(tenValid.slice(0, 3), { minExamples: 3 })).warnings).toEqual([]);
  });

  it('no system or no user message', async () => {
    const lines = [
      ...tenValid,
      chatLine('no system', 'x'),
      JSON.stringify({ messages: [{ role: 'system', content: 's' }, { role: 'assistant', content: 'no user' }] }),
      JSON.stringify({ messages: [{ role: 'assistant', content: 'neither' }] }),
    ];
    const r = await report(lines);
    expect(r.ok).toBe(true);
    expect(r.warnings).toEqual([
      {
        code: 'missing_system',
        count: 2,
        lines: [11, 13],
        message: '2 examples have no system message (lines 11, 13); fine if intended, but use the same system message you will use at inference',
      },
      { code: 'missing_user', count: 2, lines: [12, 13], message: '2 examples have no user message (lines 12, 13)' },
    ]);
  });

  it('examples over the max sequence length, and what truncation does to them', async () => {
    // fakeCount: user "q" + reply of n chars = (2+1) + (2+n) tokens, n+1 trained; the others have 27.
    const lines = [...tenValid, chatLine('q', 'r'.repeat(40)), chatLine('q', 'r'.repeat(60))];
    const r = await report(lines, { countTokens: fakeCount, maxSeqLen: 40 });
    expect(r.truncatedExamples).toBe(2);
    const tooLong = r.warnings.find((w) => w.code === 'too_long')!;
    expect(tooLong).toMatchObject({ count: 2, lines: [11, 12] });
    expect(tooLong.message).toBe(
      '2 examples are longer than the max sequence length of 40 tokens (lines 11, 12; longest 65): they will be truncated from the end, so tokens past 40 are not trained on',
    );
    expect(r.stats!.max).toBe(65);
    // Lines 11 and 12 keep 41 - 5 and 61 - 25 of their trained tokens.
    expect(r.warnings.some((w) => w.code === 'nothing_trained_after_truncation')).toBe(false);
  });

  it('examples that lose every trained token to truncation', async () => {
    const long = JSON.stringify({ messages: [{ role: 'user', content: 'u'.repeat(50) }, { role: 'assistant', content: 'short' }] });
    const r = await report([...tenValid, long], { countTokens: fakeCount, maxSeqLen: 40 });
    // 52 + 7 = 59 tokens, 6 trained at the end: the cut at 40 drops 19 >= 6.
    expect(r.warnings.find((w) => w.code === 'nothing_trained_after_truncation')).toEqual({
      code: 'nothing_trained_after_truncation',
      count: 1,
      lines: [11],
      message:
        '1 example loses every trained token to truncation and will teach nothing (line 11); shorten them or raise the max sequence length',
    });
    // A tokenizer that knows where the trained tokens are overrides the estimate.
    const r2 = await report([...tenValid, long], {
      countTokens: (e) => ({ ...fakeCount(e), trainedTokensKept: e.messages[0]!.content.length === 50 ? 3 : 0 }),
      maxSeqLen: 40,
    });
    expect(r2.warnings.some((w) => w.code === 'nothing_trained_after_truncation')).toBe(false);
    expect(r2.stats!.trainedTokensAfterTruncation).toBe(r2.stats!.trainedTokens - 6 + 3);
  });

  it('duplicates: same normalised example, whatever the key order or an explicit weight 1', async () => {
    const a = chatLine('hi', 'hello', 'sys');
    const reordered = JSON.stringify({
      messages: [{ content: 'sys', role: 'system' }, { content: 'hi', role: 'user' }, { role: 'assistant', content: 'hello', weight: 1 }],
    });
    const weighted0 = JSON.stringify({
      messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello', weight: 0 }, { role: 'assistant', content: 'x' }],
    });
    const r = await report([...tenValid, a, reordered, weighted0, a, tenValid[2]!]);
    expect(r.duplicateCount).toBe(3);
    expect(r.duplicates).toEqual([
      { line: 12, duplicateOf: 11 },
      { line: 14, duplicateOf: 11 },
      { line: 15, duplicateOf: 3 },
    ]);
    expect(r.warnings).toEqual([
      {
        code: 'duplicates',
        count: 3,
        lines: [12, 14, 15],
        message: '3 examples repeat an earlier one (line 12 repeats line 11, line 14 repeats line 11, line 15 repeats line 3)',
      },
    ]);
  });

  it('caps the lines quoted in a warning and the duplicate pairs listed', async () => {
    const line = chatLine('same', 'same');
    const r = await report(Array.from({ length: 30 }, () => line), { maxListedDuplicates: 5, maxWarningLines: 3 });
    expect(r.duplicateCount).toBe(29);
    expect(r.duplicates).toHaveLength(5);
    const warning = r.warnings.find((w) => w.code === 'duplicates')!;
    expect(warning.lines).toEqual([2, 3, 4]);
    expect(warning.message).toBe('29 examples repeat an earlier one (line 2 repeats line 1, line 3 repeats line 1, line 4 repeats line 1, …)');
    expect(r.warnings.find((w) => w.code === 'missing_system')!.message).toContain('(lines 1, 2, 3, …)');
  });
});

describe('token statistics and the job estimate', () => {
  // Example i: user "q" (3 tokens) + reply of i chars (2 + i tokens, i + 1 trained), i = 1..12.
  const lines = Array.from({ length: 12 }, (_, k) => chatLine('q', 'r'.repeat(k + 1)));
  const tokens = Array.from({ length: 12 }, (_, k) => 5 + k + 1);
  const trained = Array.from({ length: 12 }, (_, k) => k + 2);
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);

  it('computes totals, min/mean/median/p95/max and a histogram', async () => {
    const r = await report(lines, { countTokens: fakeCount, maxSeqLen: 1000 });
    const stats = r.stats!;
    expect(stats).toMatchObject({
      examples: 12,
      totalTokens: sum(tokens),
      trainedTokens: sum(trained),
      processedTokens: sum(tokens),
      trainedTokensAfterTruncation: sum(trained),
      min: 6,
      max: 17,
      mean: sum(tokens) / 12,
      median: 11,
      p95: 17,
    });
    expect(stats.histogram.reduce((n, b) => n + b.count, 0)).toBe(12);
    expect(stats.histogram[0]!.lo).toBe(6);
    expect(stats.histogram.at(-1)!.hi).toBeGreaterThan(17);
  });

  it('applies truncation to processed and trained tokens', async () => {
    const r = await report(lines, { countTokens: fakeCount, maxSeqLen: 10 });
    const cut = tokens.map((t) => Math.min(t, 10));
    // The default estimate: what is cut off is trained tokens first.
    const kept = tokens.map((t, i) => Math.max(0, trained[i]! - Math.max(0, t - 10)));
    expect(r.stats!.processedTokens).toBe(sum(cut));
    expect(r.stats!.trainedTokensAfterTruncation).toBe(sum(kept));
    expect(r.truncatedExamples).toBe(tokens.filter((t) => t > 10).length);
  });

  it('billed tokens = epochs x trained tokens; time = epochs x processed tokens / speed', async () => {
    const auto = await report(lines, { countTokens: fakeCount, maxSeqLen: 1000, tokensPerSecond: 50 });
    expect(auto).toMatchObject({ epochs: 8, epochsAuto: true }); // floor(100 / 12)
    expect(auto.billedTokens).toBe(8 * sum(trained));
    expect(auto.estimatedSeconds).toBeCloseTo((8 * sum(tokens)) / 50, 10);
    const fixed = await report(lines, { countTokens: fakeCount, epochs: 2 });
    expect(fixed).toMatchObject({ epochs: 2, epochsAuto: false, billedTokens: 2 * sum(trained), estimatedSeconds: null });
    const noTokenizer = await report(lines, { tokensPerSecond: 50 });
    expect(noTokenizer).toMatchObject({ stats: null, billedTokens: null, estimatedSeconds: null, examples: 12 });
  });

  it('passes maxSeqLen to the counter', async () => {
    const seen: Array<number | undefined> = [];
    await report(lines.slice(0, 2), { countTokens: (e, max) => (seen.push(max), fakeCount(e)), maxSeqLen: 77 });
    expect(seen).toEqual([77, 77]);
  });

  it('turns a failing or inconsistent tokenizer into line errors', async () => {
    const r = await report([chatLine('boom', 'x'), chatLine('bad', 'x'), chatLine('ok', 'x'), chatLine('nan', 'x')], {
      countTokens: (e) => {
        const q = e.messages[0]!.content;
        if (q === 'boom') throw new Error('template exploded');
        if (q === 'bad') return { tokens: 3, trainedTokens: 5 };
        if (q === 'nan') return { tokens: Number.NaN, trainedTokens: 0 };
        return fakeCount(e);
      },
    });
    expect(r.errors.map(formatIssue)).toEqual([
      'line 1: could not tokenize this example (template exploded)',
      'line 2: could not tokenize this example (the token counter returned inconsistent counts)',
      'line 4: could not tokenize this example (the token counter returned inconsistent counts)',
    ]);
    expect(r.examples).toBe(1);
    expect(r.stats!.examples).toBe(1);
  });

  it('builds histograms with equal integer buckets', () => {
    expect(tokenHistogram([], 5)).toEqual([]);
    expect(tokenHistogram([7, 7], 5)).toEqual([{ lo: 7, hi: 8, count: 2 }]);
    expect(tokenHistogram([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 5)).toEqual([
      { lo: 0, hi: 2, count: 2 },
      { lo: 2, hi: 4, count: 2 },
      { lo: 4, hi: 6, count: 2 },
      { lo: 6, hi: 8, count: 2 },
      { lo: 8, hi: 10, count: 2 },
    ]);
    const h = tokenHistogram([1, 100, 1000], 4);
    expect(h).toHaveLength(4);
    expect(h.map((b) => b.count)).toEqual([2, 0, 0, 1]);
    expect(h.at(-1)!.hi).toBeGreaterThan(1000);
  });
});

describe('error listing', () => {
  it('lists the first errors in line order and counts all of them', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 300; i++) {
      if (i % 3 === 0) lines.push('{not json');
      else if (i % 3 === 1) lines.push(JSON.stringify({ text: 'x' }));
      else lines.push(JSON.stringify({ messages: [{ role: 'user', content: 'q' }, { role: 'bot', content: 'a' }, { role: 'assistant', content: 'a' }] }));
    }
    lines.push(chatLine('q', 'a'));
    const r = await report(lines, { maxListedErrors: 10 });
    expect(r.format).toBe('chat'); // 101 chat lines vs 100 text lines
    expect(r.errors).toHaveLength(10);
    expect(r.errors.map((e) => e.line)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(r.errors.map((e) => e.code).slice(0, 3)).toEqual(['invalid_json', 'mixed_format', 'invalid_role']);
    expect(r.errorCount).toBe(300);
    expect(r.errorsTruncated).toBe(true);
    expect(r.errorCounts).toEqual({ invalid_json: 100, mixed_format: 100, invalid_role: 100 });
    expect(r.examples + r.invalidLines).toBe(r.nonBlankLines);
  });

  it('defaults to listing 100', async () => {
    const r = await report(Array.from({ length: 150 }, () => '1'));
    expect(r.errors).toHaveLength(100);
    expect(r.errorCount).toBe(150);
  });
});

describe('builder inputs', () => {
  it('accepts an array of parsed lines and keeps examples with their lines', async () => {
    const lines: ParsedLine[] = [
      { line: 3, value: JSON.parse(chatLine('a', 'b')) },
      { line: 5, error: 'not valid JSON (x)', code: 'invalid_json' },
      { line: 9, value: JSON.parse(chatLine('c', 'd')) },
    ];
    const r = await buildDatasetReport(lines, { keepExamples: true });
    expect(r.validExamples!.map((e) => e.line)).toEqual([3, 9]);
    expect(r.lines).toBe(9);
    expect(r.errors).toEqual([{ line: 5, code: 'invalid_json', message: 'not valid JSON (x)' }]);
  });

  it('can be fed incrementally and finished more than once', () => {
    const builder = new DatasetReportBuilder();
    builder.add({ line: 1, value: JSON.parse(chatLine('a', 'b')) });
    expect(builder.finish().examples).toBe(1);
    builder.add({ line: 2, value: JSON.parse(chatLine('c', 'd')) });
    expect(builder.finish().examples).toBe(2);
  });

  it('keys examples by content', () => {
    const a: ChatExample = { kind: 'chat', messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] };
    const sameWithWeight: ChatExample = { kind: 'chat', messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b', weight: 1 }] };
    const asText: ChatExample = { kind: 'text', messages: [{ role: 'assistant', content: 'b' }] };
    const shifted: ChatExample = { kind: 'chat', messages: [{ role: 'user', content: 'ab' }, { role: 'assistant', content: '' }] };
    expect(exampleKey(sameWithWeight)).toEqual(exampleKey(a));
    expect(exampleKey(asText)).not.toEqual(exampleKey(a));
    expect(exampleKey(shifted)).not.toEqual(exampleKey(a));
  });
});
