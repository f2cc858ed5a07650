// The curated base models in Chromium, against the local stand-in for the Hugging Face Hub (set
// as the app's Hub mirror): the list shows each model's size and memory fit before anything is
// downloaded, a click downloads one through the Hub API with per-file and total progress, a job
// form on it shows the token preview. The repo served under SmolLM2-135M-Instruct's name holds
// the tiny Llama test model (the list's sizes come from the real config; the download is tiny).
// Screenshots of the list at desktop and 390 px phone width, light and dark.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../jobs/hubServer';
import { buildAndServe, collectPageErrors, launchChromium, RESULTS_DIR, ROOT, settleForScreenshot, type ServedApp } from './harness';

const SAMPLE = join(ROOT, 'public/samples/clinic-assistant.train.jsonl');
const TINY_LLAMA = join(ROOT, 'test/fixtures/models/tiny-llama');
const REPO = 'HuggingFaceTB/SmolLM2-135M-Instruct';

let app: ServedApp | null = null;
let browser: Browser | null = null;
let hub: HubServer | null = null;
const pageErrors: string[] = [];

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await hub?.close();
});

async function openHubTab(page: Page, url: string): Promise<void> {
  await page.goto(`${url}#/jobs/new`);
  await page.getByTestId('create-job-page').waitFor({ timeout: 60_000 });
  // The form starts on the embedded model once the worker has read it.
  await page.waitForFunction(() => document.querySelector('[data-testid="model-summary"]')?.textContent?.includes('whittle-bilingual-small'), undefined, { timeout: 120_000 });
  await page.getByRole('radio', { name: 'Hugging Face' }).check();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="curated-model"]').length === 6, undefined, { timeout: 60_000 });
}

describe('curated models from the Hub in Chromium', () => {
  it('shows sizes and memory fit, downloads one with progress and previews a file on it', { timeout: 400_000 }, async () => {
    const files = new Map(readdirSync(TINY_LLAMA).map((n) => [n, new Uint8Array(readFileSync(join(TINY_LLAMA, n)))] as const));
    hub = await startHubServer(TINY_LLAMA, 'whittle-test/unused', 'main', { repos: { [REPO]: { files, redirectLfs: true } } });
    app = await buildAndServe('hub-models');
    browser = await launchChromium('curated models test');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
    await context.addInitScript((endpoint) => localStorage.setItem('whittle.hubEndpoint', endpoint), hub.url);
    const page = await context.newPage();
    const { diagnostics } = collectPageErrors(page, pageErrors);
    await openHubTab(page, app.url);

    // Before any download: size, licence and memory fit of every model; Qwen3 not supported yet.
    const card = page.locator(`[data-testid="curated-model"][data-repo="${REPO}"]`);
    const text = await card.innerText();
    expect(text).toMatch(/Parameters\s+135M/);
    expect(text).toMatch(/Download\s+≈ 2\d\d\.\d MiB/);
    expect(text).toMatch(/Apache-2\.0/);
    expect(await card.locator('.fit').getAttribute('data-fit')).toBe('ok');
    const qwen3 = page.locator('[data-testid="curated-model"][data-repo="Qwen/Qwen3-0.6B"]');
    expect(await qwen3.innerText()).toContain('Not supported yet: needs per-head q/k norms');
    expect(await qwen3.getByRole('button', { name: 'Download' }).isDisabled()).toBe(true);
    expect(hub.requests.filter((r) => r.path.includes('/resolve/'))).toEqual([]);
    await mkdir(RESULTS_DIR, { recursive: true });
    await settleForScreenshot(page);
    // The sticky header would cover the top of an element scrolled into view.
    await page.addStyleTag({ content: '.site-header { position: static !important; }' });
    await page.locator('.hub-models').screenshot({ path: join(RESULTS_DIR, 'curated-models-desktop-light.png') });

    // Download: the Hub API lists the files, each file downloads (weights through a redirect)
    // with per-file and total progress, then the model is chosen.
    hub.delayMs = 1500;
    await card.getByRole('button', { name: 'Download' }).click();
    await page.getByTestId('download-progress').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('download-total').innerText()).toMatch(/ of .* · file \d of 5$/);
    expect(await page.getByTestId('hub-listing').innerText()).toMatch(/5 files/);
    await page.getByTestId('download-progress').screenshot({ path: join(RESULTS_DIR, 'hub-download-progress.png') });
    await page.waitForFunction((repo) => document.querySelector('[data-testid="model-summary"]')?.textContent?.includes(repo), REPO, { timeout: 120_000 });
    hub.delayMs = 0;
    expect(hub.requests.some((r) => r.path === `/api/models/${REPO}/tree/main`)).toBe(true);
    expect(hub.requests.filter((r) => r.status === 302).map((r) => r.file)).toEqual(['model.safetensors']);
    expect(await page.getByTestId('model-summary').innerText()).toContain('Hugging Face · revision main');

    // A file on it: the preview comes from the downloaded model's tokenizer and template.
    await page.getByTestId('training-file-input').setInputFiles(SAMPLE);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="token-preview"] .tok-trained').length > 0, undefined, { timeout: 150_000 });
    expect(await page.getByTestId('token-example').count()).toBeGreaterThan(0);

    // Phone width, light and dark: the list and the navigation fit 390 px.
    for (const scheme of ['light', 'dark'] as const) {
      const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: scheme, deviceScaleFactor: 2 });
      await phone.addInitScript((endpoint) => localStorage.setItem('whittle.hubEndpoint', endpoint), hub.url);
      const p = await phone.newPage();
      collectPageErrors(p, pageErrors);
      await openHubTab(p, app.url);
      // Nothing is wider than the screen: the navigation wraps or scrolls instead of clipping.
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, 'page wider than the phone').toBeLessThanOrEqual(0);
      // Every navigation link is on screen (it once showed only "GPU / A" of the last ones).
      const nav = await p.locator('.main-nav').evaluate((el) => {
        const links = [...el.querySelectorAll('a')].map((a) => a.getBoundingClientRect());
        return { right: Math.max(...links.map((r) => r.right)), count: links.length, width: window.innerWidth };
      });
      expect(nav.count).toBeGreaterThanOrEqual(4);
      expect(nav.right, 'navigation links cut off at the screen edge').toBeLessThanOrEqual(nav.width);
      await settleForScreenshot(p);
      await p.screenshot({ path: join(RESULTS_DIR, `curated-models-phone-${scheme}.png`), fullPage: false });
      await p.locator('.hub-models').screenshot({ path: join(RESULTS_DIR, `curated-models-list-phone-${scheme}.png`) });
      await phone.close();
    }
    expect(pageErrors, `errors in the page${diagnostics()}`).toEqual([]);
  });
});
