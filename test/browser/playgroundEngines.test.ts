// The playground's engines in Chromium: the tiny Llama picked as a local folder, the fixture PEFT
// adapter imported into panes from disk, one pane on our WebGPU engine (SwiftShader) and one on
// ONNX Runtime Web (the model with the adapter merged, exported to ONNX, run by the WASM backend
// in the training worker, its .wasm served from our origin). With greedy settings both panes must
// write the same text; a third pane gets an adapter for another architecture and must say so.
// No job is trained: imported adapters run on both engines.
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAndServe, collectPageErrors, DOCS_SCREENSHOTS_DIR, launchChromium, RESULTS_DIR, ROOT, type ServedApp, settleForScreenshot, waitForServiceWorker } from './harness';

const TINY_LLAMA = join(ROOT, 'test/fixtures/models/tiny-llama');
const adapterFiles = (name: string) => ['adapter_config.json', 'adapter_model.safetensors'].map((f) => join(ROOT, 'test/fixtures/adapters', name, f));
// SwiftShader compiles every WGSL pipeline on the CPU; bounds only for a hung run.
const RUN_TIMEOUT_MS = 150_000;

let app: ServedApp | null = null;
let browser: Browser | null = null;

async function pickImportedAdapter(pane: Locator, adapter: string): Promise<void> {
  // Right after a load the choices follow the worker's job list: wait for them.
  const peftChoice = async () => (await pane.getByTestId('pane-target').locator('option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value))).find((v) => v.startsWith('peft|'));
  await expect.poll(peftChoice, { timeout: 30_000, message: `no "Imported adapter" choice in a pane showing:\n${await pane.innerText()}` }).toBeDefined();
  const peft = (await peftChoice())!;
  await pane.getByTestId('pane-target').selectOption(peft);
  await pane.getByTestId('pane-adapter-files').setInputFiles(adapterFiles(adapter));
  await expect.poll(() => pane.getByTestId('pane-adapter-name').innerText()).toBe('adapter files');
}

async function shot(page: Page, name: string): Promise<void> {
  await settleForScreenshot(page);
  await mkdir(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, name);
  await page.screenshot({ path, fullPage: false });
  await mkdir(DOCS_SCREENSHOTS_DIR, { recursive: true });
  await copyFile(path, join(DOCS_SCREENSHOTS_DIR, name));
}

describe('playground engines in Chromium', () => {
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('runs an imported adapter on ONNX Runtime Web beside our engine, with the same greedy text, offline too, and explains a mismatched adapter', { timeout: 2 * RUN_TIMEOUT_MS + 120_000 }, async () => {
    app = await buildAndServe('playground-engines');
    browser = await launchChromium('playground engines test');
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 }, colorScheme: 'light' });
    const { errors, diagnostics } = collectPageErrors(page);
    const requests: string[] = [];
    page.context().on('request', (r) => requests.push(r.url()));
    await page.goto(app.url);

    // The base model: the fixture folder, added on the Models page.
    await page.evaluate(() => (location.hash = '#/models'));
    await page.getByRole('radio', { name: 'Local folder' }).check();
    await page.getByTestId('model-folder-input').setInputFiles(TINY_LLAMA);
    await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });

    await page.evaluate(() => (location.hash = '#/playground'));
    await page.getByTestId('playground').waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: '+ Add pane' }).click();
    const panes = page.getByTestId('pane');
    expect(await panes.count()).toBe(3);
    const [ours, viaOrt, mismatched] = [panes.nth(0), panes.nth(1), panes.nth(2)];
    await pickImportedAdapter(ours, 'tiny-llama');
    await pickImportedAdapter(viaOrt, 'tiny-llama');
    await viaOrt.getByTestId('pane-engine').selectOption('onnxruntime');
    await pickImportedAdapter(mismatched, 'tiny-gpt2');
    expect(await viaOrt.getAttribute('data-engine')).toBe('onnxruntime');
    expect(await ours.getAttribute('data-engine')).toBe('whittle');

    // Greedy, shared settings.
    const form = page.locator('form.prompt-card');
    await form.getByLabel('Temperature').fill('0');
    await form.getByLabel('Max tokens').fill('24');
    await form.getByLabel('Seed').fill('1');
    await page.getByTestId('user-message').fill('Capital of France?');

    // Every text the ORT pane shows while it runs: each is a prefix of the final text.
    await viaOrt.getByTestId('pane-output').evaluate((el) => {
      const seen: string[] = [];
      (window as unknown as { ortTexts: string[] }).ortTexts = seen;
      new MutationObserver(() => {
        const t = el.querySelector('.turn.current .msg-content')?.textContent ?? '';
        if (t && seen.at(-1) !== t) seen.push(t);
      }).observe(el, { subtree: true, childList: true, characterData: true });
    });
    await page.getByTestId('run-compare').click();
    const done = (pane: Locator) => pane.getByTestId('pane-state').evaluate((el) => ['finished', 'max tokens', 'error'].includes(el.textContent ?? ''));
    await expect.poll(async () => (await done(ours)) && (await done(viaOrt)) && (await done(mismatched)), { timeout: RUN_TIMEOUT_MS, interval: 500 }).toBe(true);

    const text = (pane: Locator) => pane.locator('.turn.current .msg-content').innerText();
    const ortText = await text(viaOrt);
    expect(await viaOrt.getByTestId('pane-state').innerText(), `${await viaOrt.innerText()}${diagnostics()}`).not.toBe('error');
    expect(await ours.getByTestId('pane-state').innerText(), `${await ours.innerText()}${diagnostics()}`).not.toBe('error');
    expect(ortText.length).toBeGreaterThan(0);
    expect(ortText).toBe(await text(ours));
    expect(await viaOrt.getByTestId('pane-rate').innerText()).toMatch(/^\d+(\.\d)? tok\/s$/);
    const seen = await page.evaluate(() => (window as unknown as { ortTexts: string[] }).ortTexts);
    expect(seen.at(-1)).toBe(ortText);
    // How many of the streamed states get painted depends on the machine's load (on 2 busy cores
    // all 24 tokens can land in one frame); token-by-token events are checked in Node
    // (test/generation/onnxGeneration.test.ts). Whatever was painted is a prefix of the final text.
    for (const s of seen) expect(ortText.startsWith(s)).toBe(true);

    // A GPT-2 adapter on a Llama model: the pane says it does not fit, as text.
    expect(await mismatched.getByTestId('pane-state').innerText()).toBe('error');
    const error = await mismatched.getByRole('alert').innerText();
    expect(error).toContain('does not fit tiny-llama');
    // ONNX Runtime's WebAssembly came from our own origin (the build's hashed asset), not a CDN.
    const wasm = requests.filter((u) => /ort-wasm-simd-threaded[^/]*\.wasm$/.test(u));
    expect(wasm.length, requests.join('\n')).toBeGreaterThan(0);
    for (const u of wasm) expect(u.startsWith(app.url)).toBe(true);
    expect(requests.filter((u) => !u.startsWith(app!.url) && !u.startsWith('blob:') && !u.startsWith('data:'))).toEqual([]);

    await shot(page, 'playground-engines.png');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(RESULTS_DIR, 'playground-engines-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    expect(errors, 'errors in the page').toEqual([]);

    // Offline, after a reload: the service worker's precache serves ONNX Runtime's .wasm to a
    // fresh training worker, and the ORT pane writes the same text again.
    await waitForServiceWorker(page, 60_000);
    await page.context().route('**', (route) => route.abort('internetdisconnected'));
    await page.context().setOffline(true);
    await page.reload();
    await page.getByTestId('playground').waitFor({ timeout: 60_000 });
    const offlinePane = page.getByTestId('pane').nth(1);
    await pickImportedAdapter(offlinePane, 'tiny-llama');
    await offlinePane.getByTestId('pane-engine').selectOption('onnxruntime');
    await form.getByLabel('Temperature').fill('0');
    await form.getByLabel('Max tokens').fill('24');
    await page.getByTestId('user-message').fill('Capital of France?');
    await page.getByTestId('run-compare').click();
    await expect.poll(() => done(offlinePane), { timeout: RUN_TIMEOUT_MS, interval: 500 }).toBe(true);
    await expect.poll(() => page.getByTestId('run-compare').isEnabled(), { timeout: RUN_TIMEOUT_MS, interval: 500 }).toBe(true);
    expect(await offlinePane.getByTestId('pane-state').innerText(), `${await offlinePane.innerText()}${diagnostics()}`).not.toBe('error');
    expect(await text(offlinePane)).toBe(ortText);
  });
});
