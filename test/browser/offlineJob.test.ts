// The offline promise, end to end: after one online visit, with the network off and every request
// to a host other than this machine refused, the first screen's "Try it" card trains a job on
// the embedded model and a shipped sample to the end, in Chromium's WebGPU on SwiftShader.
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAndServe, collectPageErrors, copyShotsToDocs, lapLogger, launchChromium, type ServedApp, shot, waitForJobEnd, waitForServiceWorker } from './harness';

const SAMPLE = 'pirate-style';
const SW_READY_TIMEOUT_MS = 60_000;
// SwiftShader compiles every pipeline on the CPU and runs the quick check's 4 steps there; the
// bound only stops a hung run.
const JOB_END_TIMEOUT_MS = 360_000;

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

let app: ServedApp | null = null;
let browser: Browser | null = null;

/** Refuses, and records, every http(s) request of the context to a host that is not this machine. */
async function refuseRemoteHosts(context: BrowserContext): Promise<string[]> {
  const refused: string[] = [];
  await context.route(
    (url) => (url.protocol === 'http:' || url.protocol === 'https:') && !LOCAL_HOSTS.has(url.hostname),
    (route) => {
      refused.push(route.request().url());
      return route.abort('blockedbyclient');
    },
  );
  // Requests that bypass routing (a service worker's own fetches) still show up here.
  context.on('request', (r) => {
    const u = new URL(r.url());
    if ((u.protocol === 'http:' || u.protocol === 'https:') && !LOCAL_HOSTS.has(u.hostname) && !refused.includes(r.url())) refused.push(r.url());
  });
  return refused;
}

describe('offline "Try it" job (WebGPU on SwiftShader)', () => {
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('trains the embedded model on a shipped sample with the network off', { timeout: JOB_END_TIMEOUT_MS + 240_000 }, async () => {
    const lap = lapLogger('offline job');
    app = await buildAndServe('offline-job');
    browser = await launchChromium('offline job test');
    lap('built and served');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
    const refused = await refuseRemoteHosts(context);
    const page = await context.newPage();
    const { errors, diagnostics } = collectPageErrors(page);

    // Online, once: the service worker installs (filling its caches) and takes control.
    await page.goto(app.url);
    await waitForServiceWorker(page, SW_READY_TIMEOUT_MS);
    lap('service worker active');

    // Offline: the browser has no network at all; the app, model and samples come from the cache.
    await context.setOffline(true);
    await page.reload();
    const card = page.getByTestId('try-it');
    await card.waitFor({ timeout: 60_000 });
    expect(await card.getByRole('heading', { level: 2 }).innerText()).toBe('Try it with the built-in model and a sample dataset');
    // Every shipped sample is offered, with its one-line description and size.
    const samples = card.getByTestId('try-it-sample');
    await samples.first().waitFor({ timeout: 30_000 });
    expect(await samples.evaluateAll((ls) => ls.map((l) => l.getAttribute('data-sample-id')))).toEqual(['clinic-assistant', 'pirate-style', 'clinic-zh']);
    const pirate = card.locator(`[data-testid="try-it-sample"][data-sample-id="${SAMPLE}"]`);
    await expect.poll(() => pirate.innerText(), { timeout: 30_000 }).toMatch(/112 training \+ 18 validation examples · \d+(\.\d)? KiB/);
    // The button waits for the worker and the embedded model (read from the cache).
    const start = page.getByTestId('try-it-start');
    await page.waitForFunction(() => !(document.querySelector('[data-testid="try-it-start"]') as HTMLButtonElement | null)?.disabled, undefined, { timeout: 90_000, polling: 250 });
    expect(await page.evaluate(() => navigator.onLine)).toBe(false);
    await shot(page, 'try-it.png');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot(page, 'try-it-dark.png');
    await page.emulateMedia({ colorScheme: 'light' });
    lap('first screen ready offline');

    // The pirate sample, the quick check: its first 32 examples, one epoch, 4 steps.
    await pirate.locator('input[type="radio"]').check();
    await page.getByTestId('try-it-length-quick').check();
    expect(await page.getByTestId('try-it-length-quick').isChecked()).toBe(true);
    expect(await card.locator('.try-it-length').innerText()).toContain('4 steps');
    expect(await start.innerText()).toContain('Pirate speak');
    await start.click();

    const detail = page.getByTestId('job-detail');
    await detail.waitFor({ timeout: 60_000 });
    expect(await detail.locator('h2').first().innerText()).toBe(`${SAMPLE} · quick check`);
    lap('job created');
    await waitForJobEnd(page, detail, { timeoutMs: JOB_END_TIMEOUT_MS, pollMs: 20_000, timeoutShot: 'offline-job-timeout.png', lap, diagnostics });
    await shot(page, 'offline-job.png');
    const events = await page.getByTestId('events-log').innerText();
    console.log(`offline job events:\n  ${events.replace(/\n/g, '\n  ')}`);
    expect(await detail.getAttribute('data-status'), `${events}${diagnostics()}`).toBe('succeeded');
    lap('job succeeded');
    // 32 examples in batches of 8, one epoch: 4 steps, all charted.
    expect(await page.getByTestId('step-count').innerText()).toContain('step 4 of 4');
    expect(Number(await page.getByTestId('chart-loss').getAttribute('data-points'))).toBeGreaterThanOrEqual(4);
    // Validated on the sample's validation file at step 2 and at the end: the loss went down.
    const validLosses = [...events.matchAll(/validation loss=(\d+\.\d+)/g)].map((m) => Number(m[1]));
    expect(events).toContain('18 validation examples');
    expect(validLosses.length, events).toBeGreaterThanOrEqual(2);
    expect(validLosses.at(-1)!, events).toBeLessThan(validLosses[0]!);

    // With a job listed the card opens from the page head; its link fills the full create form
    // with the chosen sample (the first one, the clinic) and the card's full-run settings.
    await page.getByTestId('try-it-open').click();
    await page.getByTestId('try-it-form').click();
    await page.getByTestId('create-job-page').waitFor();
    await page.waitForFunction(() => document.querySelector('[data-testid="training-file-report"]')?.getAttribute('data-ok') === 'true', undefined, { timeout: 60_000, polling: 250 });
    expect(await page.getByTestId('training-file').innerText()).toContain('clinic-assistant.train.jsonl');
    expect(await page.getByTestId('validation-file').innerText()).toContain('clinic-assistant.valid.jsonl');
    expect(await page.getByTestId('suffix').inputValue()).toBe('clinic-assistant');
    expect(await page.getByTestId('hp-epochs').inputValue()).toBe('4');

    expect(await page.evaluate(() => navigator.onLine), 'the page stayed offline').toBe(false);
    expect(refused, 'requests to hosts other than this machine').toEqual([]);
    expect(errors, 'errors in the page').toEqual([]);
    await copyShotsToDocs(['try-it.png', 'offline-job.png']);
  });
});
