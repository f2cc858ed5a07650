// CausalLM.evaluateRows: per-example loss totals of one batch, checked against the aggregate
// evaluate() of the same batch and against evaluate() of each example alone.
import { describe, expect, it } from 'vitest';
import { defaultLoraConfig, LoraAdapter } from '../../src/model/lora';
import type { TokenBatch } from '../../src/model/transformer';
import { getTestGpu } from '../helpers/gpu';
import { Rng } from '../../src/util/random';
import { loadRandomLora, openFixtureModel } from '../helpers/model';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1, Math.abs(b));

describe('CausalLM.evaluateRows', () => {
  it('sums to evaluate() of the batch, and each row equals evaluate() of that row alone (1e-5)', async () => {
    const gpu = await getTestGpu();
    const { model, config } = await openFixtureModel('tiny-llama');
    const adapter = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: 4, alpha: 8 }));
    const rng = new Rng(11);
    loadRandomLora(adapter, rng, 0.3);

    // 5 rows of T = 13 (not a multiple of any tile), each with its own length and mask; row 3 trains nothing.
    const B = 5;
    const T = 13;
    const lengths = [13, 4, 9, 7, 1];
    const tokens = new Uint32Array(B * T);
    const targets = new Uint32Array(B * T);
    const mask = new Float32Array(B * T);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        tokens[b * T + t] = rng.int(config.vocabSize);
        targets[b * T + t] = rng.int(config.vocabSize);
        mask[b * T + t] = t < lengths[b]! && b !== 3 && t % 3 !== 1 ? 1 : 0;
      }
    }
    const batch: TokenBatch = { B, T, tokens, targets, mask };
    for (const a of [null, adapter]) {
      const rows = await model.evaluateRows(batch, a);
      const all = await model.evaluate(batch, a);
      expect(rows).toHaveLength(B);
      const sum = rows.reduce((s, r) => ({ lossSum: s.lossSum + r.lossSum, tokens: s.tokens + r.tokens, correct: s.correct + r.correct }), { lossSum: 0, tokens: 0, correct: 0 });
      expect(rel(sum.lossSum, all.lossSum)).toBeLessThan(1e-5);
      expect(sum.tokens).toBe(all.tokens);
      expect(sum.correct).toBe(all.correct);
      expect(rows[3]).toEqual({ lossSum: 0, tokens: 0, correct: 0 });
      for (let b = 0; b < B; b++) {
        const one = await model.evaluate({ B: 1, T, tokens: tokens.slice(b * T, (b + 1) * T), targets: targets.slice(b * T, (b + 1) * T), mask: mask.slice(b * T, (b + 1) * T) }, a);
        expect(rel(rows[b]!.lossSum, one.lossSum), `row ${b}`).toBeLessThan(1e-5);
        expect(rows[b]!.tokens).toBe(one.tokens);
        expect(rows[b]!.correct).toBe(one.correct);
        if (b !== 3) expect(rows[b]!.lossSum).toBeGreaterThan(0);
      }
    }
    adapter.destroy();
    model.destroy();
  });
});
