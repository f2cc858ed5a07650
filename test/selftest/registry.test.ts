import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu';
import {
  allSelfTestCases,
  collectCases,
  FAMILY_ORDER,
  runSelfTest,
  summarize,
  type RegisteredCase,
  type SelfTestProgress,
} from '../../src/selftest';
import { getTestGpu } from '../helpers/gpu';

describe('self-test registry', () => {
  it('collects every family module, elementwise first, with unique well-formed cases', () => {
    const cases = allSelfTestCases();
    expect(cases.length).toBeGreaterThan(0);
    expect(cases[0]!.family).toBe('elementwise');
    const names = cases.map((c) => c.name);
    expect(new Set(names).size, `duplicate case names: ${names.join(', ')}`).toBe(names.length);
    for (const c of cases) {
      expect(c.tol, c.name).toBeGreaterThanOrEqual(0);
      expect(typeof c.run, c.name).toBe('function');
    }
    // Known families keep their documented order.
    const ranks = cases.map((c) => FAMILY_ORDER.indexOf(c.family)).filter((r) => r >= 0);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
  });

  it('turns a malformed export into a failing case instead of crashing', () => {
    const run = () => Promise.resolve(0);
    const cases = collectCases({
      './zeta.ts': { selfTestCases: [{ name: 'z', tol: 1e-6, run }] },
      './matmul.ts': { selfTestCases: [{ name: 'm', tol: 1e-6, run }, { name: 'no tol', run }, { name: 'neg', tol: -1, run }] },
      './broken.ts': { selfTestCases: 'oops' },
      './helpers.ts': {},
    });
    expect(cases.map((c) => [c.family, c.name])).toEqual([
      ['matmul', 'm'],
      ['matmul', 'matmul case #1'],
      ['matmul', 'matmul case #2'],
      ['broken', 'broken: selfTestCases'],
      ['zeta', 'z'],
    ]);
  });
});

describe('runSelfTest', () => {
  it('passes every registered case on the test GPU', async () => {
    const gpu = await getTestGpu();
    const progress: SelfTestProgress[] = [];
    const results = await runSelfTest(gpu, (p) => progress.push(p));
    const cases = allSelfTestCases();
    expect(results.map((r) => r.name)).toEqual(cases.map((c) => c.name));
    expect(progress.length).toBe(2 * cases.length);
    const failed = results.filter((r) => !r.passed);
    const report = failed
      .map((r) => `${r.family} / ${r.name}: error ${r.error.toExponential(3)} > tol ${r.tol}${r.message ? ` (${r.message})` : ''}`)
      .join('\n');
    expect(failed, `failed self-test cases:\n${report}`).toEqual([]);
    const summary = summarize(results);
    expect(summary.passed).toBe(cases.length);
    expect(summary.failed).toBe(0);
  });

  it('fails cases that exceed their bound, throw, return NaN, hit a GPU validation error or hang', async () => {
    const gpu = await getTestGpu();
    const mk = (name: string, run: (g: Gpu) => Promise<number>): RegisteredCase => ({ family: 'fake', name, tol: 1e-3, run });
    const results = await runSelfTest(
      gpu,
      undefined,
      [
        mk('within', () => Promise.resolve(5e-4)),
        mk('exceeds', () => Promise.resolve(2e-3)),
        mk('throws', () => Promise.reject(new Error('kaput'))),
        mk('nan', () => Promise.resolve(NaN)),
        mk('validation', async (g) => {
          // A buffer binding larger than the buffer is a validation error, reported asynchronously.
          const small = g.createBuffer(16);
          g.device.createBindGroup({
            layout: g.device.createBindGroupLayout({
              entries: [{ binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } }],
            }),
            entries: [{ binding: 0, resource: { buffer: small, size: 1 << 20 } }],
          });
          g.release(small);
          return 0;
        }),
        mk('hangs', () => new Promise<number>(() => {})),
      ],
      { caseTimeoutMs: 200 },
    );
    expect(results.map((r) => [r.name, r.passed])).toEqual([
      ['within', true],
      ['exceeds', false],
      ['throws', false],
      ['nan', false],
      ['validation', false],
      ['hangs', false],
    ]);
    expect(results[2]!.message).toContain('kaput');
    expect(results[3]!.error).toBe(Infinity);
    expect(results[4]!.message).toContain('GpuValidationError');
    expect(results[5]!.message).toContain('did not finish');
    expect(summarize(results)).toMatchObject({ total: 6, passed: 1, failed: 5 });
  });
});
