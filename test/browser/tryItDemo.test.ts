// The first fine-tune a person tries, through the UI only: the first screen's "Try it" card trains
// the embedded model on the clinic sample (the card's full run, its shipped settings), the job
// page shows the finished job, and the playground, opened from it, answers questions that are in
// no sample file. Greedy, with the training system message: the fine-tuned model opens and signs
// off as the sample does, the base model does not (the criterion of test/train/demoFinetune.test.ts,
// which runs the same job in Node). Its screenshots are the README's before/after pictures.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAndServe, collectPageErrors, copyShotsToDocs, lapLogger, launchChromium, ROOT, type ServedApp, shot, waitForJobEnd } from './harness';

const SAMPLE = 'clinic-assistant';
const SAMPLE_TRAIN = join(ROOT, 'public/samples/clinic-assistant.train.jsonl');
const HELDOUT = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/data/finetune_heldout.json'), 'utf8')) as Record<string, { questions: string[] }>;
/** Three questions in no sample file. */
const QUESTIONS = HELDOUT[SAMPLE]!.questions.slice(0, 3);
const OPENING = 'Thanks for asking!';
const SIGN_OFF = '— Maple Clinic';
// SwiftShader compiles every pipeline on the CPU and runs the full run's steps there; the bound
// only stops a hung run.
const JOB_END_TIMEOUT_MS = 40 * 60_000;
const ANSWER_TIMEOUT_MS = 600_000;

let app: ServedApp | null = null;
let browser: Browser | null = null;

/** Desktop light and dark, then phone (390 px) light and dark, of the page as it is now. */
async function shotsAtEveryWidth(page: Page, name: string, fullPage: boolean): Promise<string[]> {
  const names: string[] = [];
  for (const [width, height, suffix] of [
    [1280, 900, ''],
    [390, 844, '-phone'],
  ] as const) {
    await page.setViewportSize({ width, height });
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      const file = `${name}${suffix}${scheme === 'dark' ? '-dark' : ''}.png`;
      await shot(page, file, fullPage);
      names.push(file);
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1280, height: 900 });
  return names;
}

const hasFormat = (reply: string) => reply.startsWith(OPENING) && reply.endsWith(SIGN_OFF);

