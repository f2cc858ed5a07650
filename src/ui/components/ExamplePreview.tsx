// The first examples of a picked JSONL file as the model sees them: the chat-template rendering
// split into tokens, the tokens the loss counts highlighted, the rest dimmed, and the cut at the
// maximum sequence length marked. The worker renders and tokenizes (the page never tokenizes);
// without a model, the messages are shown as they are in the file.
import { useEffect, useState } from 'react';
import { useLatest } from '../useLatest';
import type { ExamplesPreview, ExampleTokensPreview, ModelSource, PreviewToken } from '../../worker/trainingProtocol';
import { errorText, useClient } from '../engine';
import { formatCount } from '../format';
import { modelId } from '../modelRegistry';
import './ExamplePreview.css';

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

function tokenTitle(t: PreviewToken, index: number, dropped: boolean): string {
  const what = dropped ? 'dropped by the maximum sequence length' : t.trained ? 'trained: counts in the loss' : 'context: not trained';
  const shown = t.bytes ? `${t.bytes}${t.text ? ` ${JSON.stringify(t.text)}` : ''} (part of a character split over several tokens)` : JSON.stringify(t.text);
  return `token ${index} · id ${t.id}${t.special ? ' · special' : ''} · ${shown} · ${what}`;
}

/** One example's tokens. */
export function TokenizedExample({ example, maxSeqLen }: { example: ExampleTokensPreview; maxSeqLen: number | null }) {
  const kept = example.tokens.slice(0, example.kept);
  const dropped = example.tokens.slice(example.kept);
  const span = (t: PreviewToken, i: number, isDropped: boolean) => (
    <span
      key={i}
      className={`tok${isDropped ? ' tok-dropped' : t.trained ? ' tok-trained' : ' tok-context'}${t.special ? ' tok-special' : ''}`}
      title={tokenTitle(t, i, isDropped)}
      data-trained={t.trained ? '' : undefined}
      data-bytes={t.bytes}
    >
      {t.text === '' && t.bytes ? <span className="tok-bytes">{t.bytes}</span> : t.text}
    </span>
  );
  return (
    <div className="example tok-example" data-testid="token-example">
      <div className="example-line mono small muted">
        line {example.line} · {formatCount(example.kept)} tokens · <span className="tok-count-trained">{formatCount(example.trainedTokens)} trained</span>
        {example.truncated && (
          <span className="tok-truncated-note">
            {' '}
            · cut from {formatCount(example.fullLength)} to {formatCount(example.kept)}
            {example.trainedTokens === 0 && ': nothing left to train on'}
          </span>
        )}
      </div>
      <div className="tok-text mono" data-testid="token-text">
        {kept.map((t, i) => span(t, i, false))}
        {example.truncated && (
          <span className="tok-cut" role="note" data-testid="token-cut">
            ✂ max sequence length {maxSeqLen === null ? '' : formatCount(maxSeqLen)}: the rest is dropped
          </span>
        )}
        {dropped.map((t, i) => span(t, example.kept + i, true))}
        {example.omitted > 0 && <span className="tok-omitted muted"> … {formatCount(example.omitted)} more dropped tokens</span>}
      </div>
    </div>
  );
}

/** The legend and every example of a preview. */
export function TokenPreview({ preview }: { preview: ExamplesPreview }) {
  const truncated = preview.examples.some((e) => e.truncated);
  return (
    <div className="tok-preview" data-testid="token-preview">
      <p className="tok-legend small" aria-label="Legend">
        <span className="tok tok-trained">Trained</span> tokens count in the loss (assistant replies and their end-of-turn token);{' '}
        <span className="tok tok-context">context</span> tokens are read but not trained.
        {truncated && (
          <>
            {' '}
            <span className="tok tok-dropped">Dropped</span> tokens come after the maximum sequence length and are cut.
          </>
        )}{' '}
        <span className="muted">Hover a token for its id.</span>
      </p>
      {preview.examples.map((ex) => (
        <TokenizedExample key={ex.line} example={ex} maxSeqLen={preview.maxSeqLen} />
      ))}
      {preview.problems.length > 0 && (
        <p className="muted small">
          Not shown: {preview.problems.map((p) => `line ${p.line} (${p.message})`).join('; ')}.
        </p>
      )}
    </div>
  );
}

function MessagesPreview({ examples }: { examples: PreviewExample[] }) {
  return (
    <>
      <p className="muted small">
        <span className="trained-key">Highlighted</span> messages are trained on (assistant messages without <code>&quot;weight&quot;: 0</code>); the rest is context.
        Choose a model to see the tokens it trains on.
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
    </>
  );
}

export function ExamplePreview({ file, model, maxSeqLen }: { file: Blob; model?: ModelSource | null; maxSeqLen?: number }) {
  const client = useClient();
  const [examples, setExamples] = useState<PreviewExample[] | null>(null);
  const key = model ? `${modelId(model)}|${maxSeqLen ?? ''}` : null;
  // The answer is kept with the inputs it is for; a new model keeps the old tokens on screen
  // until the new ones come (no layout jump).
  const [tokens, setTokens] = useState<{ file: Blob; key: string; preview: ExamplesPreview | null; error: string | null } | null>(null);
  const modelRef = useLatest(model);

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

  useEffect(() => {
    const source = modelRef.current;
    if (!key || !source) return;
    let live = true;
    const timer = setTimeout(() => {
      client
        .previewExamples({ file, model: source, count: MAX_EXAMPLES, maxSeqLen })
        .then((preview) => live && setTokens({ file, key, preview, error: null }))
        .catch((e: unknown) => live && setTokens({ file, key, preview: null, error: errorText(e) }));
    }, 150);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [client, file, key, maxSeqLen, modelRef]);

  const shown = tokens && tokens.file === file ? tokens : null;
  const current = shown !== null && shown.key === key;
  const preview = key ? (shown?.preview ?? null) : null;
  const count = preview ? preview.examples.length : (examples?.length ?? 0);
  if (count === 0 && !(key && !current)) return null;

  return (
    <details className="preview" data-testid="example-preview" open>
      <summary>
        Preview the first {count === 1 ? 'example' : `${count || MAX_EXAMPLES} examples`}
        {preview ? ' as the model sees them' : ''}
        {key && !current && <span className="spinner inline" aria-label="Tokenizing" />}
      </summary>
      {preview && preview.examples.length > 0 ? (
        <TokenPreview preview={preview} />
      ) : (
        <>
          {current && shown?.error && <p className="muted small">The tokens could not be shown: {shown.error}</p>}
          {examples && examples.length > 0 && <MessagesPreview examples={examples} />}
        </>
      )}
    </details>
  );
}
