// End-to-end smoke test of the built app in Debian's Chromium with WebGPU on SwiftShader (the CPU).
// Missing Chromium or missing WebGPU fails: a browser test that skips itself tests nothing.
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { allSelfTestCases } from '../../src/selftest';
import { buildAndServe, collectPageErrors, CHROMIUM, CHROMIUM_ARGS, DOCS_SCREENSHOTS_DIR, launchChromium, RESULTS_DIR, type ServedApp, tabTo } from './harness';

const SCREENSHOT = join(RESULTS_DIR, 'capability.png');
const README_SCREENSHOT = join(DOCS_SCREENSHOTS_DIR, 'capability.png');
// SwiftShader runs WGSL on the CPU, tens of times slower than lavapipe: cases must stay small.
// This bound only stops a hung run; the runner also times out each case on its own.
const SELFTEST_TIMEOUT_MS = 300_000;

// A name that is not a secure context, for the help-page test.
const INSECURE_HOST = 'whittle.test';

let app: ServedApp | null = null;
let browser: Browser | null = null;
const pageErrors: string[] = [];
let diagnostics = (): string => '';

/** Builds and serves the app, starts Chromium and opens the page. */
async function openApp(): Promise<Page> {
  app = await buildAndServe('smoke', { allowedHosts: [INSECURE_HOST] });
  browser = await launchChromium('browser smoke test');
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  diagnostics = collectPageErrors(page, pageErrors).diagnostics;
  await page.goto(`${app.url}#/about`); // the capability page is the dashboard's GPU / About page
  return page;
}

// Set up once, inside the tests rather than in beforeAll: a setup failure then fails each test
// with its message instead of reporting them as skipped.
let opened: Promise<Page> | null = null;

/** The page once the worker has probed WebGPU; throws with the page's own help text if it found none. */
async function pageWithAdapter(): Promise<Page> {
  const page = await (opened ??= openApp());
  const outcome = page.locator('[data-testid="adapter"], [data-testid="no-webgpu"]').first();
  await outcome.waitFor({ timeout: 30_000 });
  if ((await outcome.getAttribute('data-testid')) === 'no-webgpu') {
    throw new Error(`The page found no WebGPU in Chromium:\n${await outcome.innerText()}${diagnostics()}`);
  }
  return page;
}

describe('app in Chromium (WebGPU on SwiftShader)', () => {
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('finds the SwiftShader WebGPU adapter and shows its limits', async () => {
    const p = await pageWithAdapter();
    expect(await p.locator('h1').innerText()).toContain('Fine-tune language models');
    const architecture = await p.getByTestId('adapter-architecture').innerText();
    expect(architecture.toLowerCase(), diagnostics()).toContain('swiftshader');
    const binding = await p.getByTestId('limit-maxStorageBufferBindingSize').innerText();
    expect(binding).toMatch(/\d+(\.\d)? (B|KiB|MiB|GiB)/);
    // SwiftShader has no shader-f16: the badge must say so rather than claim it.
    expect(await p.getByTestId('cap-shader-f16').getAttribute('data-on')).toBe('false');
  });

  it('runs the kernel self-test from the keyboard and every case passes', { timeout: SELFTEST_TIMEOUT_MS + 30_000 }, async () => {
    const p = await pageWithAdapter();
    const button = p.getByRole('button', { name: 'Run kernel self-test' });
    // Reach the button with Tab alone: the page must be usable without a mouse.
    expect(await tabTo(p, button, 20), 'Tab never reached the "Run kernel self-test" button').toBe(true);
    await p.keyboard.press('Enter');

    const summary = p.getByTestId('selftest-summary');
    await p.waitForFunction(
      () => {
        const s = document.querySelector('[data-testid="selftest-summary"]')?.getAttribute('data-state');
        return s === 'done' || s === 'error';
      },
      undefined,
      { timeout: SELFTEST_TIMEOUT_MS, polling: 250 },
    );
    const summaryText = await summary.innerText();

    // Screenshots first, so a failing run can be looked at (test-results/ is gitignored).
    await p.evaluate(() => (document.activeElement as HTMLElement | null)?.blur()); // no focus ring in the picture
    await mkdir(dirname(SCREENSHOT), { recursive: true });
    await p.screenshot({ path: SCREENSHOT, fullPage: true });
    await p.emulateMedia({ colorScheme: 'dark' });
    await p.screenshot({ path: join(RESULTS_DIR, 'capability-dark.png'), fullPage: true });
    await p.emulateMedia({ colorScheme: 'light' });

    expect(await summary.getAttribute('data-state'), `${summaryText}${diagnostics()}`).toBe('done');
    const rows = p.getByTestId('selftest-row');
    const expected = allSelfTestCases();
    expect(await rows.count(), 'the page ran a different number of cases than the registry holds').toBe(expected.length);
    const statuses = await rows.evaluateAll((trs) =>
      trs.map((tr) => ({ status: tr.getAttribute('data-status'), text: (tr as HTMLElement).innerText.replace(/\s+/g, ' ') })),
    );
    // Per-case times in the log, so a case too big for SwiftShader is easy to spot.
    console.log(`self-test in Chromium/SwiftShader (${summaryText}):\n  ${statuses.map((s) => s.text).join('\n  ')}`);
    const failed = statuses.filter((s) => s.status !== 'pass');
    expect(failed, `failed in the browser (see ${SCREENSHOT}):\n${failed.map((f) => f.text).join('\n')}${diagnostics()}`).toEqual([]);
    expect(await summary.getAttribute('data-outcome'), summaryText).toBe('pass');
    expect(summaryText).toMatch(/passed in/);

    // Only a fully passing page goes into the README.
    await mkdir(dirname(README_SCREENSHOT), { recursive: true });
    await copyFile(SCREENSHOT, README_SCREENSHOT);
    expect(pageErrors, 'errors in the page').toEqual([]);
  });

  it('explains what to do when there is no adapter or no secure context', async () => {
    await pageWithAdapter(); // the app is built and served
    // A second Chromium without WebGPU flags or a GPU, where a plain-http host name maps to the server.
    const bare = await chromium.launch({
      executablePath: CHROMIUM,
      args: [...CHROMIUM_ARGS.filter((a) => !a.includes('webgpu')), '--disable-gpu', `--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`],
      headless: true,
    });
    try {
      const page = await bare.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(app!.url);
      const help = page.getByTestId('no-webgpu');
      await help.waitFor({ timeout: 30_000 });
      expect(await help.getByRole('heading', { level: 2 }).innerText()).toContain('no GPU adapter');
      await page.screenshot({ path: join(RESULTS_DIR, 'no-webgpu.png'), fullPage: true });

      // Over plain http to a non-local name the browser hides navigator.gpu altogether.
      await page.goto(app!.url.replace('127.0.0.1', INSECURE_HOST));
      await help.waitFor({ timeout: 30_000 });
      expect(await page.evaluate(() => window.isSecureContext)).toBe(false);
      expect(await help.getByRole('heading', { level: 2 }).innerText()).toContain('does not offer WebGPU');
      expect(await help.getByRole('note').innerText()).toContain('not a secure context');
    } finally {
      await bare.close();
    }
  });
});
