// The Benchmarks panel in Chromium (WebGPU on SwiftShader): the kernels suite's tiny preset runs
// in its worker, the table fills in, and the JSON download is the CLI's result document.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAndServe, collectPageErrors, launchChromium, RESULTS_DIR, type ServedApp } from './harness';

let app: ServedApp | null = null;
let browser: Browser | null = null;

describe('Benchmarks panel in Chromium', () => {
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('runs the tiny kernels suite in a worker, shows every case and downloads the JSON', { timeout: 240_000 }, async () => {
    app = await buildAndServe('bench');
    browser = await launchChromium('browser bench test');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    const { diagnostics } = collectPageErrors(page);
    await page.goto(`${app.url}#/about`);
    const panel = page.getByTestId('bench');
    await panel.waitFor({ timeout: 60_000 });
    await page.getByLabel('Shapes').selectOption('tiny');
    await panel.getByRole('button', { name: 'Run benchmarks' }).click();
    const summary = page.getByTestId('bench-summary');
    await page.waitForFunction(
      () => ['done', 'error'].includes(document.querySelector('[data-testid="bench-summary"]')?.getAttribute('data-state') ?? ''),
      null,
      { timeout: 180_000 },
    );
    expect(await summary.getAttribute('data-state'), `${await summary.innerText()}${diagnostics()}`).toBe('done');
    // The FMA probe, 2 matmul shapes x (f32, f16 weights), attention forward + backward, LoRA
    // fused/unfused x 2, and (SwiftShader runs the CPU plan) the previous CPU matmul at the 2 shapes.
    const rows = page.getByTestId('bench-row');
    expect(await rows.count()).toBe(13);
    expect(await rows.first().innerText()).toMatch(/^FMA probe[^]*100\.0%/);
    expect((await page.getByTestId('bench-table').locator('thead').innerText()).toLowerCase()).toContain('of fma peak');
    await page.screenshot({ path: join(RESULTS_DIR, 'bench.png'), fullPage: true });

    const [download] = await Promise.all([page.waitForEvent('download'), panel.getByRole('button', { name: 'Download JSON' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^kernels-tiny-\d{4}-\d{2}-\d{2}\.json$/);
    const doc = JSON.parse(await readFile((await download.path())!, 'utf8')) as {
      suite: string;
      adapter: { architecture: string };
      machine: { runtime: string };
      flags: { kernelShapes: string };
      rows: { name: string; ms: number; gflops?: number; peakShare?: number }[];
    };
    expect(doc.suite).toBe('kernels');
    expect(doc.flags.kernelShapes).toBe('tiny');
    expect(doc.machine.runtime).toBe('browser');
    expect(doc.adapter.architecture.toLowerCase()).toContain('swiftshader');
    expect(doc.rows).toHaveLength(13);
    for (const r of doc.rows) expect(r.ms, r.name).toBeGreaterThan(0);
    const probe = doc.rows[0]!;
    for (const r of doc.rows.slice(1)) expect(r.peakShare, r.name).toBeCloseTo(r.gflops! / probe.gflops!, 9);
    // The LoRA rows carry the fused/unfused output comparison.
    expect(doc.rows.find((r) => r.name.startsWith('lora linear unfused'))).toBeTruthy();
  });
});
