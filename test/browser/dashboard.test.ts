// End-to-end test of the dashboard in Debian's Chromium with WebGPU on SwiftShader (the CPU):
// every page from the header, the create-job form's line-numbered validation errors, and a real
// job on the tiny Llama fixture (picked as a local folder) whose loss chart fills from the
// training worker. Missing Chromium or WebGPU fails: a browser test that skips tests nothing.
import { readFileSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { strFromU8, unzipSync } from 'fflate';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAndServe, collectPageErrors, DOCS_SCREENSHOTS_DIR as DOCS, launchChromium, RESULTS_DIR as RESULTS, ROOT, type ServedApp, settleForScreenshot, tabTo } from './harness';

const TINY_LLAMA = join(ROOT, 'test/fixtures/models/tiny-llama');
/** The system message every training example has: the playground asks the fine-tuned model with it. */
const TRAINING_SYSTEM = 'Answer in one word.';
const SHORT_CHAT = [
  ['2+2?', '4.'],
  ['3+3?', '6.'],
  ['Sky colour?', 'Blue.'],
  ['Grass colour?', 'Green.'],
  ['Capital of France?', 'Paris.'],
  ['Capital of Italy?', 'Rome.'],
  ['Say hi.', 'Hi!'],
  ['Say bye.', 'Bye!'],
  ['Opposite of hot?', 'Cold.'],
  ['Opposite of up?', 'Down.'],
  ['First letter?', 'A.'],
  ['Last letter?', 'Z.'],
]
  .map(([q, a]) => JSON.stringify({ messages: [{ role: 'system', content: TRAINING_SYSTEM }, { role: 'user', content: q }, { role: 'assistant', content: a }] }))
  .join('\n');
// SwiftShader compiles every WGSL pipeline on the CPU: the first training step takes longest.
// Bounds only for a hung run; on a loaded 2-core machine a step takes ~20 s.
const FIRST_POINTS_TIMEOUT_MS = 150_000;
const JOB_END_TIMEOUT_MS = 120_000;

let served: ServedApp | null = null;
let browser: Browser | null = null;
const pageErrors: string[] = [];
let diagnostics = (): string => '';

async function openApp(): Promise<Page> {
  served = await buildAndServe('dashboard');
  browser = await launchChromium('dashboard test');
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 }, colorScheme: 'light' });
  diagnostics = collectPageErrors(page, pageErrors).diagnostics;
  // Chromium asks before a download; the adapter buttons are not clicked here, but a dialog
  // from confirm() (delete, cancel) would block the page.
  page.on('dialog', (d) => void d.accept());
  await page.goto(served.url);
  return page;
}

let opened: Promise<Page> | null = null;
/** The job the create test made; later tests build on it. */
let firstJobId: string | null = null;
const app = (): Promise<Page> => (opened ??= openApp());

async function shot(page: Page, name: string, options: { fullPage?: boolean; docs?: boolean } = {}): Promise<void> {
  await settleForScreenshot(page);
  await mkdir(RESULTS, { recursive: true });
  const path = join(RESULTS, `dashboard-${name}.png`);
  await page.screenshot({ path, fullPage: options.fullPage ?? true });
  if (options.docs !== false) {
    await mkdir(DOCS, { recursive: true });
    await copyFile(path, join(DOCS, `dashboard-${name}.png`));
  }
}

async function go(page: Page, hash: string): Promise<void> {
  await page.evaluate((h) => (location.hash = h), hash);
}

