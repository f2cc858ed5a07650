// The curated base models in Chromium, against the local stand-in for the Hugging Face Hub (set
// as the app's Hub mirror): the list shows each model's size and memory fit before anything is
// downloaded, a click downloads one through the Hub API with per-file and total progress, and a job
// on it with the Chinese clinic sample (clinic-zh) shows its token preview, Chinese characters
// included, then trains. The repo served under SmolLM2-135M-Instruct's name holds the tiny Llama
// test model (the list's sizes come from the real config; the download is tiny); its byte-level
// tokenizer splits every Chinese character over several tokens, the case the preview must show.
// Screenshots of the list and the preview at desktop and 390 px phone width, light and dark.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../jobs/hubServer';
import { buildAndServe, collectPageErrors, launchChromium, RESULTS_DIR, ROOT, settleForScreenshot, type ServedApp } from './harness';

const SAMPLE_TRAIN = join(ROOT, 'public/samples/clinic-zh.train.jsonl');
const SAMPLE_VALID = join(ROOT, 'public/samples/clinic-zh.valid.jsonl');
const CJK = /[\u4e00-\u9fff]/;
const FIRST_POINT_TIMEOUT_MS = 240_000;
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
  // The model tabs open on the chosen model's tab, not on "Local folder".
  expect(await page.getByRole('radio', { name: /^Embedded model/ }).isChecked()).toBe(true);
  expect(await page.getByRole('radio', { name: 'Local folder' }).isChecked()).toBe(false);
  await page.getByRole('radio', { name: 'Hugging Face' }).check();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="curated-model"]').length === 6, undefined, { timeout: 60_000 });
}

describe('curated models from the Hub in Chromium', () => {
  it('shows sizes and memory fit, downloads one with progress, previews the Chinese sample on it and trains', { timeout: 400_000 + FIRST_POINT_TIMEOUT_MS }, async () => {
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

    // The Chinese clinic sample on it: the preview comes from the downloaded model's tokenizer and
    // template. Every token chip shows something: a token that is only part of a character shows
    // its bytes (<0xE6>), the token that completes it the character.
    await page.getByTestId('training-file-input').setInputFiles(SAMPLE_TRAIN);
    await page.getByTestId('validation-file-input').setInputFiles(SAMPLE_VALID);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="token-preview"] .tok-trained').length > 0, undefined, { timeout: 150_000 });
    const first = page.getByTestId('training-file').getByTestId('token-example').first();
    const firstLine = JSON.parse(readFileSync(SAMPLE_TRAIN, 'utf8').split('\n')[0]!) as { messages: { role: string; content: string }[] };
    const chips = await first.locator('.tok').evaluateAll((ts) => ts.map((t) => ({ text: t.textContent ?? '', bytes: t.getAttribute('data-bytes'), trained: t.classList.contains('tok-trained') })));
    expect(chips.filter((c) => c.text === ''), 'empty token chips').toEqual([]);
    expect(chips.some((c) => c.bytes !== null && /^(<0x[0-9A-F]{2}>)+$/.test(c.text)), 'byte chips of split characters').toBe(true);
    const shown = chips.map((c) => (c.bytes !== null && /^(<0x[0-9A-F]{2}>)+$/.test(c.text) ? '' : c.text)).join('');
    // Read without the byte chips, the tokens spell the rendered example: Chinese system and user messages.
    for (const m of firstLine.messages.slice(0, 2)) {
      expect(CJK.test(m.content)).toBe(true);
      expect(shown).toContain(m.content);
    }
    // The model's 128 positions cut the reply; what is kept of it is trained, in Chinese.
    const reply = firstLine.messages[2]!.content;
    const trainedShown = chips.filter((c) => c.trained && !(c.bytes !== null && /^(<0x[0-9A-F]{2}>)+$/.test(c.text))).map((c) => c.text).join('');
    expect(trainedShown).toMatch(CJK);
    expect(reply.startsWith(trainedShown) || trainedShown.startsWith(reply), `trained text ${JSON.stringify(trainedShown)}`).toBe(true);
    for (const [width, height, size] of [
      [1280, 900, 'desktop'],
      [390, 844, 'phone'],
    ] as const) {
      await page.setViewportSize({ width, height });
      // Charts follow their box through a ResizeObserver, a frame after the resize: give the
      // layout up to 5 s to settle before measuring (a lasting overflow still fails below).
      await page
        .waitForFunction(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth, null, { timeout: 5_000 })
        .catch(() => undefined);
      // The form with a file's report and preview still fits the screen: nothing sticks out sideways.
      const overflow = await page.evaluate(() => {
        const w = document.documentElement.clientWidth;
        const wide = [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > w + 1 && !el.closest('.table-scroll'));
        const outer = wide.filter((el) => !wide.includes(el.parentElement!)).slice(0, 8);
        return { by: document.documentElement.scrollWidth - w, culprits: outer.map((el) => `${el.tagName.toLowerCase()}.${[...el.classList].join('.')} right=${Math.round(el.getBoundingClientRect().right)}`) };
      });
      expect(overflow.by, `the create form is wider than the ${size} screen: ${overflow.culprits.join(', ')}`).toBeLessThanOrEqual(0);
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        await settleForScreenshot(page);
        await page.getByTestId('training-file').getByTestId('example-preview').screenshot({ path: join(RESULTS_DIR, `hub-preview-zh-${size}-${scheme}.png`) });
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1280, height: 900 });

    // Create: the job is named after its file with the suffix, runs on the downloaded model and trains.
    await page.getByTestId('suffix').fill('zh-doctor');
    await page.getByTestId('hp-epochs').fill('1');
    await page.waitForFunction(() => !(document.querySelector('[data-testid="create-submit"]') as HTMLButtonElement).disabled, undefined, { timeout: 60_000 }).catch(async () => {
      throw new Error(`Create stayed disabled: ${await page.getByTestId('create-reasons').innerText().catch(() => '?')}${diagnostics()}`);
    });
    await page.getByTestId('create-submit').click();
    const detail = page.getByTestId('job-detail');
    await detail.waitFor({ timeout: 180_000 });
    expect(await detail.locator('h2').first().innerText()).toBe('clinic-zh · zh-doctor');
    expect(await detail.innerText()).toContain(REPO);
    await page.waitForFunction(
      () => Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute('data-points') ?? 0) > 0 || document.querySelector('[data-testid="job-detail"]')?.getAttribute('data-status') === 'failed',
      undefined,
      { timeout: FIRST_POINT_TIMEOUT_MS, polling: 500 },
    );
    expect(await detail.getAttribute('data-status'), `${await page.getByTestId('events-log').innerText()}${diagnostics()}`).not.toBe('failed');
    // Enough: cancel (confirmed in the dialog), so the rest of the test has the GPU to itself.
    page.once('dialog', (d) => void d.accept());
    await page.getByTestId('cancel').click();
    await page.waitForFunction(() => ['cancelled', 'succeeded'].includes(document.querySelector('[data-testid="job-detail"]')?.getAttribute('data-status') ?? ''), undefined, { timeout: 120_000, polling: 250 });

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
