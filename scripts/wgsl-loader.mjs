// Node module hook: `import text from './x.wgsl?raw'` (shaders) or `'./x.py?raw'` (the cluster
// handoff's TRL script) yields the file's text, as Vite does in the app and in vitest.
// Registered by scripts/register-wgsl.mjs (`node --import ./scripts/register-wgsl.mjs ...`).
import { readFile } from 'node:fs/promises';

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && /\.(wgsl|py)\?raw$/.test(url)) {
    const path = new URL(url.replace(/\?raw$/, ''));
    const text = await readFile(path, 'utf8');
    return { format: 'module', source: `export default ${JSON.stringify(text)};`, shortCircuit: true };
  }
  return nextLoad(url, context);
}
