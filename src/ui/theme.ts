// Light/dark: the system setting by default, a stored choice when the user picks one. The choice
// is written to <html data-theme> (index.html applies the stored one before the first paint).
import { useCallback, useSyncExternalStore } from 'react';

export type ThemeChoice = 'system' | 'light' | 'dark';
export type ResolvedTheme = 'light' | 'dark';

const KEY = 'whittle.theme';
const listeners = new Set<() => void>();

function stored(): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' ? v : 'system';
  } catch {
    return 'system';
  }
}

const media = () => window.matchMedia('(prefers-color-scheme: dark)');

function resolve(choice: ThemeChoice): ResolvedTheme {
  if (choice !== 'system') return choice;
  return media().matches ? 'dark' : 'light';
}

function apply(choice: ThemeChoice): void {
  const root = document.documentElement;
  if (choice === 'system') root.removeAttribute('data-theme');
  else root.setAttribute('data-theme', choice);
}

function subscribe(onChange: () => void): () => void {
  listeners.add(onChange);
  const m = media();
  m.addEventListener('change', onChange);
  return () => {
    listeners.delete(onChange);
    m.removeEventListener('change', onChange);
  };
}

/** "choice:resolved", one string so the snapshot compares by value. */
function snapshot(): string {
  const c = stored();
  return `${c}:${resolve(c)}`;
}

export function useTheme(): { choice: ThemeChoice; resolved: ResolvedTheme; setChoice: (c: ThemeChoice) => void } {
  const snap = useSyncExternalStore(subscribe, snapshot, () => 'system:light');
  const [choice, resolved] = snap.split(':') as [ThemeChoice, ResolvedTheme];
  const setChoice = useCallback((c: ThemeChoice) => {
    try {
      if (c === 'system') localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, c);
    } catch {
      // Private mode without storage: the choice lasts for this page only.
    }
    apply(c);
    for (const l of listeners) l();
  }, []);
  return { choice, resolved, setChoice };
}
