// The create-job token preview and the Models page's cache in Chromium: a sample file on the
// embedded model shows its trained tokens highlighted (and the cut at a small max sequence
// length); the Models page lists the embedded model with its files and sizes, imports the tiny
// Llama folder into browser storage and removes it again.
import { readFileSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAndServe, collectPageErrors, DOCS_SCREENSHOTS_DIR, launchChromium, RESULTS_DIR, ROOT, type ServedApp } from './harness';

const SAMPLE = join(ROOT, 'public/samples/clinic-assistant.train.jsonl');
const TINY_LLAMA = join(ROOT, 'test/fixtures/models/tiny-llama');
const EMBEDDED = join(ROOT, 'public/models/whittle-bilingual-small');
const EMBEDDED_FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'whittle_finetune.json'];

let app: ServedApp | null = null;
let browser: Browser | null = null;
const pageErrors: string[] = [];

afterAll(async () => {
  await browser?.close();
  await app?.close();
});

async function shot(page: Page, name: string, selector: string): Promise<void> {
  // The sticky header would cover the top of an element scrolled into view.
  await page.addStyleTag({ content: '.site-header { position: static !important; }' });
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur?.());
  await page.mouse.move(1, 1);
  await mkdir(RESULTS_DIR, { recursive: true });
  await mkdir(DOCS_SCREENSHOTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.png`);
  await page.locator(selector).first().screenshot({ path });
  await copyFile(path, join(DOCS_SCREENSHOTS_DIR, `${name}.png`));
}

describe('token preview and model cache in Chromium', () => {
  it('highlights the trained tokens of a sample file, then lists, imports and removes cached models', { timeout: 300_000 }, async () => {
    app = await buildAndServe('models-preview');
    browser = await launchChromium('models and preview test');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
    const page = await context.newPage();
    const { diagnostics } = collectPageErrors(page, pageErrors);
    page.on('dialog', (d) => void d.accept());
    await page.goto(`${app.url}#/jobs/new`);
    await page.getByTestId('create-job-page').waitFor({ timeout: 60_000 });
    await page.getByTestId('training-file-input').setInputFiles(SAMPLE);

    // New jobs start on the embedded model; once the worker has read it, the preview arrives
    // from the worker: tokens, some trained, some context.
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="token-preview"] .tok-trained').length > 0, undefined, { timeout: 150_000 });
    expect(await page.getByTestId('model-summary').first().innerText()).toContain('whittle-bilingual-small');
    const first = page.getByTestId('token-example').first();
    const trainedText = await first.locator('.tok-trained').allTextContents();
    const contextCount = await first.locator('.tok-context').count();
    expect(trainedText.length).toBeGreaterThan(5);
    expect(contextCount).toBeGreaterThan(trainedText.length / 4);
    // The samples fit the embedded model's context (scripts/make_samples.ts checks), so
    // nothing is cut and the trained tokens spell the first example's whole assistant reply,
    // sign-off included, and its end-of-turn token.
    const firstLine = JSON.parse(readFileSync(SAMPLE, 'utf8').split('\n')[0]!) as { messages: { role: string; content: string }[] };
    const reply = firstLine.messages.find((m) => m.role === 'assistant')!.content;
    expect(reply).toMatch(/ — Maple Clinic$/);
    expect(await first.getByTestId('token-cut').count()).toBe(0);
    expect(await first.locator('.tok-dropped').count()).toBe(0);
    expect(await first.locator('.example-line').innerText()).not.toContain('cut from');
    // No token chip is empty: one that is only part of a character shows its bytes (<0xE2>), which
    // test/data/examplePreview.test.ts checks on a tokenizer that splits characters.
    expect(trainedText.filter((t) => t === '')).toEqual([]);
    expect(trainedText.join('').replace(/(<0x[0-9A-F]{2}>)+/g, ''), 'trained text').toBe(`${reply}<|im_end|>`);
    // Context tokens hold the system prompt; each token says its id on hover.
    expect((await first.locator('.tok-context').allTextContents()).join('')).toContain(firstLine.messages[0]!.content);
    expect(await first.locator('.tok').first().getAttribute('title')).toMatch(/^token 0 · id \d+/);
    expect(await page.getByLabel('Legend').innerText()).toContain('count in the loss');
    await shot(page, 'create-preview', '[data-testid="example-preview"]');

    // A small max sequence length: the cut shows, and the dropped tokens are not trained.
    await page.evaluate(() => document.querySelectorAll('details.advanced').forEach((d) => ((d as HTMLDetailsElement).open = true)));
    await page.getByTestId('hp-maxSeqLen').fill('40');
    await page.waitForFunction(
      () => [...(document.querySelector('[data-testid="token-example"]')?.querySelectorAll('.tok') ?? [])].findIndex((e) => e.classList.contains('tok-dropped')) === 40,
      undefined,
      { timeout: 60_000 },
    );
    expect(await first.getByTestId('token-cut').innerText()).toContain('max sequence length 40');
    // 40 tokens end before the first example's reply starts: the preview says
    // nothing is left to train on.
    expect(await first.locator('.example-line').innerText()).toMatch(/0 trained · cut from \d+ to 40: nothing left to train on/);
    expect(await first.locator('.tok-dropped.tok-trained').count()).toBe(0);
    await shot(page, 'create-preview-cut', '[data-testid="example-preview"]');

    // Models: the embedded model with its files and sizes, and nothing to delete.
    await page.evaluate(() => (location.hash = '#/models'));
    await page.getByTestId('models-table').waitFor({ timeout: 60_000 });
    const embedded = page.locator('[data-testid="cached-model"][data-kind="embedded"]');
    await embedded.waitFor();
    expect(await embedded.innerText()).toContain('whittle-bilingual-small');
    expect(await embedded.innerText()).toMatch(/nothing to delete/);
    expect(await embedded.getByTestId('remove-model').count()).toBe(0);
    await embedded.locator('.model-files summary').click();
    const fileRows = await embedded.locator('.model-files li .mono').allTextContents();
    expect(fileRows).toEqual(EMBEDDED_FILES);
    const weights = readFileSync(join(EMBEDDED, 'model.safetensors')).byteLength;
    expect(weights).toBeGreaterThan(500_000);
    expect(await embedded.getByTestId('model-bytes').innerText()).toMatch(/KB|KiB|MB|MiB/);
    // Only the embedded model is listed: the line says so instead of "no models" above it.
    expect(await page.getByTestId('no-models').innerText()).toMatch(/^Only the embedded model, served with the app/);

    // Import the tiny Llama folder; it is listed with its size, then removed (confirm accepted).
    // The Add section opens on the Hugging Face list; the folder is on its own tab.
    await page.getByRole('radio', { name: 'Local folder' }).check();
    await page.getByTestId('model-folder-input').setInputFiles(TINY_LLAMA);
    const local = page.locator('[data-testid="cached-model"][data-kind="local"]');
    await local.waitFor({ timeout: 60_000 });
    expect(await local.innerText()).toContain('tiny-llama');
    expect(await page.getByTestId('cache-total').innerText()).toMatch(/^1 model stored here/);
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, 'models', '[data-testid="models-page"]');
    await local.getByTestId('remove-model').click();
    await page.getByTestId('models-message').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('models-message').innerText()).toMatch(/^Removed tiny-llama: .* in 5 files deleted\.$/);
    await local.waitFor({ state: 'detached', timeout: 30_000 });
    await page.getByTestId('no-models').waitFor();
    expect(pageErrors, `errors in the page${diagnostics()}`).toEqual([]);
  });
});
