/**
 * Entry of the one-file benchmark bundle (`npm run bench:bundle` -> dist/bench/whittle-bench.mjs),
 * which runs with a plain `node` and Dawn's native module, without node_modules or a network:
 *
 *   node whittle-bench.mjs [--dawn PATH] <suite...> [flags]   the `npm run bench` suites and flags
 *   node whittle-bench.mjs peer-cases [flags]                  input of bench/peers/peft_peer.py
 *   node whittle-bench.mjs report DIR [PEER.json]              DIR's suite results + the peer: one table, one JSON
 *
 * Dawn's module: --dawn PATH, else WHITTLE_DAWN_NODE, else dawn.node beside the bundle, else the
 * `webgpu` package (when run from the repository). bench/oneshot.sh runs all of it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { DAWN_NODE_FLAGS, provideNodeWebGpu } from '../src/gpu';
import { oneShotReport, peftPeerCases, type PeftPeerOutput } from './report';

/**
 * Dawn's flags for benchmarking: the engine's own (shader-f16 on NVIDIA), allow_unsafe_apis (the
 * features Dawn still guards) and no timestamp quantization, which would round the timestamp
 * queries that time each kernel. WHITTLE_DAWN_FLAGS (space-separated) replaces them.
 */
const BENCH_DAWN_FLAGS = [
  `${DAWN_NODE_FLAGS.find((f) => f.startsWith('enable-dawn-features='))!},allow_unsafe_apis`,
  'disable-dawn-features=timestamp_quantization',
];

function takeFlag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  argv.splice(i, 2);
  return v;
}

/** Loads dawn.node by path (when one is found) and makes it the engine's WebGPU. */
function loadDawn(argv: string[]): void {
  const asked = takeFlag(argv, '--dawn') ?? process.env.WHITTLE_DAWN_NODE;
  const beside = join(dirname(fileURLToPath(import.meta.url)), 'dawn.node');
  const path = asked ? resolve(asked) : existsSync(beside) ? beside : null;
  if (!path) {
    process.stderr.write(`no dawn.node at ${beside} (nor --dawn / WHITTLE_DAWN_NODE): using the webgpu package\n`);
    return;
  }
  if (!existsSync(path)) throw new Error(`Dawn's module not found at ${path}`);
  const flags = process.env.WHITTLE_DAWN_FLAGS?.split(/\s+/).filter(Boolean) ?? BENCH_DAWN_FLAGS;
  const dawn = createRequire(import.meta.url)(path) as { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  process.stderr.write(`dawn: ${path} [${flags.join(' ')}]\n`);
  provideNodeWebGpu(dawn.create(flags), dawn.globals);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const command = argv[0];
  if (command === 'peer-cases') {
    process.stdout.write(`${JSON.stringify(peftPeerCases(argv.slice(1)))}\n`);
    return;
  }
  if (command === 'report') {
    const [dir, peerFile, ...rest] = argv.slice(1);
    if (!dir || rest.length) throw new Error('usage: report DIR [PEER.json]');
    let peer: PeftPeerOutput | null = null;
    if (peerFile && existsSync(peerFile)) peer = JSON.parse(readFileSync(peerFile, 'utf8')) as PeftPeerOutput;
    else if (peerFile) process.stderr.write(`report: no peer results at ${peerFile}; our rows only\n`);
    const { table, document } = oneShotReport(dir, peer);
    const file = join(dir, 'oneshot.json');
    writeFileSync(file, `${JSON.stringify(document, null, 1)}\n`);
    process.stdout.write(`${JSON.stringify(document)}\n\n## Whittle one-shot benchmark (JSON above, also in ${file})\n\n${table}\n`);
    return;
  }
  loadDawn(argv);
  // bench/run.ts reads its flags from process.argv and runs on import.
  process.argv = [process.argv[0]!, process.argv[1]!, ...argv];
  await import('./run');
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
