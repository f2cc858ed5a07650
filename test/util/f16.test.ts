import { describe, expect, it } from 'vitest';
import { bf16BitsToF32Array, f16BitsToF32, f32ToF16Bits } from '../../src/util/f16';
import { Rng } from '../helpers/random';

describe('f16 conversion', () => {
  it('round-trips every finite half exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      const f = f16BitsToF32(h);
      if (Number.isNaN(f)) continue;
      expect(f32ToF16Bits(f)).toBe(h);
    }
  });

  it('rounds to nearest even, saturates to Inf and flushes tiny values to signed zero', () => {
    expect(f16BitsToF32(f32ToF16Bits(1 + 2 ** -11))).toBe(1); // tie -> even
    expect(f16BitsToF32(f32ToF16Bits(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9); // tie -> even (up)
    expect(f16BitsToF32(f32ToF16Bits(65520))).toBe(Infinity);
    expect(f16BitsToF32(f32ToF16Bits(65519))).toBe(65504);
    expect(f32ToF16Bits(-1e-9)).toBe(0x8000);
    expect(f16BitsToF32(f32ToF16Bits(2 ** -24))).toBe(2 ** -24); // smallest subnormal
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
  });

  it('matches a Float32Array round trip within half precision for random values', () => {
    const rng = new Rng(7);
    for (let i = 0; i < 1000; i++) {
      const v = rng.uniform(-500, 500);
      const r = f16BitsToF32(f32ToF16Bits(v));
      expect(Math.abs(r - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 1e-7);
    }
  });

  it('widens bf16 by shifting', () => {
    const out = bf16BitsToF32Array(new Uint16Array([0x3f80, 0xc000, 0x4049]));
    expect(out[0]).toBe(1);
    expect(out[1]).toBe(-2);
    expect(out[2]).toBeCloseTo(3.140625, 6);
  });
});
