import { describe, expect, it } from 'vitest';

import { ChunkedUint32 } from '../../src/data/chunkedArray';

describe('ChunkedUint32', () => {
  it('holds values across chunk boundaries and reads them back, whole or one by one', () => {
    const a = new ChunkedUint32();
    const n = 3 * (1 << 14) + 5;
    for (let i = 0; i < n; i++) a.push((i * 2654435761) >>> 0);
    expect(a.length).toBe(n);
    for (const i of [0, (1 << 14) - 1, 1 << 14, 2 * (1 << 14) + 7, n - 1]) expect(a.get(i)).toBe((i * 2654435761) >>> 0);
    a.set(1 << 14, 42);
    const whole = a.toUint32Array();
    expect(whole.length).toBe(n);
    expect(whole[1 << 14]).toBe(42);
    expect(whole[n - 1]).toBe(((n - 1) * 2654435761) >>> 0);
    expect(() => a.get(n)).toThrow(RangeError);
    expect(() => a.get(-1)).toThrow(RangeError);
    expect(() => a.set(n, 1)).toThrow(RangeError);
    expect(new ChunkedUint32().toUint32Array()).toEqual(new Uint32Array(0));
  });
});
