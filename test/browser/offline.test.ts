// The built app works offline: after one online visit, public/sw.js serves the app shell, the
// embedded model and the sample datasets with the network blocked, Range requests included.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { listFiles } from '../../scripts/listFiles';
import { buildAndServe, launchChromium, ROOT, waitForServiceWorker, type ServedApp } from './harness';

const MODEL_DIR = 'models/whittle-bilingual-small';
const SW_READY_TIMEOUT_MS = 30_000;

interface SwManifest {
  shellVersion: string;
  dataVersion: string;
  shell: string[];
  data: string[];
}

let app: ServedApp | null = null;
let browser: Browser | null = null;

describe('offline app (service worker)', () => {
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('serves the app, the model and the samples with the network blocked', { timeout: 90_000 }, async () => {
    // Decided before the build: the model folder is in public/ or it is not, and the manifest must say the same.
    const modelFiles = existsSync(join(ROOT, 'public', MODEL_DIR)) ? listFiles(join(ROOT, 'public', MODEL_DIR)).map((f) => `${MODEL_DIR}/${f}`) : [];
    console.log(
      modelFiles.length
        ? `embedded model present: checking ${modelFiles.join(', ')}`
        : `no public/${MODEL_DIR} at build time: the model checks are replaced by sample-file checks`,
    );

    app = await buildAndServe('offline');
    const { outDir } = app;

    // The manifest lists exactly the built files (no source maps, not the worker itself).
    const manifest = JSON.parse(readFileSync(join(outDir, 'sw-manifest.json'), 'utf8')) as SwManifest;
    const built = listFiles(outDir).filter((f) => !f.endsWith('.map') && f !== 'sw.js' && f !== 'sw-manifest.json');
    expect([...manifest.shell, ...manifest.data].sort()).toEqual(built);
    expect(manifest.data).toEqual(built.filter((f) => f.startsWith('models/') || f.startsWith('samples/')));
    expect(manifest.shell).toEqual(expect.arrayContaining(['index.html', 'favicon.svg', 'manifest.webmanifest']));
    expect(manifest.shell.some((f) => /^assets\/index-[\w-]+\.js$/.test(f))).toBe(true);
    const sampleFiles = listFiles(join(ROOT, 'public/samples')).map((f) => `samples/${f}`);
    expect(sampleFiles.length).toBeGreaterThan(0);
    expect(manifest.data.filter((f) => f.startsWith('samples/'))).toEqual(sampleFiles);
    expect(manifest.data.filter((f) => f.startsWith(`${MODEL_DIR}/`))).toEqual(modelFiles);
    // Installable: the web manifest names the app and its icons are in the build.
    const webManifest = JSON.parse(readFileSync(join(outDir, 'manifest.webmanifest'), 'utf8')) as { name: string; icons: { src: string }[] };
    expect(webManifest.name).toBe('Whittle');
    expect(webManifest.icons.length).toBeGreaterThan(0);
    for (const icon of webManifest.icons) expect(manifest.shell).toContain(icon.src);
    // The built sw.js carries this build's versions, so a new deploy changes its bytes.
    expect(readFileSync(join(outDir, 'sw.js'), 'utf8')).toContain(JSON.stringify({ shellVersion: manifest.shellVersion, dataVersion: manifest.dataVersion }));

    const url = app.url;
    browser = await launchChromium('offline test');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    const consoleLines: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));

    // Online: the app registers the worker, which fills its caches during install.
    await page.goto(url);
    await page.locator('h1').first().waitFor({ timeout: 30_000 });
    const onlineHeading = await page.locator('h1').first().innerText();
    const activated = await waitForServiceWorker(page, SW_READY_TIMEOUT_MS).then(
        () => true,
        () => false,
      );
    if (!activated) {
      const registration = await page.evaluate(async () => {
        const reg = await navigator.serviceWorker.getRegistration();
        if (!reg) return 'no registration';
        return `installing: ${reg.installing?.state ?? '-'}, waiting: ${reg.waiting?.state ?? '-'}, active: ${reg.active?.state ?? '-'}`;
      });
      expect.fail(
        `the app did not register and activate /sw.js within ${SW_READY_TIMEOUT_MS / 1000} s (is registerServiceWorker() called in src/main.tsx?)\n` +
          `registration: ${registration}\nconsole:\n  ${consoleLines.join('\n  ')}`,
      );
    }

    const cacheReport = await page.evaluate(async (paths) => {
      const names = (await caches.keys()).filter((n) => n.startsWith('whittle-'));
      const missing: string[] = [];
      for (const p of paths) if (!(await caches.match(new URL(p, location.href).href))) missing.push(p);
      return { names, missing };
    }, [...manifest.shell, ...manifest.data]);
    expect(cacheReport.missing).toEqual([]);
    expect(cacheReport.names.sort()).toEqual([`whittle-data-${manifest.dataVersion}`, `whittle-shell-${manifest.shellVersion}`]);

    // Offline: every request that reaches the network fails.
    await context.route('**', (route) => route.abort('internetdisconnected'));
    await page.route('**', (route) => route.abort('internetdisconnected'));
    await context.setOffline(true);
    await page.reload();
    await page.locator('h1').first().waitFor({ timeout: 30_000 });
    expect(await page.locator('h1').first().innerText()).toBe(onlineHeading);
    // The reloaded page is the worker's.
    expect(await page.evaluate(() => navigator.serviceWorker.controller?.state)).toBe('activated');

    // What the network would have to answer does fail: the checks below are the worker's doing.
    const uncached = await page.evaluate(() =>
      fetch('not-cached-anywhere.txt').then(
        (r) => `HTTP ${r.status}`,
        (e: unknown) => `failed: ${String(e)}`,
      ),
    );
    expect(uncached).toMatch(/^failed/);

    // The loader's reads: HEAD for the size, then `Range: bytes=a-b` slices (206 from the cache).
    const rangeFile = modelFiles.includes(`${MODEL_DIR}/model.safetensors`) ? `${MODEL_DIR}/model.safetensors` : 'samples/pirate-style.train.jsonl';
    const onDisk = readFileSync(join(outDir, rangeFile));
    const start = Math.min(8, onDisk.length - 1);
    const end = Math.min(start + 99, onDisk.length - 1);
    const reads = await page.evaluate(
      async ({ file, start, end }) => {
        const head = await fetch(file, { method: 'HEAD' });
        const part = await fetch(file, { headers: { Range: `bytes=${start}-${end}` } });
        const suffix = await fetch(file, { headers: { Range: 'bytes=-5' } });
        const beyond = await fetch(file, { headers: { Range: 'bytes=999999999-' } });
        return {
          headStatus: head.status,
          size: head.headers.get('content-length'),
          partStatus: part.status,
          contentRange: part.headers.get('content-range'),
          part: [...new Uint8Array(await part.arrayBuffer())],
          suffixStatus: suffix.status,
          suffix: [...new Uint8Array(await suffix.arrayBuffer())],
          beyondStatus: beyond.status,
        };
      },
      { file: rangeFile, start, end },
    );
    console.log(`offline Range check on ${rangeFile}: ${reads.contentRange}`);
    expect(reads.headStatus).toBe(200);
    expect(Number(reads.size)).toBe(onDisk.length);
    expect(reads.partStatus).toBe(206);
    expect(reads.contentRange).toBe(`bytes ${start}-${end}/${onDisk.length}`);
    expect(reads.part).toEqual([...onDisk.subarray(start, end + 1)]);
    expect(reads.suffixStatus).toBe(206);
    expect(reads.suffix).toEqual([...onDisk.subarray(onDisk.length - 5)]);
    expect(reads.beyondStatus).toBe(416);

    // Whole files: the sample index, and the model's config when the model is embedded.
    const whole = [
      'samples/index.json',
      ...(modelFiles.includes(`${MODEL_DIR}/config.json`) ? [`${MODEL_DIR}/config.json`] : []),
    ];
    if (modelFiles.length) expect(whole, 'the embedded model has no config.json').toContain(`${MODEL_DIR}/config.json`);
    for (const file of whole) {
      const text = await page.evaluate((f) => fetch(f).then((r) => (r.ok ? r.text() : `HTTP ${r.status}`)), file);
      expect(text, file).toBe(readFileSync(join(outDir, file), 'utf8'));
      expect(() => JSON.parse(text) as unknown, file).not.toThrow();
    }
    expect(pageErrors).toEqual([]);
  });
});
