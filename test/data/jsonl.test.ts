import { describe, expect, it } from 'vitest';
import { parseJsonl, type ParseJsonlOptions } from '../../src/data/jsonl';
import type { ParsedLine } from '../../src/data/datasetTypes';
import { Rng } from '../helpers/random';

const encoder = new TextEncoder();

async function collect(source: Parameters<typeof parseJsonl>[0], options?: ParseJsonlOptions): Promise<ParsedLine[]> {
  const out: ParsedLine[] = [];
  for await (const parsed of parseJsonl(source, options)) out.push(parsed);
  return out;
}

async function* chunked(bytes: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  let i = 0;
  while (at < bytes.length) {
    const size = Math.max(1, sizes[i++ % sizes.length]!);
    yield bytes.slice(at, at + size);
    at += size;
  }
}

function values(lines: ParsedLine[]): Array<[number, unknown]> {
  return lines.map((l) => [l.line, l.error === undefined ? l.value : `ERR:${l.code}`]);
}

describe('parseJsonl: lines', () => {
  it('numbers lines like an editor, skipping blank ones', async () => {
    const text = '{"a":1}\n\n   \n{"a":2}\n\t\n[3]\n';
    expect(values(await collect(text))).toEqual([
      [1, { a: 1 }],
      [4, { a: 2 }],
      [6, [3]],
    ]);
  });

  it('handles CRLF, a BOM and a final line without newline', async () => {
    const text = '\uFEFF{"a":"x"}\r\n\r\n{"b":2}\r\n{"c":3}';
    expect(values(await collect(text))).toEqual([
      [1, { a: 'x' }],
      [3, { b: 2 }],
      [4, { c: 3 }],
    ]);
  });

  it('handles a BOM split across chunks and a CR at the end of a chunk', async () => {
    const bytes = encoder.encode('\uFEFF{"a":1}\r\n{"b":2}\r\n');
    // Chunks of 1 and 2 bytes put the BOM across three chunks and CR/LF in different chunks.
    for (const sizes of [[1], [2], [1, 2], [9, 1, 100]]) {
      expect(values(await collect(chunked(bytes, sizes)))).toEqual([
        [1, { a: 1 }],
        [2, { b: 2 }],
      ]);
    }
  });

  it('only strips a BOM at the start of the file', async () => {
    const lines = await collect('{"a":1}\n\uFEFF{"b":2}\n');
    expect(lines[0]).toEqual({ line: 1, value: { a: 1 } });
    expect(lines[1]!.line).toBe(2);
    expect(lines[1]!.code).toBe('invalid_json');
  });

  it('reports invalid JSON per line and carries on', async () => {
    const lines = await collect('{"a":1}\n{"a":\nnull\n"str"\n{"a":2}');
    expect(values(lines)).toEqual([
      [1, { a: 1 }],
      [2, 'ERR:invalid_json'],
      [3, null],
      [4, 'str'],
      [5, { a: 2 }],
    ]);
    expect(lines[1]!.error).toMatch(/^not valid JSON \(/);
  });

  it('reports invalid UTF-8 for its line only', async () => {
    const good = encoder.encode('{"a":1}\n');
    const bad = new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xc3, 0x22, 0x7d, 0x0a]); // {"a":"\xff\xc3"}
    const bytes = new Uint8Array([...good, ...bad, ...good]);
    const lines = await collect(bytes);
    expect(values(lines)).toEqual([
      [1, { a: 1 }],
      [2, 'ERR:invalid_utf8'],
      [3, { a: 1 }],
    ]);
  });

  it('recognises a UTF-16 file', async () => {
    const bytes = new Uint8Array([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00, 0x0a, 0x00]);
    const lines = await collect(bytes);
    expect(lines[0]!.code).toBe('invalid_utf8');
    expect(lines[0]!.error).toContain('UTF-16');
  });

  it('yields nothing for an empty or blank source', async () => {
    expect(await collect('')).toEqual([]);
    expect(await collect('\n\r\n  \n')).toEqual([]);
    expect(await collect(new Uint8Array(0))).toEqual([]);
  });
});

