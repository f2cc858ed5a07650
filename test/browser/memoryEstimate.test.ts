// The create-job form's memory line in Chromium: with a sample file on the embedded model the
// worker's estimate fits the adapter; a batch of 4096 at the model's 128 tokens does not (the
// logits chunk alone is several GiB), and the reasons say so before Create. Screenshots, light and dark.
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAndServe, collectPageErrors, DOCS_SCREENSHOTS_DIR, launchChromium, RESULTS_DIR, ROOT, type ServedApp, settleForScreenshot } from './harness';

const SAMPLE = join(ROOT, 'public/samples/clinic-assistant.train.jsonl');

let app: ServedApp | null = null;
let browser: Browser | null = null;

afterAll(async () => {
  await browser?.close();
  await app?.close();
});

async function shot(page: Page, name: string): Promise<void> {
  // From the top, so the sticky header does not cover the summary card.
  await settleForScreenshot(page);
  await mkdir(RESULTS_DIR, { recursive: true });
  await mkdir(DOCS_SCREENSHOTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.png`);
  await page.locator('.create-summary').screenshot({ path });
  await copyFile(path, join(DOCS_SCREENSHOTS_DIR, `${name}.png`));
}

describe('memory estimate in Chromium', () => {
  it('shows the estimate against the budget, and a batch that cannot fit is a reason before Create', { timeout: 300_000 }, async () => {
    app = await buildAndServe('memory');
    browser = await launchChromium('memory estimate test');
    for (const colorScheme of ['light', 'dark'] as const) {
      // No service worker: this test is about the form, not the offline cache.
      const page = await browser.newPage({ viewport: { width: 1280, height: 1400 }, colorScheme });
      const { errors, diagnostics } = collectPageErrors(page);
      await page.goto(`${app.url}#/jobs/new`);
      await page.getByTestId('create-job-page').waitFor({ timeout: 60_000 });
      await page.getByTestId('training-file-input').setInputFiles(SAMPLE);
      const box = page.getByTestId('memory-estimate');
      await page.waitForFunction(() => document.querySelector('[data-testid="memory-estimate"]')?.getAttribute('data-state') !== 'none', undefined, { timeout: 90_000 }).catch(async (e: unknown) => {
        await mkdir(RESULTS_DIR, { recursive: true });
        await page.screenshot({ path: join(RESULTS_DIR, 'memory-estimate-failure.png'), fullPage: true });
        throw new Error(`no estimate: ${await page.locator('.create-summary').innerText()}${diagnostics()}`, { cause: e });
      });
      expect(await box.getAttribute('data-state'), await box.innerText()).toBe('ok');
      expect(await page.getByTestId('memory-total').innerText()).toMatch(/^≈ [\d.]+ (KiB|MiB) of ~[\d.]+ (MiB|GiB)$/);
      expect(await box.innerText()).toContain('Estimate: WebGPU does not report GPU memory');
      await page.waitForFunction(() => !(document.querySelector('[data-testid="create-submit"]') as HTMLButtonElement).disabled, undefined, { timeout: 60_000 }).catch(async (e: unknown) => {
        throw new Error(`Create stays disabled: ${await page.locator('.create-summary').innerText()}${diagnostics()}`, { cause: e });
      });
      if (colorScheme === 'light') await shot(page, 'memory-estimate');

      // 128 positions (longer than the sample's longest example, the auto max sequence length),
      // so the logits of one micro-batch, 4096 × 128 × vocabulary × 4 bytes, pass any binding limit.
      await page.evaluate(() => document.querySelectorAll('details.advanced').forEach((d) => ((d as HTMLDetailsElement).open = true)));
      await page.getByTestId('hp-maxSeqLen').fill('128');
      await page.getByTestId('hp-batchSize').fill('4096');
      await page.waitForFunction(() => document.querySelector('[data-testid="memory-estimate"]')?.getAttribute('data-state') === 'over', undefined, { timeout: 60_000 });
      const reasons = await page.getByTestId('create-reasons').locator('li').allInnerTexts();
      expect(reasons.some((r) => /^One GPU buffer of this job needs [\d.]+ GiB/.test(r))).toBe(true);
      expect(reasons.some((r) => /^At 4096 × 128 tokens one tensor a kernel binds whole is [\d.]+ GiB/.test(r))).toBe(true);
      expect(await page.getByTestId('create-submit').isDisabled()).toBe(true);
      await shot(page, `memory-estimate-over-${colorScheme}`);
      expect(errors, diagnostics()).toEqual([]);
      await page.close();
    }
  });
});