describe('the "Try it" clinic job, then the playground (WebGPU on SwiftShader)', () => {
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('fine-tunes the embedded model on the clinic sample and answers new questions in its format', { timeout: JOB_END_TIMEOUT_MS + 15 * 60_000 }, async () => {
    const lap = lapLogger('try-it demo');
    app = await buildAndServe('try-it-demo');
    browser = await launchChromium('Try-it demo test');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
    const page = await context.newPage();
    const { errors, diagnostics } = collectPageErrors(page);
    await page.goto(app.url, { timeout: 120_000 });
    lap('built and served');

    // The first screen: the card, the clinic sample, its full run (the default length).
    const card = page.getByTestId('try-it');
    await card.waitFor({ timeout: 60_000 });
    const clinic = card.locator(`[data-testid="try-it-sample"][data-sample-id="${SAMPLE}"]`);
    await clinic.waitFor({ timeout: 30_000 });
    await clinic.locator('input[type="radio"]').check();
    const full = page.getByTestId('try-it-length-suggested');
    expect(await full.isChecked()).toBe(true);
    // 112 examples, 4 epochs, the model's recommended batch of 8: 56 steps.
    await expect.poll(() => card.locator('.try-it-length').innerText(), { timeout: 90_000 }).toMatch(/Full: 4 epochs\s*56 steps/);
    const start = page.getByTestId('try-it-start');
    await page.waitForFunction(() => !(document.querySelector('[data-testid="try-it-start"]') as HTMLButtonElement | null)?.disabled, undefined, { timeout: 120_000, polling: 250 });
    expect(await start.innerText()).toContain('Clinic front-desk assistant');
    await start.click();

    const detail = page.getByTestId('job-detail');
    await detail.waitFor({ timeout: 60_000 });
    const title = await detail.locator('h2').first().innerText();
    expect(title).toContain(SAMPLE);
    expect(title).not.toContain('quick check');
    lap('job created');
    await waitForJobEnd(page, detail, { timeoutMs: JOB_END_TIMEOUT_MS, pollMs: 30_000, timeoutShot: 'clinic-job-timeout.png', lap, diagnostics });
    const events = await page.getByTestId('events-log').innerText();
    console.log(`try-it demo events:\n  ${events.replace(/\n/g, '\n  ')}`);
    expect(await detail.getAttribute('data-status'), `${events}${diagnostics()}`).toBe('succeeded');
    lap('job succeeded');
    expect(await page.getByTestId('step-count').innerText()).toContain('step 56 of 56');
    expect(Number(await page.getByTestId('chart-loss').getAttribute('data-points'))).toBeGreaterThanOrEqual(56);
    // Validated on the sample's 16 validation examples along the way and at the end: the loss fell.
    const validLosses = [...events.matchAll(/validation loss=(\d+\.\d+)/g)].map((m) => Number(m[1]));
    expect(validLosses.length, events).toBeGreaterThanOrEqual(2);
    expect(validLosses.at(-1)!, events).toBeLessThan(validLosses[0]!);
    // The job page with its validation insights is several screens long: the first screen (progress and charts).
    const jobShots = await shotsAtEveryWidth(page, 'clinic-job', false);
    lap('job page shot');

    // The playground, from the job page's link: base and fine-tuned side by side, greedy, the
    // system message the job trained with.
    await page.getByRole('link', { name: 'Open in playground' }).click();
    await page.getByTestId('playground').waitFor({ timeout: 60_000 });
    const panes = page.getByTestId('pane');
    await expect.poll(() => panes.count(), { timeout: 30_000 }).toBe(2);
    const selected = await page.getByTestId('pane-target').evaluateAll((ss) => ss.map((s) => (s as HTMLSelectElement).selectedOptions[0]?.textContent ?? ''));
    expect(selected[0]).toBe('Base · whittle-bilingual-small');
    expect(selected[1]).toBe(`${title} · final adapter`);
    const trainingSystem = (JSON.parse(readFileSync(SAMPLE_TRAIN, 'utf8').split('\n')[0]!) as { messages: { role: string; content: string }[] }).messages[0]!;
    expect(trainingSystem.role).toBe('system');
    expect(await page.getByLabel('System message').inputValue()).toBe(trainingSystem.content);
    expect(await page.getByLabel('Temperature').inputValue()).toBe('0');

    const answers: { q: string; base: string; tuned: string }[] = [];
    // The last question asked stays on screen: ask the first one last, for the screenshots.
    for (const q of [...QUESTIONS.slice(1), QUESTIONS[0]!]) {
      await page.getByTestId('user-message').fill(q);
      await page.getByTestId('run-compare').click();
      await page.waitForFunction(() => document.querySelector('[data-testid="run-compare"]')?.textContent === 'Run', undefined, { timeout: ANSWER_TIMEOUT_MS, polling: 250 });
      expect(await page.locator('.pane-output .form-error').allInnerTexts(), diagnostics()).toEqual([]);
      const [base, tuned] = (await page.locator('[data-testid="pane-output"] .msg-content').allInnerTexts()).map((t) => t.trim());
      answers.push({ q, base: base ?? '', tuned: tuned ?? '' });
      console.log(JSON.stringify(answers.at(-1)));
    }
    lap('questions answered');
    // As in Node (4 of 5 there): the fine-tuned model opens and signs off as trained on most new
    // questions; the base model on none.
    const table = answers.map((a) => `${a.q}\n  base:  ${a.base}\n  tuned: ${a.tuned}`).join('\n');
    expect(answers.filter((a) => hasFormat(a.tuned)).length, table).toBeGreaterThanOrEqual(2);
    expect(answers.filter((a) => hasFormat(a.base)), table).toEqual([]);
    expect(answers.filter((a) => a.base.startsWith(OPENING)), table).toEqual([]);
    const playgroundShots = await shotsAtEveryWidth(page, 'clinic-playground', true);

    expect(errors, `errors in the page${diagnostics()}`).toEqual([]);
    await copyShotsToDocs([...jobShots, ...playgroundShots]);
    lap('done');
  });
});
