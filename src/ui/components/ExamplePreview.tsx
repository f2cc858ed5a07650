// The first examples of a picked JSONL file, shown as the conversation they hold, with the
// messages the job trains on highlighted. Read here from the file itself (a few KiB): rendering
// through the chat template and token-level masks is the worker's, and the protocol does not
// return them yet.
import { useEffect, useState } from 'react';

interface PreviewMessage {
  role: string;
  content: string;
  trained: boolean;
}

interface PreviewExample {
  line: number;
  messages: PreviewMessage[];
}

const MAX_EXAMPLES = 3;
const HEAD_BYTES = 64 * 1024;

function toExample(line: number, v: unknown): PreviewExample | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (Array.isArray(o.messages)) {
    const messages = o.messages
      .filter((m): m is Record<string, unknown> => typeof m === 'object' && m !== null)
      .map((m) => ({
        role: String(m.role ?? '?'),
        content: typeof m.content === 'string' ? m.content : JSON.stringify(m.content),
        trained: m.role === 'assistant' && m.weight !== 0,
      }));
    return { line, messages };
  }
  if (typeof o.prompt === 'string' && typeof o.completion === 'string') {
    return { line, messages: [{ role: 'prompt', content: o.prompt, trained: false }, { role: 'completion', content: o.completion, trained: true }] };
  }
  if (typeof o.text === 'string') return { line, messages: [{ role: 'text', content: o.text, trained: true }] };
  return null;
}

async function readHead(file: Blob): Promise<PreviewExample[]> {
  const text = await file.slice(0, HEAD_BYTES).text();
  const lines = text.split(/\r?\n/);
  // The last line may be cut by the slice.
  if (file.size > HEAD_BYTES) lines.pop();
  const out: PreviewExample[] = [];
  for (let i = 0; i < lines.length && out.length < MAX_EXAMPLES; i++) {
    const l = lines[i]!.trim();
    if (!l) continue;
    try {
      const ex = toExample(i + 1, JSON.parse(l));
      if (ex && ex.messages.length > 0) out.push(ex);
    } catch {
      // Invalid lines are in the report's error list.
    }
  }
  return out;
}

export function ExamplePreview({ file }: { file: Blob }) {
  const [examples, setExamples] = useState<PreviewExample[] | null>(null);
  useEffect(() => {
    let live = true;
    void readHead(file).then(
      (x) => live && setExamples(x),
      () => live && setExamples([]),
    );
    return () => {
      live = false;
    };
  }, [file]);
  if (!examples || examples.length === 0) return null;
  return (
    <details className="preview" data-testid="example-preview">
      <summary>Preview the first {examples.length === 1 ? 'example' : `${examples.length} examples`}</summary>
      <p className="muted small">
        <span className="trained-key">Highlighted</span> messages are trained on (assistant messages without <code>&quot;weight&quot;: 0</code>); the rest is context.
      </p>
      {examples.map((ex) => (
        <div className="example" key={ex.line}>
          <div className="example-line mono small muted">line {ex.line}</div>
          {ex.messages.map((m, i) => (
            <div key={i} className={m.trained ? 'msg trained' : 'msg'}>
              <span className="msg-role">{m.role}</span>
              <span className="msg-content">{m.content}</span>
            </div>
          ))}
        </div>
      ))}
    </details>
  );
}
