// The house rules on imports, checked on every import and export-from line under src/: the
// engine never imports the app (UI, workers, jobs, playground, CLI) or React; dataset code and
// file formats reach neither the GPU runtime nor the kernels; the UI reaches the engine's values
// only through the worker protocols (types, being erased, may come from anywhere).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface ImportLine {
  file: string;
  /** Repository path of a relative import (no extension), or the package name. */
  target: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return /\.(ts|tsx)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

const repoPath = (abs: string) => relative(ROOT, abs).split(sep).join('/');

/** Static imports, export-from and dynamic import() of a file's text. */
function importsOf(file: string, text: string): ImportLine[] {
  const out: ImportLine[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    const target = spec.startsWith('.') ? repoPath(resolve(ROOT, dirname(file), spec.replace(/\?raw$/, ''))) : spec;
    out.push({ file, target, typeOnly });
  };
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'([^']+)'/gm)) add(m[3]!, m[2] !== undefined);
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) add(m[1]!, false);
  return out;
}

const ALL = sourceFiles(join(ROOT, 'src')).flatMap((abs) => importsOf(repoPath(abs), readFileSync(abs, 'utf8')));

const inDir = (path: string, dirs: readonly string[]) => dirs.some((d) => path === d || path.startsWith(`${d}/`));

/** `file -> target` for every import from `from` into `to` (values only when `valuesOnly`). */
function crossings(from: readonly string[], to: (target: string) => boolean, valuesOnly = false): string[] {
  return ALL.filter((i) => inDir(i.file, from) && to(i.target) && !(valuesOnly && i.typeOnly)).map((i) => `${i.file} -> ${i.target}`);
}

const ENGINE = ['src/gpu', 'src/kernels', 'src/model', 'src/train', 'src/formats', 'src/data', 'src/util'];
const APP = ['src/ui', 'src/worker', 'src/jobs', 'src/generation', 'src/cli', 'src/offline'];
const isReact = (t: string) => t === 'react' || t.startsWith('react/') || t.startsWith('react-dom');

describe('imports across the layers', () => {
  it('reads the import lines it checks (multi-line, type-only, export-from, dynamic, ?raw)', () => {
    const text = "import {\n  a,\n  b,\n} from '../gpu';\nimport type { C } from './c';\nexport { d } from '../util/f16';\nimport code from '../../shaders/x.wgsl?raw';\nconst m = import('./ortWeb');\n";
    expect(importsOf('src/formats/x.ts', text)).toEqual([
      { file: 'src/formats/x.ts', target: 'src/gpu', typeOnly: false },
      { file: 'src/formats/x.ts', target: 'src/formats/c', typeOnly: true },
      { file: 'src/formats/x.ts', target: 'src/util/f16', typeOnly: false },
      { file: 'src/formats/x.ts', target: 'shaders/x.wgsl', typeOnly: false },
      { file: 'src/formats/x.ts', target: 'src/formats/ortWeb', typeOnly: false },
    ]);
    expect(ALL.length).toBeGreaterThan(500);
  });

  it('the engine imports nothing of the app and no React', () => {
    expect(crossings(ENGINE, (t) => inDir(t, APP) || isReact(t))).toEqual([]);
  });

  it('dataset code and file formats import neither the GPU runtime nor the kernels (plain-TypeScript references aside)', () => {
    const gpuSide = (t: string) => inDir(t, ['src/gpu', 'shaders']) || (inDir(t, ['src/kernels']) && !inDir(t, ['src/kernels/reference']));
    // peft.ts also loads an adapter onto a model on the GPU; it names the device's type only.
    expect(crossings(['src/data', 'src/formats'], gpuSide, true)).toEqual([]);
    expect(crossings(['src/data'], (t) => inDir(t, ['src/model', 'src/train', 'src/formats']), true)).toEqual([]);
  });

  it('src/util imports nothing of src/; src/gpu only src/util; src/kernels only src/gpu, src/util and shaders', () => {
    expect(crossings(['src/util'], (t) => t.startsWith('src/') && !inDir(t, ['src/util']))).toEqual([]);
    expect(crossings(['src/gpu'], (t) => t.startsWith('src/') && !inDir(t, ['src/gpu', 'src/util']))).toEqual([]);
    expect(crossings(['src/kernels'], (t) => (t.startsWith('src/') || t.startsWith('bench/')) && !inDir(t, ['src/kernels', 'src/gpu', 'src/util']))).toEqual([]);
  });

  it('the UI takes no engine values but through the worker protocols, and no WGSL', () => {
    const engineValues = (t: string) => inDir(t, ['src/gpu', 'src/kernels', 'src/model', 'src/selftest', 'src/bench', 'shaders', 'bench']);
    expect(crossings(['src/ui'], engineValues, true)).toEqual([]);
    expect(crossings(['src/ui'], (t) => inDir(t, ['src/cli']))).toEqual([]);
  });
});
