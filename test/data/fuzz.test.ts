/**
 * Property tests: whatever bytes or JSON a user uploads, the dataset layer produces a report and
 * never throws, and the report is self-consistent. Run counts are kept small enough for the
 * whole file to stay well under 10 s on a busy 2-core machine.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildDatasetReport, validateJsonl } from '../../src/data/datasetReport';
import type { ChatExample, DatasetReport, ParsedLine, TokenCount } from '../../src/data/datasetTypes';
import { parseJsonl } from '../../src/data/jsonl';
import { validateChatExample, validateExample } from '../../src/data/validate';

async function parseAll(chunks: Uint8Array[], maxLineBytes?: number): Promise<ParsedLine[]> {
  async function* source() {
    yield* chunks;
  }
  const out: ParsedLine[] = [];
  for await (const parsed of parseJsonl(source(), { maxLineBytes })) out.push(parsed);
  return out;
}

/** Cut `bytes` at the given (sorted, deduplicated) offsets. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    chunks.push(bytes.slice(at, p));
    at = p;
  }
  chunks.push(bytes.slice(at));
  return chunks;
}

function countTokens(example: ChatExample): TokenCount {
  let tokens = 0;
  let trainedTokens = 0;
  for (const m of example.messages) {
    tokens += 1 + m.content.length;
    if (example.kind === 'text' || (m.role === 'assistant' && m.weight !== 0)) trainedTokens += m.content.length;
  }
  return { tokens, trainedTokens };
}

/** Invariants every report must satisfy, whatever the input. */
function checkReport(r: DatasetReport): void {
  expect(r.examples + r.invalidLines).toBe(r.nonBlankLines);
  expect(r.nonBlankLines).toBeLessThanOrEqual(r.lines);
  expect(r.errorCount).toBeGreaterThanOrEqual(r.errors.length);
  expect(Object.values(r.errorCounts).reduce((a, b) => a + b, 0)).toBe(r.errorCount);
  expect(r.errorsTruncated).toBe(r.errorCount > r.errors.length);
  expect(r.ok).toBe(r.errorCount === 0 && r.examples > 0);
  for (let i = 0; i < r.errors.length; i++) {
    const e = r.errors[i]!;
    expect(e.line).toBeGreaterThanOrEqual(1);
    expect(e.line).toBeLessThanOrEqual(r.lines);
    expect(e.message.length).toBeGreaterThan(0);
    if (i > 0) expect(e.line).toBeGreaterThanOrEqual(r.errors[i - 1]!.line);
  }
  if (r.examples > 0 && r.stats) {
    expect(r.stats.examples).toBe(r.examples);
    expect(r.stats.histogram.reduce((n, b) => n + b.count, 0)).toBe(r.examples);
    expect(r.stats.min).toBeLessThanOrEqual(r.stats.mean);
    expect(r.stats.mean).toBeLessThanOrEqual(r.stats.max);
    expect(r.billedTokens).toBe(r.epochs * r.stats.trainedTokensAfterTruncation);
  }
  for (const { example } of r.validExamples ?? []) {
    // A normalised example is itself a valid chat example.
    expect(validateChatExample({ messages: example.messages }).ok).toBe(true);
  }
  expect(r.validExamples?.length ?? r.examples).toBe(r.examples);
}

const role = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('system', 'user', 'assistant') },
  { weight: 1, arbitrary: fc.constantFrom('tool', 'function', 'bot', 'Assistant', 'constructor', '__proto__', '') },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);
const content = fc.oneof({ weight: 4, arbitrary: fc.string({ maxLength: 12 }) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });
const weight = fc.oneof(fc.constantFrom(0, 1), fc.jsonValue({ maxDepth: 1 }));
const extraKeys = fc.dictionary(
  fc.oneof(fc.constantFrom('tool_calls', 'contents', 'Role', 'tools', 'id', 'toString', 'hasOwnProperty'), fc.string({ maxLength: 6 })),
  fc.jsonValue({ maxDepth: 1 }),
  { maxKeys: 2 },
);
const message = fc
  .tuple(fc.record({ role, content, weight, name: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: [] }), extraKeys, fc.boolean())
  .map(([m, extra, addExtra]) => (addExtra ? { ...extra, ...m } : m));
const chatValue = fc
  .tuple(fc.oneof(fc.array(message, { maxLength: 5 }), fc.jsonValue({ maxDepth: 2 })), extraKeys, fc.nat(9))
  .map(([messages, extra, dice]) => (dice === 0 ? { ...extra, messages } : { messages }));
const pcValue = fc.record({ prompt: content, completion: content }, { requiredKeys: [] });
const textValue = fc.record({ text: content });

/** One line of a file: mostly plausible examples, sometimes arbitrary JSON or text. */
const line = fc.oneof(
  { weight: 6, arbitrary: chatValue.map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: pcValue.map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: textValue.map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30, unit: 'binary' }) },
  { weight: 1, arbitrary: fc.constantFrom('', '   ', '\r', '\uFEFF', '{', '}{', 'null', '[]', '""') },
);

describe('fuzz: random bytes', () => {
  it('parses any bytes into lines, the same whatever the chunking, and reports on them', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.constantFrom(undefined, 16),
        async (bytes, cuts, maxLineBytes) => {
          const whole = await parseAll([bytes], maxLineBytes);
          const pieces = await parseAll(split(bytes, cuts), maxLineBytes);
          expect(pieces).toEqual(whole);
          let previous = 0;
          for (const parsed of whole) {
            expect(parsed.line).toBeGreaterThan(previous);
            previous = parsed.line;
            expect('value' in parsed !== (parsed.error !== undefined)).toBe(true);
          }
          checkReport(await buildDatasetReport(whole, { countTokens, maxSeqLen: 8, keepExamples: true }));
        },
      ),
      { numRuns: 300, seed: 20240611 },
    );
  });

  it('survives JSON-ish bytes: random text made of JSON punctuation and newlines', async () => {
    const piece = fc.constantFrom('{', '}', '[', ']', '"', ':', ',', '\n', '\r\n', 'messages', 'role', 'content', 'é', '\u{1F642}', ' ', '0', 'null');
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 60 }), fc.array(fc.nat(), { maxLength: 6 }), async (parts, cuts) => {
        const bytes = new TextEncoder().encode(parts.join(''));
        const whole = await parseAll([bytes]);
        expect(await parseAll(split(bytes, cuts))).toEqual(whole);
        checkReport(await buildDatasetReport(whole, { countTokens, maxSeqLen: 8 }));
      }),
      { numRuns: 200, seed: 7 },
    );
  });
});

describe('fuzz: random JSON lines', () => {
  it('reports on files of random example-like lines without throwing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 25 }), fc.constantFrom('\n', '\r\n'), fc.nat(40), async (lines, newline, maxSeqLen) => {
        const r = await validateJsonl(lines.join(newline), {
          countTokens,
          maxSeqLen: maxSeqLen + 1,
          tokensPerSecond: 100,
          keepExamples: true,
          maxListedErrors: 7,
        });
        checkReport(r);
      }),
      { numRuns: 250, seed: 99 },
    );
  });

  it('validators return a result for any JSON value, never throw', () => {
    fc.assert(
      fc.property(fc.oneof(chatValue, pcValue, textValue, fc.jsonValue({ maxDepth: 4 })), (value) => {
        for (const format of ['chat', 'prompt_completion', 'text'] as const) {
          const result = validateExample(value, format);
          if (result.ok) expect(result.example.messages.length).toBeGreaterThan(0);
          else expect(result.issues.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500, seed: 3 },
    );
  });
});
