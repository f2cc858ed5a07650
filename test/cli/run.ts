// Runs the CLI in-process on the shared test GPU, capturing its output.
import { main } from '../../src/cli/main';
import type { CliIo } from '../../src/cli/io';
import { getTestGpu } from '../helpers/gpu';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(argv: string[], overrides: Partial<CliIo> & { onStdout?: (text: string) => void } = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const { onStdout, ...io } = overrides;
  const code = await main(argv, {
    stdout: (t) => {
      stdout += t;
      onStdout?.(t);
    },
    stderr: (t) => void (stderr += t),
    acquireGpu: getTestGpu,
    ...io,
  });
  return { code, stdout, stderr };
}
