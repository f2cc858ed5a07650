// Number formatting for the UI. Pure functions: no React, no GPU.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 134217728 -> "128 MiB"; keeps up to one decimal when the value is not a whole unit. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return String(bytes);
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const text = Number.isInteger(v) ? String(v) : v.toFixed(1).replace(/\.0$/, '');
  return `${text} ${UNITS[u]}`;
}

/** 65535 -> "65,535". */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** A relative error for the results table: "3.12e-7", "0", or "∞" for a failed run. */
export function formatError(e: number): string {
  if (e === 0) return '0';
  if (!Number.isFinite(e)) return '∞';
  return e.toExponential(2);
}

/** A bound: "1e-6" rather than "1.00e-6"; "0" for exact cases. */
export function formatBound(tol: number): string {
  if (tol === 0) return '0';
  return tol.toExponential().replace('e+', 'e');
}

export function formatMs(ms: number): string {
  if (ms < 10) return ms.toFixed(1);
  return Math.round(ms).toLocaleString('en-US');
}

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** 1234567 -> "1.23M", 12345 -> "12.3k", 999 -> "999". */
export function formatCompact(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toPrecision(3)}B`;
  if (a >= 1e6) return `${(n / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(n / 1e3).toPrecision(3)}k`;
  return formatCount(Math.round(n));
}

/** A duration for people: "45 s", "3 min 20 s", "2 h 05 min". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${String(m % 60).padStart(2, '0')} min`;
}

const RELATIVE = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "just now", "5 minutes ago", "yesterday"; dates older than a week in full. */
export function formatRelativeTime(time: number, now = Date.now()): string {
  const s = Math.round((time - now) / 1000);
  const a = Math.abs(s);
  if (a < 45) return 'just now';
  if (a < 3600) return RELATIVE.format(Math.round(s / 60), 'minute');
  if (a < 86400) return RELATIVE.format(Math.round(s / 3600), 'hour');
  if (a < 7 * 86400) return RELATIVE.format(Math.round(s / 86400), 'day');
  return new Date(time).toLocaleDateString('en', { year: 'numeric', month: 'short', day: 'numeric' });
}

export function formatDateTime(time: number): string {
  return new Date(time).toLocaleString('en', { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function formatClock(time: number): string {
  return new Date(time).toLocaleTimeString('en', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** A learning rate or other small real: "2e-4", "0.05", "1". */
export function formatReal(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  // Six significant digits either way, so float noise (2e-4 * 3 = 6.000000000000001e-4) never shows.
  const r = Number(v.toPrecision(6));
  if (r !== 0 && (Math.abs(r) < 1e-3 || Math.abs(r) >= 1e6)) return r.toExponential().replace('e+', 'e');
  return String(r);
}

/** 0.9123 -> "91.2%". */
export function formatPercent(v: number, digits = 1): string {
  return `${(v * 100).toFixed(digits)}%`;
}
