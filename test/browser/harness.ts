// What every browser test shares: a production build of the app served by Vite's preview
// server, and Debian's Chromium with WebGPU on SwiftShader (the CPU). Missing Chromium fails: a
// browser test that skips itself tests nothing.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = process.env.WHITTLE_CHROMIUM ?? '/usr/bin/chromium';
/** Where tests write screenshots (git-ignored) and where the README's copies live. */
export const RESULTS_DIR = join(ROOT, 'test-results');
export const DOCS_SCREENSHOTS_DIR = join(ROOT, 'docs', 'screenshots');

// WebGPU on SwiftShader; the last five flags keep Chromium from calling out to the network.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function requireChromium(testName: string): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}. The ${testName} needs Debian's chromium: ` +
        'run `bash .ci/install-system.sh` as root (or set WHITTLE_CHROMIUM to another Chromium binary).',
    );
  }
}

export interface ServedApp {
  /** The build output folder (a fresh temporary folder). */
  outDir: string;
  /** The preview server's base URL, ending in '/'. */
  url: string;
  server: PreviewServer;
  close(): Promise<void>;
}

/**
 * Builds the app into a temporary folder and serves it on a free localhost port. `allowedHosts`:
 * other host names the server answers (Vite refuses unknown Host headers).
 */
export async function buildAndServe(prefix: string, options: { allowedHosts?: string[] } = {}): Promise<ServedApp> {
  const outDir = await mkdtemp(join(tmpdir(), `whittle-${prefix}-`));
  const configFile = join(ROOT, 'vite.config.ts');
  await build({ root: ROOT, configFile, mode: 'production', logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  const server = await preview({
    root: ROOT,
    configFile,
    logLevel: 'warn',
    build: { outDir },
    preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false, ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}) },
  });
  const url = server.resolvedUrls?.local[0];
  if (!url) {
    await server.close();
    throw new Error('The Vite preview server did not report a local URL');
  }
  return {
    outDir,
    url,
    server,
    async close() {
      await server.close();
      await rm(outDir, { recursive: true, force: true });
    },
  };
}

export async function launchChromium(testName: string): Promise<Browser> {
  requireChromium(testName);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** Collects page errors and console errors of a page, for failure messages. */
export function collectPageErrors(page: Page, into: string[] = []): { errors: string[]; diagnostics(): string } {
  page.on('pageerror', (e) => into.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') into.push(`console.error: ${m.text()}`);
  });
  return {
    errors: into,
    diagnostics: () => (into.length ? `\nPage errors and console errors:\n  ${into.join('\n  ')}` : ''),
  };
}

/** Waits until the app's service worker is installed and activated (its caches are full). */
export async function waitForServiceWorker(page: Page, timeoutMs: number): Promise<void> {
  // page.waitForFunction does not await a predicate's promise: wait inside the page instead.
  const state = await page.evaluate(async (ms) => {
    const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), ms));
    const activated = (async () => {
      const reg = await navigator.serviceWorker.ready;
      const sw = reg.active!;
      if (sw.state !== 'activated') await new Promise<void>((resolve) => sw.addEventListener('statechange', () => sw.state === 'activated' && resolve()));
      return 'activated';
    })();
    return Promise.race([activated, timeout]);
  }, timeoutMs);
  if (state !== 'activated') throw new Error(`the service worker was not activated within ${timeoutMs / 1000} s`);
}

/** Before a screenshot: no focus ring, no hover, and the page (with its sticky header) at the top. */
export async function settleForScreenshot(page: Page): Promise<void> {
  await page.evaluate(() => {
    (document.activeElement as HTMLElement | null)?.blur?.();
    window.scrollTo(0, 0);
  });
  await page.mouse.move(1, 899);
}

/** A screenshot of the settled page in RESULTS_DIR; the README's copies are made by copyShotsToDocs once the test passes. */
export async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  await settleForScreenshot(page);
  await mkdir(RESULTS_DIR, { recursive: true });
  await page.screenshot({ path: join(RESULTS_DIR, name), fullPage });
}

/** Copies screenshots from RESULTS_DIR next to the README: call it last, so only a passing run's pictures go there. */
export async function copyShotsToDocs(names: readonly string[]): Promise<void> {
  await mkdir(DOCS_SCREENSHOTS_DIR, { recursive: true });
  for (const name of names) await copyFile(join(RESULTS_DIR, name), join(DOCS_SCREENSHOTS_DIR, name));
}

/** A progress logger for a long test: each line says what happened and the seconds since the logger was made. */
export function lapLogger(label: string): (what: string) => void {
  const started = Date.now();
  return (what) => console.log(`${label}: ${what} at ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/**
 * Waits until the job on the job page (`detail`) has ended (succeeded, failed or cancelled),
 * logging its status and step count every pollMs, so a slow SwiftShader step is easy to spot.
 * Past timeoutMs it saves the screenshot `timeoutShot` and throws with the events log.
 */
export async function waitForJobEnd(
  page: Page,
  detail: Locator,
  o: { timeoutMs: number; pollMs: number; timeoutShot: string; lap: (what: string) => void; diagnostics: () => string },
): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  const steps = (fallback: string) => page.getByTestId('step-count').innerText().catch(() => fallback);
  for (;;) {
    const status = (await detail.getAttribute('data-status')) ?? '';
    if (['succeeded', 'failed', 'cancelled'].includes(status)) return;
    if (Date.now() > deadline) {
      await shot(page, o.timeoutShot);
      const events = await page.getByTestId('events-log').innerText();
      throw new Error(`the job did not end in ${o.timeoutMs / 1000} s: ${status}, ${await steps('?')}\n${events}${o.diagnostics()}`);
    }
    o.lap(`${status}, ${await steps('no step count yet')}`);
    await page.waitForTimeout(o.pollMs);
  }
}

/** Presses Tab until `target` has the focus, at most maxPresses times; false if it never did. */
export async function tabTo(page: Page, target: Locator, maxPresses: number): Promise<boolean> {
  for (let i = 0; i < maxPresses; i++) {
    await page.keyboard.press('Tab');
    if (await target.evaluate((el) => el === document.activeElement)) return true;
  }
  return false;
}
