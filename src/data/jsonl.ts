/**
 * Streaming JSONL reader. Works on a File's stream in the browser, a Node stream, or a string,
 * without holding the file in memory and without blocking the event loop for long.
 *
 * Lines are split on the byte 0x0A before decoding: in UTF-8 that byte never occurs inside a
 * multi-byte character, so a character split across chunks is reassembled with its line, and each
 * line is decoded on its own with a fatal decoder, so bad bytes are reported with their line
 * instead of turning silently into U+FFFD or failing the whole file.
 */
import type { ParsedLine } from './datasetTypes';

export const DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_YIELD_EVERY_MS = 10;
export const DEFAULT_YIELD_EVERY_LINES = 5000;
/** An in-memory source is fed through the stream path in chunks of this size. */
const IN_MEMORY_CHUNK_BYTES = 1 << 16;

/** A whole file in memory (string or bytes) or a stream of byte chunks. */
export type JsonlSource = AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | Uint8Array | string;

export interface ParseJsonlOptions {
  /**
   * Called with the bytes consumed so far (non-decreasing) at chunk ends and event-loop yields,
   * and once at the end with the full size.
   */
  onProgress?(bytesRead: number, totalBytes?: number): void;
  /** Size of the source, passed back to onProgress (e.g. `file.size`); known for strings and bytes. */
  totalBytes?: number;
  /** Lines longer than this are reported as `line_too_long` and skipped, never buffered whole. */
  maxLineBytes?: number;
  /** Give the event loop a macrotask at least this often while parsing... */
  yieldEveryMs?: number;
  /** ...and after this many lines whatever the clock says. */
  yieldEveryLines?: number;
}

const BOM = [0xef, 0xbb, 0xbf] as const;

let sharedChannel: MessageChannel | null = null;
const channelWaiters: Array<() => void> = [];

/**
 * Resolve on a fresh macrotask so pending input, rendering and timers run. Microtasks would not:
 * an async generator's own awaits never let the browser paint. Not `scheduler.yield()`: its
 * continuations jump ahead of other tasks, which starved timers and MessageChannel tasks (React's
 * scheduler) for the whole parse when tried in Chromium.
 */
export function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  // setTimeout(0) is clamped to 4 ms once nested; a MessageChannel post is not.
  if (typeof MessageChannel === 'function') {
    if (!sharedChannel) {
      sharedChannel = new MessageChannel();
      sharedChannel.port1.onmessage = () => channelWaiters.shift()?.();
    }
    const channel = sharedChannel;
    return new Promise((resolve) => {
      channelWaiters.push(resolve);
      channel.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function isReadableStream(source: unknown): source is ReadableStream<Uint8Array> {
  return typeof source === 'object' && source !== null && typeof (source as ReadableStream).getReader === 'function';
}

async function* chunksOf(source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | Uint8Array): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    // Sliced so progress and event-loop yields work the same as for a stream.
    for (let at = 0; at < source.length; at += IN_MEMORY_CHUNK_BYTES) {
      yield source.subarray(at, Math.min(source.length, at + IN_MEMORY_CHUNK_BYTES));
    }
  } else if (isReadableStream(source)) {
    // getReader rather than async iteration: Safari's ReadableStream is not async-iterable.
    const reader = source.getReader();
    let finished = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        yield value;
      }
      finished = true;
    } finally {
      // The consumer stopped early: tell the source so it can stop reading the file.
      if (!finished) await reader.cancel().catch(() => undefined);
      reader.releaseLock();
    }
  } else {
    yield* source;
  }
}

