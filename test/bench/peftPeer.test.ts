// bench/peers/peft_peer.py's argument handling and its refusal to run without its libraries
// (the machines that have transformers + peft are the GPU ones; here it must fail clearly).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const script = join(__dirname, '..', '..', 'bench', 'peers', 'peft_peer.py');
const python = process.env.WHITTLE_PYTHON ?? '/usr/bin/python3';

/** Runs the script with `hidden` modules made unimportable (sys.modules[name] = None). */
function peer(args: string[], hidden: string[] = []) {
  const code = `import runpy, sys\nfor m in ${JSON.stringify(hidden)}: sys.modules[m] = None\nsys.argv = ['peft_peer.py'] + ${JSON.stringify(args)}\nrunpy.run_path(${JSON.stringify(script)}, run_name='__main__')`;
  return spawnSync(python, ['-c', code], { encoding: 'utf8', input: '{"train": [], "generate": []}', timeout: 60_000 });
}

describe('bench/peers/peft_peer.py', () => {
  it('rejects unknown dtypes and suites before importing anything', () => {
    const dtype = peer(['--dtypes', 'float32,float64']);
    expect(dtype.status).toBe(2);
    expect(dtype.stderr).toMatch(/--dtypes: unknown dtype 'float64'/);
    const suite = peer(['--suites', 'train,memory']);
    expect(suite.status).toBe(2);
    expect(suite.stderr).toMatch(/--suites: train or generate, got 'memory'/);
  });

  it('says which libraries are missing and exits 2 without output', () => {
    const r = peer([], ['torch', 'transformers', 'peft']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/peft_peer: cannot run, missing Python packages: torch .*transformers .*peft /);
    expect(r.stderr).toMatch(/pip install torch transformers peft/);
  });
});
