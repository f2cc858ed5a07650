// `npm run bench:bundle`: the benchmark as one JavaScript file that a plain `node` runs beside
// Dawn's dawn.node, with no node_modules and no network (WGSL and model configs inlined), plus
// the PyTorch peers and the one-shot runner beside it. Output: dist/bench/ (see bench/README.md).
import { chmod, copyFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = resolve(root, process.argv[2] ?? 'dist/bench');

/** `import text from './x.wgsl?raw'` yields the file's text, as Vite and scripts/wgsl-loader.mjs do. */
const rawText = {
  name: 'raw-text',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({ path: resolve(args.resolveDir, args.path.replace(/\?raw$/, '')), namespace: 'raw-text' }));
    b.onLoad({ filter: /.*/, namespace: 'raw-text' }, async (args) => ({ contents: await readFile(args.path, 'utf8'), loader: 'text' }));
  },
};

// Only what this script writes is replaced: the folder may hold node, dawn.node and the like.
for (const f of ['whittle-bench.mjs', 'oneshot.sh', 'peers']) await rm(join(outDir, f), { recursive: true, force: true });
await mkdir(join(outDir, 'peers'), { recursive: true });
const bundle = join(outDir, 'whittle-bench.mjs');
await build({
  entryPoints: [join(root, 'bench', 'oneshot.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  plugins: [rawText],
  // Only reached when no dawn.node is found: then the repository's package is used.
  external: ['webgpu'],
  // Bundled CommonJS code calls require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __whittleCreateRequire } from 'node:module';\nconst require = __whittleCreateRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
for (const f of (await readdir(join(root, 'bench', 'peers'))).filter((n) => n.endsWith('.py'))) {
  await copyFile(join(root, 'bench', 'peers', f), join(outDir, 'peers', f));
}
await copyFile(join(root, 'bench', 'oneshot.sh'), join(outDir, 'oneshot.sh'));
await chmod(join(outDir, 'oneshot.sh'), 0o755);
console.log(`${bundle}: ${((await stat(bundle)).size / 1024).toFixed(0)} KiB`);
