// The playground's history: each comparison (prompt and every pane's answer), kept in this
// browser's localStorage.
import { formatRelativeTime } from '../format';

export interface HistoryEntry {
  time: number;
  system: string;
  user: string;
  panes: { label: string; text: string; tokensPerSecond: number | null }[];
}

const HISTORY_KEY = 'whittle.playgroundHistory';
export const HISTORY_MAX = 30;

export function loadHistory(): HistoryEntry[] {
  try {
    const v = JSON.parse(localStorage.getItem(HISTORY_KEY) ?? '[]') as unknown;
    return Array.isArray(v) ? (v as HistoryEntry[]) : [];
  } catch {
    return [];
  }
}

export function saveHistory(h: HistoryEntry[]): void {
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(h.slice(0, HISTORY_MAX)));
  } catch {
    // full or unavailable: history is best effort
  }
}

export function PlaygroundHistory({ history, onClear, onReuse }: { history: HistoryEntry[]; onClear: () => void; onReuse: (h: HistoryEntry) => void }) {
  return (
    <section className="card history" aria-labelledby="history-title">
      <div className="card-head">
        <h2 id="history-title">History</h2>
        {history.length > 0 && (
          <button
            type="button"
            className="button ghost small"
            onClick={onClear}
          >
            Clear
          </button>
        )}
      </div>
      {history.length === 0 ? (
        <p className="muted">Each comparison is kept here, in this browser only.</p>
      ) : (
        <ol className="history-list">
          {history.map((h) => (
            <li key={h.time}>
              <details>
                <summary>
                  <span className="history-prompt">{h.user}</span> <span className="muted small">{formatRelativeTime(h.time)}</span>
                </summary>
                <div className="history-body">
                  {h.system && (
                    <p className="small">
                      <span className="msg-role">system</span> {h.system}
                    </p>
                  )}
                  <div className="history-panes">
                    {h.panes.map((p, i) => (
                      <div key={i} className="history-pane">
                        <p className="small strong">{p.label}</p>
                        <p className="msg-content">{p.text || '–'}</p>
                      </div>
                    ))}
                  </div>
                  <button
                    type="button"
                    className="button small"
                    onClick={() => onReuse(h)}
                  >
                    Use this prompt again
                  </button>
                </div>
              </details>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