describe('dashboard in Chromium (WebGPU on SwiftShader)', () => {
  afterAll(async () => {
    await browser?.close();
    await served?.close();
  });

  it('reaches every page from the header, by keyboard too, in light and dark', async () => {
    const page = await app();
    // The training worker opens its store and the GPU; with no jobs yet the empty state shows.
    await page.getByTestId('no-jobs').waitFor({ timeout: 60_000 });
    expect(await page.locator('main').getAttribute('data-page')).toBe('jobs');
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link').allInnerTexts()).toEqual(['Fine-tuning', 'Playground', 'Models', 'GPU / About']);
    expect(await nav.getByRole('link', { name: 'Fine-tuning' }).getAttribute('aria-current')).toBe('page');
    await shot(page, 'empty', { docs: false });

    await nav.getByRole('link', { name: 'Playground' }).click();
    await page.getByTestId('playground-empty').waitFor();
    expect(await nav.getByRole('link', { name: 'Playground' }).getAttribute('aria-current')).toBe('page');

    await nav.getByRole('link', { name: 'Models' }).click();
    await page.getByTestId('no-models').waitFor();

    // GPU / About by keyboard alone: Tab from the top of the page to its link, then Enter.
    await page.evaluate(() => {
      window.scrollTo(0, 0);
      (document.activeElement as HTMLElement | null)?.blur?.();
    });
    const about = nav.getByRole('link', { name: 'GPU / About' });
    // Focus may start inside the page (the Models page's model list has many stops), so allow a full cycle.
    expect(await tabTo(page, about, 60), 'Tab never reached the "GPU / About" link').toBe(true);
    await page.keyboard.press('Enter');
    const outcome = page.locator('[data-testid="adapter"], [data-testid="no-webgpu"]').first();
    await outcome.waitFor({ timeout: 30_000 });
    if ((await outcome.getAttribute('data-testid')) === 'no-webgpu') {
      throw new Error(`The page found no WebGPU in Chromium:\n${await outcome.innerText()}${diagnostics()}`);
    }
    expect((await page.getByTestId('adapter-architecture').innerText()).toLowerCase()).toContain('swiftshader');
    // After a navigation focus moves to the page, not left on the link.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
    await shot(page, 'about', { docs: false });

    // Theme: system -> light -> dark -> system, stored across reloads.
    const toggle = page.getByTestId('theme-toggle');
    const theme = () => page.evaluate(() => document.documentElement.getAttribute('data-theme'));
    expect(await theme()).toBeNull();
    await toggle.click();
    expect(await theme()).toBe('light');
    await toggle.click();
    expect(await theme()).toBe('dark');
    await page.reload();
    await page.getByTestId('adapter').waitFor({ timeout: 30_000 });
    expect(await theme(), 'the dark choice survives a reload').toBe('dark');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe('rgb(21, 19, 15)');
    await page.getByTestId('theme-toggle').click();
    expect(await theme()).toBeNull();
    expect(pageErrors, 'errors in the page').toEqual([]);
  });

  it('lists a JSONL file’s errors by line number before Create is enabled', async () => {
    const page = await app();
    await go(page, '#/jobs/new');
    await page.getByTestId('create-job-page').waitFor();
    const lines = [
      '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}',
      '',
      '{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]}',
      '{"messages": [{"role": "user", "content": "<b>not html</b>"}',
    ];
    await page.getByTestId('training-file-input').setInputFiles({ name: 'broken.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(lines.join('\n') + '\n') });
    const report = page.getByTestId('training-file-report');
    await report.waitFor({ timeout: 30_000 });
    expect(await report.getAttribute('data-ok')).toBe('false');
    const errors = page.getByTestId('validation-errors');
    const rows = await errors.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => ({ line: tr.getAttribute('data-line'), text: (tr as HTMLElement).innerText })));
    // Line 3 has two problems (an unknown role, so no assistant message); line 4 is cut-off JSON.
    expect([...new Set(rows.map((r) => r.line))]).toEqual(['3', '4']);
    expect(rows.find((r) => r.line === '3')!.text).toContain('bot');
    expect(rows.find((r) => r.line === '4')!.text.toLowerCase()).toContain('json');
    expect(await report.locator('.report-summary').innerText()).toMatch(new RegExp(`${rows.length} errors in 2 of 3 lines`));
    // The preview renders what the user wrote as text, never as markup.
    expect(await page.locator('.report b').count()).toBe(0);

    expect(await page.getByTestId('create-submit').isDisabled()).toBe(true);
    // The embedded model the app ships is chosen for a new job (once the worker has read its
    // config), so the model is not among the reasons.
    await expect.poll(() => page.getByTestId('model-summary').first().innerText(), { timeout: 30_000 }).toContain('whittle-bilingual-small');
    // With the model chosen the file is validated again (token statistics); its report stays on
    // screen meanwhile, and the reasons settle on its errors.
    await expect.poll(() => page.getByTestId('create-reasons').innerText(), { timeout: 30_000 }).toContain('The training file has errors');
    expect(await page.getByTestId('create-reasons').innerText()).not.toContain('Choose a base model.');

    // A bad hyperparameter is explained next to its field and among the reasons.
    await page.getByTestId('hp-epochs').fill('0');
    expect(await page.getByTestId('create-reasons').innerText()).toContain('Epochs must be a whole number from 1 to 1000.');
    await page.getByTestId('hp-epochs').fill('');
    await shot(page, 'validation');
    expect(pageErrors, 'errors in the page').toEqual([]);
  });

  it('creates a job on the tiny Llama from a local folder and the loss chart fills', { timeout: FIRST_POINTS_TIMEOUT_MS + JOB_END_TIMEOUT_MS + 60_000 }, async () => {
    const page = await app();
    await go(page, '#/jobs/new');
    await page.getByTestId('create-job-page').waitFor();

    // The model: the fixture folder, given to the folder input as a directory upload.
    await page.getByRole('radio', { name: 'Local folder' }).check();
    await page.getByTestId('model-folder-input').setInputFiles(TINY_LLAMA);
    const summary = page.getByTestId('model-summary');
    await summary.waitFor({ timeout: 60_000 });
    expect(await summary.innerText()).toContain('LlamaForCausalLM');

    // The data: 12 short chat examples (short sequences keep SwiftShader's steps short),
    // validated with the model's tokenizer.
    await page.getByTestId('training-file-input').setInputFiles({ name: 'short_chat.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(SHORT_CHAT) });
    const report = page.getByTestId('training-file-report');
    await page.waitForFunction(() => document.querySelector('[data-testid="training-file-report"]')?.getAttribute('data-ok') === 'true' && document.querySelector('[data-testid="token-histogram"]') !== null, undefined, { timeout: 60_000 });
    expect(await report.innerText()).toContain('12 valid examples');
    expect(Number((await page.getByTestId('billed-tokens').innerText()).split('\n')[0]!.replace(/,/g, ''))).toBeGreaterThan(0);

    // A short job: one epoch, a fixed seed, a suffix.
    await page.getByTestId('hp-epochs').fill('1');
    await page.getByTestId('hp-batchSize').fill('3');
    await page.locator('summary', { hasText: 'Advanced training settings' }).click();
    await page.getByTestId('hp-seed').fill('7');
    await page.getByTestId('suffix').fill('e2e-tiny');
    const create = page.getByTestId('create-submit');
    await page.waitForFunction(() => !(document.querySelector('[data-testid="create-submit"]') as HTMLButtonElement).disabled, undefined, { timeout: 30_000 });
    expect(await page.getByTestId('summary-billed').innerText()).toMatch(/\d/);
    await shot(page, 'create-job');
    await create.click();

    const detail = page.getByTestId('job-detail');
    await detail.waitFor({ timeout: 30_000 });
    // Named after its training file, with the suffix.
    expect(await detail.locator('h2').first().innerText()).toBe('short_chat · e2e-tiny');
    firstJobId = await detail.getAttribute('data-job-id');
    await page.waitForFunction(
      () => {
        const points = Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute('data-points') ?? 0);
        const status = document.querySelector('[data-testid="job-detail"]')?.getAttribute('data-status');
        return points > 0 || status === 'failed';
      },
      undefined,
      { timeout: FIRST_POINTS_TIMEOUT_MS, polling: 500 },
    );
    const status = await detail.getAttribute('data-status');
    expect(status, `the job failed: ${await detail.innerText()}${diagnostics()}`).not.toBe('failed');
    expect(Number(await page.getByTestId('chart-loss').getAttribute('data-points'))).toBeGreaterThan(0);

    // Reload mid-training: the page (and its training worker) goes away; the new page recovers
    // the job from the store and it runs on to the end.
    expect(await detail.getAttribute('data-status'), 'the job should still be running (4 steps)').toBe('running');
    await page.reload();
    await page.getByTestId('job-detail').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('job-detail').getAttribute('data-job-id')).toBe(firstJobId);
    await expect.poll(() => page.getByTestId('events-log').innerText(), { timeout: 30_000 }).toContain('Interrupted (the page was closed while it ran)');

    // 4 steps in all (12 examples, batch 3): wait for the end, then the job page is complete.
    await page.waitForFunction(() => ['succeeded', 'failed', 'cancelled'].includes(document.querySelector('[data-testid="job-detail"]')?.getAttribute('data-status') ?? ''), undefined, { timeout: JOB_END_TIMEOUT_MS, polling: 500 });
    expect(await detail.getAttribute('data-status'), await page.getByTestId('events-log').innerText()).toBe('succeeded');
    expect(Number(await page.getByTestId('chart-loss').getAttribute('data-points'))).toBeGreaterThanOrEqual(2);
    expect(await page.getByTestId('step-count').innerText()).toContain('step 4 of 4');
    // Download the adapter: a PEFT zip with the two files PEFT reads, in its key names.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-adapter').click()]);
    expect(download.suggestedFilename()).toMatch(/e2e-tiny.*-adapter\.zip$/);
    const zipped = unzipSync(new Uint8Array(readFileSync(await download.path())));
    expect(Object.keys(zipped).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const adapterConfig = JSON.parse(strFromU8(zipped['adapter_config.json']!)) as { peft_type: string; r: number; target_modules: string[] };
    expect(adapterConfig.peft_type).toBe('LORA');
    const weights = zipped['adapter_model.safetensors']!;
    const headerLength = Number(new DataView(weights.buffer, weights.byteOffset).getBigUint64(0, true));
    const tensorNames = Object.keys(JSON.parse(strFromU8(weights.subarray(8, 8 + headerLength))) as object).filter((k) => k !== '__metadata__');
    expect(tensorNames).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(tensorNames.length).toBe(2 * 2 * adapterConfig.target_modules.length); // 2 layers, A and B

    // The job had no validation file: the insights section says so instead of spinning.
    await page.waitForFunction(() => document.querySelector('[data-testid="validation-insights"]')?.getAttribute('data-state') === 'none', undefined, { timeout: 30_000 });
    expect(await page.getByTestId('insights-none').innerText()).toContain('No validation data');
    // Step times in the log, so a slow SwiftShader step is easy to spot.
    console.log(`tiny Llama job in Chromium/SwiftShader:\n  ${(await page.getByTestId('events-log').innerText()).replace(/\n/g, '\n  ')}`);
    expect(await page.getByTestId('events-log').innerText()).not.toBe('');
    expect(await page.getByTestId('job-item').count()).toBe(1);
    await shot(page, 'job');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot(page, 'job-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    expect(pageErrors, 'errors in the page').toEqual([]);
  });

  it('reruns the job with other settings and overlays the two in the comparison', { timeout: JOB_END_TIMEOUT_MS + 60_000 }, async () => {
    const page = await app();
    if (!firstJobId) throw new Error('needs the job of the previous test');
    await go(page, `#/jobs/${firstJobId}`);
    await page.getByTestId('rerun').click();
    await page.getByTestId('create-job-page').waitFor();
    // The form comes back with the job's model, stored file, values and pinned seed.
    await page.getByTestId('model-summary').waitFor();
    expect(await page.getByTestId('hp-epochs').inputValue()).toBe('1');
    expect(await page.getByTestId('hp-seed').inputValue()).toBe('7');
    expect(await page.getByTestId('suffix').inputValue()).toBe('e2e-tiny');
    // One step this time: all 12 examples in one batch.
    await page.getByTestId('hp-batchSize').fill('12');
    await page.getByTestId('suffix').fill('e2e-batch12');
    // With a validation file this time, so the job ends with validation insights.
    await page.getByTestId('validation-file-input').setInputFiles({ name: 'valid.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(SHORT_CHAT.split('\n').slice(0, 4).join('\n') + '\n') });
    await page.waitForFunction(() => !(document.querySelector('[data-testid="create-submit"]') as HTMLButtonElement).disabled, undefined, { timeout: 30_000 });
    await page.getByTestId('create-submit').click();
    const detail = page.getByTestId('job-detail');
    await page.waitForFunction(() => document.querySelector('[data-testid="job-detail"] h2')?.textContent?.endsWith(' · e2e-batch12'), undefined, { timeout: 30_000 });
    await page.waitForFunction(() => ['succeeded', 'failed', 'cancelled'].includes(document.querySelector('[data-testid="job-detail"]')?.getAttribute('data-status') ?? ''), undefined, { timeout: JOB_END_TIMEOUT_MS, polling: 500 });
    expect(await detail.getAttribute('data-status'), await page.getByTestId('events-log').innerText()).toBe('succeeded');
    // Validation insights: the 4 validation examples, highest and lowest loss, base and fine-tuned answers side by side.
    await page.waitForFunction(() => document.querySelector('[data-testid="validation-insights"]')?.getAttribute('data-state') === 'ready', undefined, { timeout: 60_000 });
    const insights = page.getByTestId('validation-insights');
    expect(await insights.getByTestId('insight-example').count()).toBe(4);
    expect(await insights.locator('[data-end="highest"] figcaption').allTextContents()).toEqual(['Base model', 'Fine-tuned model', 'Base model', 'Fine-tuned model']);
    await shot(page, 'validation-insights', { fullPage: true });

    // Tick both jobs, compare: curves on shared axes, the batch size row marked as differing.
    const items = page.getByTestId('job-item');
    expect(await items.count()).toBe(2);
    for (const box of await items.locator('input[type="checkbox"]').all()) await box.check();
    await page.getByTestId('compare-button').click();
    const table = page.getByTestId('compare-table');
    await table.waitFor();
    const batchRow = table.locator('tr', { has: page.locator('th', { hasText: /^Batch size/ }) });
    expect(await batchRow.getAttribute('class')).toContain('differs');
    expect(await table.locator('tr', { has: page.locator('th', { hasText: /^Seed/ }) }).getAttribute('class')).not.toContain('differs');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="compare-train-loss"]')?.getAttribute('data-points') ?? 0) >= 3, undefined, { timeout: 30_000 });
    await shot(page, 'compare');
    expect(pageErrors, 'errors in the page').toEqual([]);
  });

  it('compares the base model and the fine-tuned adapter in the playground, streaming', { timeout: 120_000 }, async () => {
    const page = await app();
    if (!firstJobId) throw new Error('needs the job of the create test');
    await go(page, `#/playground?job=${firstJobId}`);
    await page.getByTestId('playground').waitFor();
    const panes = page.getByTestId('pane');
    expect(await panes.count()).toBe(2);
    const selected = await page.getByTestId('pane-target').evaluateAll((ss) => ss.map((s) => (s as HTMLSelectElement).selectedOptions[0]?.textContent ?? ''));
    expect(selected[0]).toMatch(/^Base · tiny-llama/);
    expect(selected[1]).toMatch(/^short_chat · e2e-tiny · final adapter/);
    // Opened on the job: its training system message is filled in, and the tiny model samples greedily.
    expect(await page.getByLabel('System message').inputValue()).toBe(TRAINING_SYSTEM);
    expect(await page.getByLabel('Temperature').inputValue()).toBe('0');

    await page.getByLabel('Max tokens').fill('6');
    await page.getByTestId('user-message').fill('What is 2+2?');
    await page.getByTestId('run-compare').click();
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="pane-state"]')].every((s) => /finished|max tokens|stop|error|aborted/.test(s.textContent ?? '')), undefined, { timeout: 100_000, polling: 250 });
    expect(await page.locator('.pane-output .form-error').allInnerTexts(), diagnostics()).toEqual([]);
    // Greedy decoding stops at 6 tokens or at an end-of-sequence token, whichever comes first.
    for (const state of await page.getByTestId('pane-state').allInnerTexts()) expect(['max tokens', 'finished']).toContain(state);
    for (const s of await page.locator('.pane-stats').allInnerTexts()) expect(s).toMatch(/[1-6] tokens\s+[\d.]+ tok\/s/);
    await shot(page, 'playground');

    // The comparison went into the history (localStorage) and survives a reload.
    await page.reload();
    await page.getByTestId('playground').waitFor();
    expect(await page.locator('.history-list li').count()).toBe(1);
    expect(pageErrors, 'errors in the page').toEqual([]);
    // The jobs survive the reload too (IndexedDB), and their model is on the Models page.
    await go(page, '#/jobs');
    await page.getByTestId('job-item').first().waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('job-item').count()).toBe(2);
    await go(page, '#/models');
    await page.getByTestId('models-table').waitFor();
    expect(await page.getByTestId('models-table').innerText()).toContain('tiny-llama');
    await shot(page, 'models');

    // On a phone-sized screen every page fits its width (no sideways scrolling of the page).
    await page.setViewportSize({ width: 390, height: 844 });
    for (const hash of [`#/jobs/${firstJobId}`, '#/jobs/new', '#/playground', '#/models', '#/about']) {
      await go(page, hash);
      await page.waitForTimeout(300);
      const overflow = await page.evaluate(() => {
        const width = document.documentElement.clientWidth;
        // The outermost elements that stick out, to say what to fix.
        const wide = [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > width + 1 && !el.closest('.table-scroll'));
        const outer = wide.filter((el) => !wide.includes(el.parentElement!)).slice(0, 8);
        return {
          by: document.documentElement.scrollWidth - width,
          culprits: outer.map((el) => `${el.tagName.toLowerCase()}.${[...el.classList].join('.')} right=${Math.round(el.getBoundingClientRect().right)}`),
        };
      });
      expect(overflow.by, `${hash} is wider than the screen: ${overflow.culprits.join(', ')}`).toBeLessThanOrEqual(0);
      if (hash.startsWith('#/jobs/ftjob')) await shot(page, 'mobile-job', { docs: false });
      if (hash === '#/playground') await shot(page, 'mobile-playground', { docs: false });
    }
    await page.setViewportSize({ width: 1360, height: 900 });
  });

  it('pauses, resumes and cancels a running job from its page', { timeout: 3 * JOB_END_TIMEOUT_MS }, async () => {
    const page = await app();
    if (!firstJobId) throw new Error('needs the job of the create test');
    const status = (list: string[]) =>
      page.waitForFunction((l) => l.includes(document.querySelector('[data-testid="job-detail"]')?.getAttribute('data-status') ?? ''), list, { timeout: JOB_END_TIMEOUT_MS, polling: 250 });
    await go(page, `#/jobs/new?from=${firstJobId}`);
    await page.getByTestId('model-summary').waitFor();
    // 12 steps (4 epochs of batch 4): long enough to act on while it runs.
    await page.getByTestId('hp-epochs').fill('4');
    await page.getByTestId('hp-batchSize').fill('4');
    await page.getByTestId('suffix').fill('e2e-pause');
    await page.waitForFunction(() => !(document.querySelector('[data-testid="create-submit"]') as HTMLButtonElement).disabled, undefined, { timeout: 30_000 });
    await page.getByTestId('create-submit').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="job-detail"] h2')?.textContent?.endsWith(' · e2e-pause'), undefined, { timeout: 30_000 });
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute('data-points') ?? 0) > 0, undefined, { timeout: FIRST_POINTS_TIMEOUT_MS, polling: 250 });

    // Pause: the job stops after its step, with a checkpoint to resume from.
    await page.getByTestId('pause').click();
    await status(['paused']);
    const pausedAt = await page.getByTestId('step-count').innerText();
    expect(await page.locator('.status-message').innerText()).toMatch(/resume/i);
    expect(await page.getByTestId('checkpoints').locator('tbody tr').count()).toBeGreaterThan(0);
    await shot(page, 'paused', { docs: false });

    // Resume: queued, then running from that checkpoint, and new points arrive.
    await page.getByTestId('resume').click();
    await status(['queued', 'running']);
    const points = Number(await page.getByTestId('chart-loss').getAttribute('data-points'));
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid="chart-loss"]')?.getAttribute('data-points') ?? 0) > n, points, { timeout: JOB_END_TIMEOUT_MS, polling: 250 });

    // Cancel (confirmed in the dialog): final, and the actions that no longer apply are gone.
    await page.getByTestId('cancel').click();
    await status(['cancelled', 'succeeded']);
    const events = await page.getByTestId('events-log').innerText();
    expect(await page.getByTestId('job-detail').getAttribute('data-status'), events).toBe('cancelled');
    expect(events).toContain('Resume requested');
    expect(await page.getByTestId('pause').count()).toBe(0);
    expect(await page.getByTestId('resume').count()).toBe(0);
    expect(pausedAt).toMatch(/step \d+ of 12/);
    expect(pageErrors, 'errors in the page').toEqual([]);
  });
});