describe('parseJsonl: multi-byte UTF-8 across chunks', () => {
  // 2-, 3- and 4-byte characters, in keys and values.
  const text = '{"é":"naïve café"}\n{"k":"日本語テキスト"}\n{"emoji":"🙂👍🏽","z":"\\u0000"}\n{"mix":"a€b𝄞c"}\n';
  const expected = text
    .trim()
    .split('\n')
    .map((line, i) => [i + 1, JSON.parse(line)] as [number, unknown]);
  const bytes = encoder.encode(text);

  it('decodes identically for every two-chunk split', async () => {
    for (let split = 0; split <= bytes.length; split++) {
      const source = (async function* () {
        yield bytes.slice(0, split);
        yield bytes.slice(split);
      })();
      expect(values(await collect(source))).toEqual(expected);
    }
  });

  it('decodes one byte at a time', async () => {
    expect(values(await collect(chunked(bytes, [1])))).toEqual(expected);
  });
});

describe('parseJsonl: sources', () => {
  it('reads a ReadableStream', async () => {
    const bytes = encoder.encode('{"a":1}\n{"a":2}\n');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 5));
        controller.enqueue(bytes.slice(5));
        controller.close();
      },
    });
    expect(values(await collect(stream))).toEqual([
      [1, { a: 1 }],
      [2, { a: 2 }],
    ]);
  });

  it('cancels a ReadableStream when the consumer stops early', async () => {
    let cancelled = false;
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        controller.enqueue(encoder.encode(`{"n":${pulls}}\n`));
      },
      cancel() {
        cancelled = true;
      },
    });
    let seen = 0;
    for await (const parsed of parseJsonl(stream)) {
      expect(parsed.value).toEqual({ n: seen + 1 });
      if (++seen === 3) break;
    }
    expect(cancelled).toBe(true);
  });

  it('reads an AsyncIterable of Node Buffers', async () => {
    async function* buffers() {
      yield Buffer.from('{"a":');
      yield Buffer.from('1}\n{"b"');
      yield Buffer.from(':2}');
    }
    expect(values(await collect(buffers()))).toEqual([
      [1, { a: 1 }],
      [2, { b: 2 }],
    ]);
  });

  it('copies a partial line so a source that reuses its buffer is safe', async () => {
    const shared = new Uint8Array(4);
    const bytes = encoder.encode('{"abc":123}\n{"d":4}\n');
    async function* reusing() {
      for (let at = 0; at < bytes.length; at += 4) {
        const piece = bytes.subarray(at, at + 4);
        shared.fill(0x20);
        shared.set(piece);
        yield shared.subarray(0, piece.length);
      }
    }
    expect(values(await collect(reusing()))).toEqual([
      [1, { abc: 123 }],
      [2, { d: 4 }],
    ]);
  });
});

describe('parseJsonl: long lines', () => {
  const cap = 32;
  const long = `{"a":"${'x'.repeat(60)}"}`;

  it('reports a line over the cap and parses the next ones', async () => {
    const text = `{"a":1}\n${long}\n{"a":2}\n${long}`;
    for (const sizes of [[1000], [7], [1, 3, 50]]) {
      const lines = await collect(chunked(encoder.encode(text), sizes), { maxLineBytes: cap });
      expect(values(lines)).toEqual([
        [1, { a: 1 }],
        [2, 'ERR:line_too_long'],
        [3, { a: 2 }],
        [4, 'ERR:line_too_long'],
      ]);
      expect(lines[1]!.error).toBe('line is longer than 32 bytes; it was skipped');
    }
  });

  it('accepts a line of exactly the cap', async () => {
    const exact = `{"a":"${'y'.repeat(cap - 8)}"}`;
    expect(encoder.encode(exact).length).toBe(cap);
    const lines = await collect(chunked(encoder.encode(`${exact}\n${exact}`), [5]), { maxLineBytes: cap });
    expect(lines.map((l) => l.error)).toEqual([undefined, undefined]);
  });
});

