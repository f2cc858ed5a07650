// whittle: the headless CLI over the same engine as the browser app (Node + Dawn WebGPU).
//   npm run cli -- <command> [args]     (commands: info, validate, generate, eval, train, try, export)
// `main(argv, io)` runs one command in-process and resolves to its exit code (0 ok, 1 bad input
// or failure), so tests call it directly with captured output and a shared GPU.

import { pathToFileURL } from 'node:url';

import { acquireGpu, WebGpuUnavailableError, type Gpu, type KernelChoice } from '../gpu';
import { parseCommand, type CommandSpec, type ParsedCommand } from './args';
import { runEval, evalSpec } from './eval';
import { exportSpec, runExport } from './export';
import { generateSpec, runGenerate } from './generate';
import { infoSpec, runInfo } from './info';
import { CliError, nodeIo, type CliContext, type CliIo } from './io';
import { runTrain, trainSpec } from './train';
import { runTry, trySpec } from './try';
import { runValidate, validateSpec } from './validate';

/** A command's options and its run, which gets them parsed (--help is answered here, from the spec). */
const COMMANDS: Record<string, { spec: CommandSpec; run: (ctx: CliContext, args: ParsedCommand) => Promise<number> }> = {
  info: { spec: infoSpec, run: runInfo },
  validate: { spec: validateSpec, run: runValidate },
  generate: { spec: generateSpec, run: runGenerate },
  eval: { spec: evalSpec, run: runEval },
  train: { spec: trainSpec, run: runTrain },
  try: { spec: trySpec, run: runTry },
  export: { spec: exportSpec, run: runExport },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length)) + 2;
  return [
    'usage: whittle <command> [args] [options]',
    '',
    'Fine-tune language models with LoRA on WebGPU (Node: Dawn; without a GPU: Mesa lavapipe).',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.spec.summary}`),
    '',
    'whittle <command> --help shows the options of a command.',
    '',
  ].join('\n');
}

const NO_GPU_HELP =
  'Whittle needs WebGPU. In Node it uses Dawn (the "webgpu" npm package) over Vulkan: install a Vulkan ' +
  'driver for your GPU, or on a machine without one Mesa lavapipe (Debian/Ubuntu: apt install mesa-vulkan-drivers).';

export async function main(argv: readonly string[], io: CliIo = nodeIo()): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.stdout(usage());
    return command === undefined ? 1 : 0;
  }
  const entry = Object.prototype.hasOwnProperty.call(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!entry) {
    io.stderr(`whittle: unknown command ${JSON.stringify(command)}\n\n${usage()}`);
    return 1;
  }

  // An object, so TypeScript sees the assignments made inside ctx.gpu().
  const device: { owned: Promise<Gpu> | null; given: Promise<Gpu> | null } = { owned: null, given: null };
  let kernels: KernelChoice = 'auto';
  const ctx: CliContext = {
    io,
    gpu() {
      if (io.acquireGpu && kernels === 'auto') return (device.given ??= io.acquireGpu());
      return (device.owned ??= acquireGpu({ kernels }));
    },
    useKernels(choice) {
      if (device.owned || device.given) throw new Error('the kernel plan must be chosen before the GPU is opened');
      kernels = choice;
    },
    print: (line = '') => io.stdout(line + '\n'),
    note: (line = '') => io.stderr(line + '\n'),
  };
  try {
    const args = parseCommand(entry.spec, rest, io.stdout);
    return args ? await entry.run(ctx, args) : 0;
  } catch (e) {
    if (e instanceof WebGpuUnavailableError) {
      io.stderr(`whittle ${command}: no WebGPU: ${e.message}\n${NO_GPU_HELP}\n`);
    } else if (e instanceof CliError) {
      io.stderr(`whittle ${command}: ${e.message}\n`);
    } else {
      const err = e instanceof Error ? e : new Error(String(e));
      io.stderr(`whittle ${command}: ${err.name !== 'Error' ? `${err.name}: ` : ''}${err.message}\n`);
      if (process.env.WHITTLE_DEBUG) io.stderr(`${err.stack}\n`);
    }
    return 1;
  } finally {
    if (device.owned) {
      const gpu = await device.owned.catch(() => null);
      gpu?.destroy();
    }
  }
}

const invokedPath = process.argv[1];
if (invokedPath !== undefined && import.meta.url === pathToFileURL(invokedPath).href) {
  // First Ctrl-C: stop gracefully (train saves a checkpoint); a second one kills.
  const interrupt = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('\nstopping after the current step (Ctrl-C again to kill)\n');
    interrupt.abort('interrupted');
    process.once('SIGINT', () => process.exit(130));
  });
  const code = await main(process.argv.slice(2), { ...nodeIo(), signal: interrupt.signal });
  // Dawn can keep the event loop alive after the device is gone; the work is done.
  process.exit(code);
}
