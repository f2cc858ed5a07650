import { describe, expect, it } from 'vitest';
import { matmulParameters, namedModel } from '../../bench/synthetic';

describe('named model shapes', () => {
  it('reads real configs and cuts layers with a label that says so', () => {
    const full = namedModel('smollm2-135m');
    expect(full.label).toBe('smollm2-135m');
    expect(full.config.hidden).toBe(576);
    expect(full.config.layers).toBe(30);
    const cut = namedModel('smollm2-135m', 2);
    expect(cut.config.layers).toBe(2);
    expect(cut.label).toBe('smollm2-135m (2 of 30 layers)');
    expect(namedModel('gpt2', 3).config.layers).toBe(3);
    expect(namedModel('tiny').config.family).toBe('llama');
    expect(() => namedModel('no-such-model')).toThrow(/unknown model/);
    // SmolLM2-135M: 30 layers of 3.54M linear weights plus the 28.3M head.
    expect(matmulParameters(full.config)).toBe(30 * (576 * (576 + 2 * 192) + 576 * 576 + 3 * 576 * 1536) + 49152 * 576);
  });
});
