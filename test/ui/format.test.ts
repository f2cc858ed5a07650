// Number and time formatting shown throughout the UI (src/ui/format.ts). Pure: no DOM needed.
import { describe, expect, it } from 'vitest';

import {
  formatBound,
  formatBytes,
  formatClock,
  formatCompact,
  formatCount,
  formatDuration,
  formatError,
  formatMs,
  formatPercent,
  formatReal,
  formatRelativeTime,
  formatSeconds,
} from '../../src/ui/format';

describe('format', () => {
  it('formatBytes picks the binary unit and keeps one decimal only when needed', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(134217728)).toBe('128 MiB');
    expect(formatBytes(1024 ** 3 * 1.04)).toBe('1 GiB');
    expect(formatBytes(1024 ** 5)).toBe('1024 TiB');
    expect(formatBytes(-1)).toBe('-1');
    expect(formatBytes(NaN)).toBe('NaN');
  });

  it('formatCount groups thousands', () => {
    expect(formatCount(65535)).toBe('65,535');
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatCount(7)).toBe('7');
  });

  it('formatError and formatBound write errors and tolerances compactly', () => {
    expect(formatError(0)).toBe('0');
    expect(formatError(Infinity)).toBe('∞');
    expect(formatError(NaN)).toBe('∞');
    expect(formatError(3.1234e-7)).toBe('3.12e-7');
    expect(formatBound(0)).toBe('0');
    expect(formatBound(1e-6)).toBe('1e-6');
    expect(formatBound(2.5e-3)).toBe('2.5e-3');
  });

  it('formatMs and formatSeconds', () => {
    expect(formatMs(3.14159)).toBe('3.1');
    expect(formatMs(1234.5)).toBe('1,235');
    expect(formatSeconds(1234)).toBe('1.23 s');
    expect(formatSeconds(12345)).toBe('12.3 s');
  });

  it('formatCompact uses k, M and B with three significant digits', () => {
    expect(formatCompact(999)).toBe('999');
    expect(formatCompact(9999)).toBe('9,999');
    expect(formatCompact(12345)).toBe('12.3k');
    expect(formatCompact(-12345)).toBe('-12.3k');
    expect(formatCompact(1234567)).toBe('1.23M');
    expect(formatCompact(2.5e9)).toBe('2.50B');
    expect(formatCompact(Infinity)).toBe('Infinity');
  });

  it('formatDuration reads like a person would say it', () => {
    expect(formatDuration(45_000)).toBe('45 s');
    expect(formatDuration(59_600)).toBe('1 min 00 s');
    expect(formatDuration(200_000)).toBe('3 min 20 s');
    expect(formatDuration((2 * 3600 + 5 * 60) * 1000)).toBe('2 h 05 min');
    expect(formatDuration(-1)).toBe('–');
    expect(formatDuration(NaN)).toBe('–');
  });

  it('formatRelativeTime: recent times in words, older ones as a date', () => {
    const now = Date.UTC(2026, 10, 25, 12);
    expect(formatRelativeTime(now - 10_000, now)).toBe('just now');
    expect(formatRelativeTime(now - 5 * 60_000, now)).toBe('5 minutes ago');
    expect(formatRelativeTime(now - 3 * 3600_000, now)).toBe('3 hours ago');
    expect(formatRelativeTime(now - 86400_000, now)).toBe('yesterday');
    expect(formatRelativeTime(now + 2 * 86400_000, now)).toBe('in 2 days');
    // A local date, so the day is the local one (Nov 15 at noon UTC is Nov 16 in UTC+13).
    const old = new Date(2026, 10, 15, 12).getTime();
    expect(formatRelativeTime(old, now)).toBe('Nov 15, 2026');
  });

  it('formatClock is a 24-hour local time', () => {
    const t = new Date(2026, 10, 25, 17, 4, 9).getTime();
    expect(formatClock(t)).toBe('17:04:09');
  });

  it('formatReal writes small and large reals as exponents, with no float noise', () => {
    expect(formatReal(2e-4)).toBe('2e-4');
    expect(formatReal(0.05)).toBe('0.05');
    expect(formatReal(1)).toBe('1');
    expect(formatReal(0)).toBe('0');
    expect(formatReal(0.1 + 0.2)).toBe('0.3');
    expect(formatReal(1.5e6)).toBe('1.5e6');
    expect(formatReal(-3e-5)).toBe('-3e-5');
    expect(formatReal(1.23456789e-7)).toBe('1.23457e-7');
    // A multiplier times the base rate: 2e-4 * 3 is 6.000000000000001e-4 in floating point.
    expect(formatReal(2e-4 * 3)).toBe('6e-4');
    expect(formatReal(1e-4 * 1.1)).toBe('1.1e-4');
    expect(formatReal(NaN)).toBe('NaN');
  });

  it('formatPercent', () => {
    expect(formatPercent(0.9123)).toBe('91.2%');
    expect(formatPercent(1, 0)).toBe('100%');
    expect(formatPercent(0.5, 2)).toBe('50.00%');
  });
});
