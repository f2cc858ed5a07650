// The system message a chat training file trains with, read from its first example: the
// playground fills it in when a job is opened there, so the fine-tuned model is asked the way it
// was trained (a small model answers a different system message as if it had never been tuned).

/** Bytes read at most: the first example is near the start, and a hostile file stays cheap. */
const HEAD_BYTES = 1 << 20;

/** The first non-blank line's system message (its first message, role "system"), else null. */
export function systemMessageOfLine(line: string): string | null {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return null;
  }
  const messages = (json as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(messages)) return null;
  const first = messages[0] as { role?: unknown; content?: unknown } | undefined;
  return first?.role === 'system' && typeof first.content === 'string' && first.content.trim() !== '' ? first.content : null;
}

/** The system message of a JSONL file's first example, or null (no chat, no system message). */
export async function firstSystemMessage(file: Blob): Promise<string | null> {
  const head = await file.slice(0, HEAD_BYTES).text();
  const line = head.split('\n').find((l) => l.trim() !== '');
  return line === undefined ? null : systemMessageOfLine(line.replace(/^\uFEFF/, ''));
}