describe('parseJsonl: progress and responsiveness', () => {
  it('reports non-decreasing progress ending at the total', async () => {
    const text = Array.from({ length: 50 }, (_, i) => JSON.stringify({ i, s: 'é'.repeat(i) })).join('\n');
    const total = encoder.encode(text).length;
    const calls: Array<[number, number | undefined]> = [];
    await collect(text, { onProgress: (read, all) => calls.push([read, all]), yieldEveryLines: 7 });
    expect(calls.length).toBeGreaterThan(2);
    for (let i = 1; i < calls.length; i++) expect(calls[i]![0]).toBeGreaterThan(calls[i - 1]![0]);
    expect(calls.every(([, all]) => all === total)).toBe(true);
    expect(calls.at(-1)).toEqual([total, total]);
  });

  it('passes totalBytes through for streams and reports at chunk ends', async () => {
    const bytes = encoder.encode('{"a":1}\n{"a":2}\n{"a":3}\n');
    const calls: number[] = [];
    const totals = new Set<number | undefined>();
    await collect(chunked(bytes, [10]), {
      totalBytes: bytes.length,
      yieldEveryLines: 1e9,
      yieldEveryMs: 1e9,
      onProgress: (read, all) => {
        calls.push(read);
        totals.add(all);
      },
    });
    expect(calls).toEqual([10, 20, 24]);
    expect([...totals]).toEqual([bytes.length]);
  });

  it('reports 0 once for an empty source', async () => {
    const calls: Array<[number, number | undefined]> = [];
    await collect('', { onProgress: (read, all) => calls.push([read, all]) });
    expect(calls).toEqual([[0, 0]]);
  });

  it('gives the event loop a macrotask while parsing', async () => {
    const text = Array.from({ length: 200 }, (_, i) => `{"i":${i}}`).join('\n');
    let ranAt = -1;
    let index = 0;
    setImmediate(() => {
      ranAt = index;
    });
    for await (const parsed of parseJsonl(text, { yieldEveryLines: 10, yieldEveryMs: 1e9 })) {
      index = parsed.line;
    }
    // Without a macrotask yield the whole file would be parsed before the callback runs.
    expect(ranAt).toBeGreaterThan(0);
    expect(ranAt).toBeLessThan(200);
  });

  it('streams a 20k-line CRLF file in random chunks', async () => {
    const rng = new Rng(7);
    const lineCount = 20_000;
    const parts: string[] = [];
    let blank = 0;
    let brokenExpected = 0;
    let lastNonBlank = 0;
    for (let i = 1; i <= lineCount; i++) {
      const kind = rng.int(100);
      if (kind < 2) {
        parts.push('');
        blank++;
      } else if (kind < 4) {
        parts.push('{broken');
        brokenExpected++;
        lastNonBlank = i;
      } else {
        parts.push(JSON.stringify({ messages: [{ role: 'user', content: `q${i} ü` }, { role: 'assistant', content: 'a'.repeat(i % 50) }] }));
        lastNonBlank = i;
      }
    }
    const bytes = encoder.encode(parts.join('\r\n'));
    const sizes = Array.from({ length: 64 }, () => 1 + rng.int(20_000));
    let lastProgress = 0;
    let count = 0;
    let broken = 0;
    let lastLine = 0;
    let outOfOrder = 0;
    let wrongContent = 0;
    // Plain counters: an expect() per line would dominate the run time.
    for await (const parsed of parseJsonl(chunked(bytes, sizes), { totalBytes: bytes.length, onProgress: (read) => (lastProgress = read) })) {
      if (parsed.line <= lastLine) outOfOrder++;
      lastLine = parsed.line;
      count++;
      if (parsed.error !== undefined) broken++;
      else if ((parsed.value as { messages: Array<{ content: string }> }).messages[0]!.content !== `q${parsed.line} ü`) wrongContent++;
    }
    expect(outOfOrder).toBe(0);
    expect(wrongContent).toBe(0);
    expect(count).toBe(lineCount - blank);
    expect(broken).toBe(brokenExpected);
    expect(lastLine).toBe(lastNonBlank);
    expect(lastProgress).toBe(bytes.length);
  });
});