function concatBytes(pieces: Uint8Array[], total: number): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // The whitespace JSON itself allows: space, tab, LF, CR.
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return true;
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(n % (1024 * 1024) === 0 ? 0 : 1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(n % 1024 === 0 ? 0 : 1)} KiB`;
  return `${n} bytes`;
}

function describeJsonError(error: unknown): string {
  const detail = error instanceof Error ? error.message : String(error);
  return `not valid JSON (${detail.length > 160 ? `${detail.slice(0, 160)}…` : detail})`;
}

/**
 * Parse a JSONL source line by line. Yields one entry per non-blank line, in order: either the
 * parsed `value` or an `error` (+ `code`). Never throws for bad content; only a failing source
 * (e.g. a stream that errors) rejects.
 */
export async function* parseJsonl(source: JsonlSource, options: ParseJsonlOptions = {}): AsyncGenerator<ParsedLine> {
  const maxLineBytes = Math.max(1, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  const yieldEveryMs = options.yieldEveryMs ?? DEFAULT_YIELD_EVERY_MS;
  const yieldEveryLines = Math.max(1, options.yieldEveryLines ?? DEFAULT_YIELD_EVERY_LINES);
  const input = typeof source === 'string' ? new TextEncoder().encode(source) : source;
  const totalBytes = options.totalBytes ?? (input instanceof Uint8Array ? input.length : undefined);
  const onProgress = options.onProgress;
  // ignoreBOM: a BOM is only meaningful at the start of the file, which is handled by hand.
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

  let lineNumber = 0;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let overlong = false;
  let bytesBefore = 0; // bytes of the chunks fully consumed
  let lastReported = -1;
  let linesSinceYield = 0;
  let lastYield = now();

  const report = (bytesRead: number) => {
    if (!onProgress || bytesRead === lastReported) return;
    lastReported = bytesRead;
    onProgress(bytesRead, totalBytes);
  };

  const append = (piece: Uint8Array, copy: boolean) => {
    if (overlong || piece.length === 0) return;
    // +1: room for the CR of a CRLF, removed once the line is whole.
    if (pendingBytes + piece.length > maxLineBytes + 1) {
      // Drop what we have and ignore the rest of the line: memory stays bounded.
      overlong = true;
      pending = [];
      pendingBytes = 0;
      return;
    }
    // new Uint8Array(view) copies; Buffer#slice would not.
    pending.push(copy ? new Uint8Array(piece) : piece);
    pendingBytes += piece.length;
  };

  const tooLong = (line: number): ParsedLine => ({
    line,
    code: 'line_too_long',
    error: `line is longer than ${formatBytes(maxLineBytes)}; it was skipped`,
  });

  /** Turn the buffered bytes into a ParsedLine, or null for a blank line. */
  const finishLine = (): ParsedLine | null => {
    lineNumber++;
    const line = lineNumber;
    if (overlong) {
      overlong = false;
      return tooLong(line);
    }
    let bytes = concatBytes(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    // CRLF line ends; the CR may have come in an earlier chunk than the LF.
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length > maxLineBytes) return tooLong(line);
    if (line === 1) {
      if (bytes.length >= 3 && bytes[0] === BOM[0] && bytes[1] === BOM[1] && bytes[2] === BOM[2]) {
        bytes = bytes.subarray(3);
      } else if (bytes.length >= 2 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))) {
        return { line, code: 'invalid_utf8', error: 'the file looks like UTF-16; save it as UTF-8' };
      }
    }
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      return { line, code: 'invalid_utf8', error: 'line is not valid UTF-8; save the file as UTF-8' };
    }
    if (isBlank(text)) return null;
    try {
      return { line, value: JSON.parse(text) as unknown };
    } catch (error) {
      return { line, code: 'invalid_json', error: describeJsonError(error) };
    }
  };

  /** Whether it is time to give the event loop a turn (checked per line, without awaiting). */
  const yieldDue = () => ++linesSinceYield >= yieldEveryLines || now() - lastYield >= yieldEveryMs;

  for await (const chunk of chunksOf(input)) {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) {
        // The rest of this chunk continues on the next one; copy in case the source reuses it.
        append(chunk.subarray(start), true);
        break;
      }
      append(chunk.subarray(start, newline), false);
      start = newline + 1;
      const parsed = finishLine();
      if (parsed) yield parsed;
      if (yieldDue()) {
        report(bytesBefore + start);
        await yieldToEventLoop();
        linesSinceYield = 0;
        lastYield = now();
      }
    }
    bytesBefore += chunk.length;
    report(bytesBefore);
  }
  if (pendingBytes > 0 || overlong) {
    // A final line without a newline.
    const parsed = finishLine();
    if (parsed) yield parsed;
  }
  report(bytesBefore);
}
