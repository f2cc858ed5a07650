import react from '@vitejs/plugin-react';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import { listFiles } from './scripts/listFiles';

/** The embedded model and the sample datasets: cached on first load, served cache-first. */
const SW_DATA_PREFIXES = ['models/', 'samples/'];
/** Replaced in the built sw.js, so each deploy changes its bytes and the browser installs it. */
const SW_BUILD_MARKER = "'__WHITTLE_SW_BUILD__'";

/**
 * Writes sw-manifest.json (what public/sw.js precaches; paths relative to the site root) once the
 * bundle and the public files are in the output folder, because Vite hashes asset names. Source
 * maps are left out: they are for debugging online. Cache versions are content hashes: the shell
 * cache changes with every deploy, the data cache only when a model or sample file changes.
 */
function serviceWorkerManifest(): Plugin {
  let outDir = '';
  return {
    name: 'whittle-sw-manifest',
    apply: 'build',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    writeBundle: {
      order: 'post',
      handler() {
        const files = listFiles(outDir).filter((f) => !f.endsWith('.map') && f !== 'sw.js' && f !== 'sw-manifest.json');
        const isData = (f: string) => SW_DATA_PREFIXES.some((p) => f.startsWith(p));
        const version = (names: string[]) => {
          const h = createHash('sha256');
          for (const name of names) h.update(name).update('\0').update(readFileSync(join(outDir, name))).update('\0');
          return h.digest('hex').slice(0, 16);
        };
        const shell = files.filter((f) => !isData(f));
        const data = files.filter(isData);
        const manifest = { shellVersion: version(shell), dataVersion: version(data), shell, data };
        writeFileSync(join(outDir, 'sw-manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
        const swPath = join(outDir, 'sw.js');
        const sw = readFileSync(swPath, 'utf8');
        if (!sw.includes(SW_BUILD_MARKER)) throw new Error(`public/sw.js lost its build marker ${SW_BUILD_MARKER}`);
        const build = JSON.stringify({ shellVersion: manifest.shellVersion, dataVersion: manifest.dataVersion });
        writeFileSync(swPath, sw.replace(SW_BUILD_MARKER, build));
      },
    },
  };
}

export default defineConfig({
  plugins: [react(), serviceWorkerManifest()],
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true },
  server: { host: '127.0.0.1' },
  // onnxruntime-web (the playground's ONNX pane, loaded on first use in the training worker) is a
  // self-contained ES module: served as it is, the dev server never discovers it mid-run and
  // reloads the page to pre-bundle it. Its .wasm is imported with ?url (src/generation/ortWeb.ts), so
  // builds emit it as a hashed asset that sw-manifest.json lists and the service worker precaches.
  optimizeDeps: { exclude: ['onnxruntime-web'] },
});
