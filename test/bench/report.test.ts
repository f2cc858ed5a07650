import { describe, expect, it } from 'vitest';
import { mergePeftPeer, peftPeerCases, type PeftPeerOutput } from '../../bench/report';
import { generatePrompt, generateRowNames } from '../../bench/generate';
import { namedModel } from '../../bench/synthetic';
import { trainCaseName } from '../../bench/train';
import { randomBatch } from '../../src/model/randomModel';
import type { BenchRow } from '../../src/bench/table';

describe('the PEFT peer cases (bench/report.ts)', () => {
  it("name our rows and carry our configs and tokens", () => {
    const cases = peftPeerCases(['--train-models', 'tiny,smollm2-135m:1', '--generate-models', 'tiny', '--shapes', '1x16,2x8', '--steps', '2', '--prompt', '5', '--new-tokens', '3']);
    expect(cases.train.map((c) => c.name)).toEqual([
      trainCaseName('tiny', 1, 16, 'f16', 16),
      trainCaseName('tiny', 2, 8, 'f16', 16),
      trainCaseName('smollm2-135m (1 of 30 layers)', 1, 16, 'f16', 16),
      trainCaseName('smollm2-135m (1 of 30 layers)', 2, 8, 'f16', 16),
    ]);
    const tiny = namedModel('tiny');
    const batch = randomBatch(tiny.config, 2, 8, 7);
    expect(cases.train[1]).toMatchObject({ B: 2, T: 8, r: 16, alpha: 32, steps: 2, config: tiny.json });
    expect(cases.train[1]!.tokens).toEqual(Array.from(batch.tokens));
    expect(cases.train[1]!.targets).toEqual(Array.from(batch.targets));
    expect(cases.train[2]!.config.num_hidden_layers).toBe(1);
    const names = generateRowNames('tiny', 5, 3, 'f16');
    expect(cases.generate).toEqual([{ config: tiny.json, prompt: generatePrompt(tiny.config.vocabSize, 5), newTokens: 3, reps: 3, prefillName: names.prefill, decodeName: names.decode }]);
  });

  it('rejects bad flags', () => {
    expect(() => peftPeerCases(['--steps', '0'])).toThrow(/--steps must be a positive integer/);
    expect(() => peftPeerCases(['--dtype', 'bf16'])).toThrow(/--dtype must be f16 or f32/);
    expect(() => peftPeerCases(['--train-models', 'nope'])).toThrow(/unknown model 'nope'/);
  });
});

describe('merging the PEFT peer into our rows', () => {
  const env = { torch: '2.11.0', transformers: '5.17.0', peft: '0.18.0', device: 'cuda', deviceName: 'NVIDIA H100' };
  const ours = (): BenchRow[] => [
    { suite: 'train', name: 'tiny 1x16 f16 r=16', ms: 10, gflops: 5, tokensPerSecond: 1600 },
    { suite: 'generate', name: 'tiny decode 3 tokens, f16', ms: 2, tokensPerSecond: 500 },
  ];
  const peer: PeftPeerOutput = {
    environment: env,
    rows: [
      { suite: 'train', of: 'tiny 1x16 f16 r=16', dtype: 'float32', ms: 20, tokensPerSecond: 800 },
      { suite: 'train', of: 'tiny 1x16 f16 r=16', dtype: 'bfloat16', ms: 5, tokensPerSecond: 3200 },
      { suite: 'generate', of: 'tiny decode 3 tokens, f16', dtype: 'float32', ms: 4, tokensPerSecond: 250 },
      { suite: 'train', of: 'gone 1x16 f16 r=16', dtype: 'float32', ms: 7, tokensPerSecond: 1 },
    ],
  };

  it('puts float32 in the peer columns, other dtypes on rows of their own, and keeps orphans', () => {
    const rows = mergePeftPeer(ours(), peer);
    expect(rows.map((r) => r.name)).toEqual(['tiny 1x16 f16 r=16', 'tiny 1x16 f16 r=16 vs bfloat16', 'tiny decode 3 tokens, f16', 'gone 1x16 f16 r=16']);
    expect(rows[0]!.peer).toEqual({ name: 'PEFT 0.18.0 + transformers 5.17.0, torch 2.11.0 float32 on NVIDIA H100', ms: 20, tokensPerSecond: 800, gflops: 2.5 });
    expect(rows[1]).toMatchObject({ ms: 10, gflops: 5, peer: { ms: 5, gflops: 10 } });
    expect(rows[2]!.peer).toMatchObject({ ms: 4, tokensPerSecond: 250 });
    expect(rows[2]!.peer!.gflops).toBeUndefined();
    expect(rows[3]).toMatchObject({ ms: NaN, note: expect.stringMatching(/no row of ours/) });
  });

  it('leaves our rows alone without a peer', () => {
    const rows = ours();
    expect(mergePeftPeer(rows, null)).toBe(rows);
  });
});
