import { describe, expect, it } from 'vitest';
import { FLASH_THREADS, FLASH_WORKGROUP_BYTES, flashShape, flashWorkgroupBytes } from '../../src/kernels/flashAttention';

// The flash kernels' numerics are tested through attention.ts (test/kernels/attention.test.ts,
// every case under both plans); this file checks the shapes they are built with.
describe('flashShape', () => {
  it('fits WebGPU’s guaranteed workgroup memory at every head dim the kernels take', () => {
    for (let D = 4; D <= 128; D += 4) {
      const s = flashShape(D);
      expect(s.d4 % s.lanes, `D=${D}`).toBe(0);
      expect(s.lanes * s.rows, `D=${D}`).toBe(FLASH_THREADS);
      expect(flashWorkgroupBytes(D, s.tile), `D=${D}`).toBeLessThanOrEqual(FLASH_WORKGROUP_BYTES);
      // The largest such tile (up to 32 rows), and never fewer than 8 staged rows.
      if (s.tile < 32) expect(flashWorkgroupBytes(D, 2 * s.tile), `D=${D}`).toBeGreaterThan(FLASH_WORKGROUP_BYTES);
      expect(s.tile, `D=${D}`).toBeGreaterThanOrEqual(8);
    }
  });

  it('splits head dim 128 over 4 lanes, 8 vec4 columns each, with 8-row tiles', () => {
    expect(flashShape(128)).toEqual({ d4: 32, lanes: 4, rows: 16, tile: 8 });
    expect(flashShape(64)).toEqual({ d4: 16, lanes: 4, rows: 16, tile: 8 });
    expect(flashShape(24)).toEqual({ d4: 6, lanes: 2, rows: 32, tile: 16 });
  });
});
