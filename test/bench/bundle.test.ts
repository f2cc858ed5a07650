// The one-file benchmark bundle (scripts/build-bench-bundle.mjs) run the way a bare GPU machine
// runs it: from a folder holding only the bundle, its peers, a copy of the node binary and
// dawn.node, through bench/oneshot.sh's quick preset, with no node_modules in reach.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchRow } from '../../src/bench/table';

const root = join(__dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'whittle-bundle-'));

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the benchmark bundle, from an empty folder', () => {
  it('builds, runs the quick one-shot (kernels, train, generate) and reports one table and JSON', () => {
    const dir = join(work, 'bench');
    const built = spawnSync(process.execPath, [join(root, 'scripts', 'build-bench-bundle.mjs'), dir], { encoding: 'utf8', timeout: 60_000 });
    expect(built.status, built.stderr).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['oneshot.sh', 'peers', 'whittle-bench.mjs']);
    expect(readdirSync(join(dir, 'peers'))).toContain('peft_peer.py');
    copyFileSync(process.execPath, join(dir, 'node'));
    const webgpu = dirname(createRequire(import.meta.url).resolve('webgpu'));
    copyFileSync(join(webgpu, 'dist', `${process.platform}-${process.arch}`, 'dawn.node'), join(dir, 'dawn.node'));
    const results = join(work, 'results');
    // cwd outside the repository and no NODE_PATH: nothing but the folder's own files to load.
    const env: NodeJS.ProcessEnv = { ...process.env, NO_PEER: '1', PATH: '/usr/bin:/bin' };
    delete env.NODE_PATH;
    delete env.NODE_OPTIONS;
    const run = spawnSync('bash', [join(dir, 'oneshot.sh'), 'quick', results], { cwd: work, env, encoding: 'utf8', timeout: 240_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toContain(`dawn: ${join(dir, 'dawn.node')}`);
    expect(run.stderr).toMatch(/==== kernels: done/);
    expect(run.stderr).toMatch(/==== train: done/);
    expect(run.stderr).toMatch(/==== generate: done/);
    expect(run.stdout).toContain('## Whittle one-shot benchmark');
    expect(run.stdout).toMatch(/\| of FMA peak \|/);
    const doc = JSON.parse(readFileSync(join(results, 'oneshot.json'), 'utf8')) as { rows: BenchRow[]; suites: { suite: string }[]; adapter: { description: string } };
    expect(doc.suites.map((s) => s.suite)).toEqual(['kernels', 'train', 'generate']);
    const probe = doc.rows.find((r) => r.name.startsWith('FMA probe'))!;
    expect(probe.gflops).toBeGreaterThan(0);
    const kernels = doc.rows.filter((r) => r.suite === 'kernels' && r !== probe);
    expect(kernels.length).toBeGreaterThanOrEqual(10);
    for (const r of kernels) expect(r.peakShare, r.name).toBeCloseTo(r.gflops! / probe.gflops!, 9);
    expect(doc.rows.find((r) => r.suite === 'train')!.tokensPerSecond).toBeGreaterThan(0);
    expect(doc.rows.filter((r) => r.suite === 'generate')).toHaveLength(2);
  }, 300_000);
});
