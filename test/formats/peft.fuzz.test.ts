// Fuzzing adapter_config.json: whatever JSON an adapter folder holds, parsePeftConfig returns a
// LoRA config this model can take or throws PeftAdapterError; never another exception.

import { readFileSync } from 'node:fs';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { parsePeftConfig, PeftAdapterError } from '../../src/formats/peft';
import { parseModelConfig } from '../../src/model/config';

const CONFIG = parseModelConfig(JSON.parse(readFileSync(new URL('../fixtures/models/tiny-llama/config.json', import.meta.url), 'utf8')));

const VALID = {
  peft_type: 'LORA',
  task_type: 'CAUSAL_LM',
  r: 4,
  lora_alpha: 8,
  lora_dropout: 0.05,
  target_modules: ['q_proj', 'v_proj'],
  bias: 'none',
  use_rslora: false,
  base_model_name_or_path: 'tiny-llama',
};

function outcome(json: unknown): 'accepted' | 'rejected' {
  try {
    const lora = parsePeftConfig(json, CONFIG);
    expect(Number.isInteger(lora.r) && lora.r >= 1).toBe(true);
    expect(lora.alpha).toBeGreaterThan(0);
    expect(lora.dropout >= 0 && lora.dropout < 1).toBe(true);
    expect(lora.targetModules.length).toBeGreaterThan(0);
    return 'accepted';
  } catch (e) {
    if (e instanceof PeftAdapterError) return 'rejected';
    throw e;
  }
}

const field = fc.constantFrom(...Object.keys(VALID), 'use_dora', 'rank_pattern', 'alpha_pattern', 'modules_to_save', 'layers_to_transform', 'loftq_config', 'fan_in_fan_out', 'init_lora_weights', '__proto__', 'constructor');
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(0, -1, 1.5, Number.POSITIVE_INFINITY, 'all-linear', '.*proj', '[', null, true, [], ['q_proj'], ['nope'], { q_proj: 2 }),
);

describe('adapter_config.json fuzzing', () => {
  it('the valid config is accepted', () => {
    expect(outcome(VALID)).toBe('accepted');
  });

  it('any JSON value is accepted or rejected with PeftAdapterError', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), (json) => {
        outcome(json);
      }),
      { numRuns: 300, seed: 17 },
    );
  });

  it('a valid config with fields replaced, added or removed is accepted or rejected with PeftAdapterError', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(field, fc.option(value, { nil: undefined })), { minLength: 1, maxLength: 4 }), (edits) => {
        const json: Record<string, unknown> = { ...VALID };
        for (const [k, v] of edits) {
          if (v === undefined) delete json[k];
          else Object.defineProperty(json, k, { value: v, enumerable: true, configurable: true, writable: true });
        }
        outcome(json);
      }),
      { numRuns: 500, seed: 18 },
    );
  });
});
