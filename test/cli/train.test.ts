import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { LOCK_FILE } from '../../src/cli/outFolder';
import { nodeModelDir } from '../../src/formats/nodeByteSource';
import { importPeftAdapter } from '../../src/formats/peft';
import { loadCausalLM } from '../../src/model/load';
import { parseResultsCsv } from '../../src/train/metrics';
import { nodeWriteFs, type WriteFs } from '../../src/util/atomicWrite';
import { getTestGpu } from '../helpers/gpu';
import { runCli } from './run';

const LLAMA = join(__dirname, '..', 'fixtures', 'models', 'tiny-llama');
const tmp = mkdtempSync(join(tmpdir(), 'whittle-train-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** 12 short conversations with one pattern to learn. */
function writeData(): string {
  const lines: string[] = [];
  for (let i = 0; i < 12; i++) {
    const a = (i * 5 + 2) % 10;
    const b = (i * 3 + 1) % 10;
    lines.push(
      JSON.stringify({
        messages: [
          { role: 'system', content: 'Add.' },
          { role: 'user', content: `${a}+${b}` },
          { role: 'assistant', content: `sum ${a + b}` },
        ],
      }),
    );
  }
  const path = join(tmp, 'train.jsonl');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

const evalLoss = async (data: string, adapter?: string) => {
  const run = await runCli(['eval', LLAMA, data, '--json', ...(adapter ? ['--adapter', adapter] : [])]);
  expect(run.code, run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as { loss: number }).loss;
};

describe('whittle train', () => {
  it('lowers the loss, writes a PEFT adapter and metrics, continues from --init-adapter, resumes', async () => {
    const data = writeData();
    const out = join(tmp, 'run1');
    const common = ['--batch-size', '4', '--lora-r', '4', '--lora-dropout', '0', '--warmup', '0', '--max-grad-norm', '1'];
    const run = await runCli(['train', LLAMA, data, '--out', out, '--validation', data, '--eval-every', '3', '--epochs', '3', '--learning-rate', '1e-2', '--seed', '3', ...common]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/step 9\/9 +epoch 3 +loss [\d.]+ +acc [\d.]+ +valid [\d.]+/);
    expect(run.stdout).toMatch(/adapter written to/);

    for (const f of ['adapter_model.safetensors', 'adapter_config.json', 'metrics.csv', 'job.json']) expect(existsSync(join(out, f)), f).toBe(true);
    const csv = readFileSync(join(out, 'metrics.csv'), 'utf8');
    expect(csv.split('\n')[0]).toMatch(/^step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy,learning_rate,grad_norm,tokens_per_second/);
    const rows = parseResultsCsv(csv);
    expect(rows.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const r of rows) {
      expect(Number.isFinite(r.train_loss)).toBe(true);
      expect(r.tokens_per_second).toBeGreaterThan(0);
    }
    expect(rows[0]!.learning_rate).toBe(1e-2);
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, bias: 'none' });
    const job = JSON.parse(readFileSync(join(out, 'job.json'), 'utf8')) as { hyperparameters: { seed: number; epochs: number } };
    expect(job.hyperparameters).toMatchObject({ seed: 3, epochs: 3 });

    // The loss on the training data, base model vs trained adapter.
    const base = await evalLoss(data);
    const trained = await evalLoss(data, out);
    expect(trained).toBeLessThan(base - 0.5);

    // The folder is a PEFT adapter importPeftAdapter loads.
    const gpu = await getTestGpu();
    const dir = await nodeModelDir(LLAMA);
    const { model } = await loadCausalLM(gpu, dir, { dtype: 'f32' });
    await dir.close();
    const adapterDir = await nodeModelDir(out);
    const adapter = await importPeftAdapter(gpu, model, adapterDir);
    await adapterDir.close();
    expect(adapter.config).toMatchObject({ r: 4, alpha: 8, dropout: 0 });
    expect(adapter.modules.size).toBe(2 * 7);
    adapter.destroy();
    model.destroy();

    // --init-adapter starts where run 1 ended: its first loss is far below run 1's first loss.
    const out2 = join(tmp, 'run2');
    const cont = await runCli(['train', LLAMA, data, '--out', out2, '--init-adapter', out, '--epochs', '1', '--learning-rate', '1e-3', '--seed', '4', ...common]);
    expect(cont.code, cont.stderr).toBe(0);
    const rows2 = parseResultsCsv(readFileSync(join(out2, 'metrics.csv'), 'utf8'));
    expect(rows2).toHaveLength(3);
    expect(rows2[0]!.train_loss!).toBeLessThan(rows[0]!.train_loss! - 0.5);
    const clash = await runCli(['train', LLAMA, data, '--out', join(tmp, 'clash'), '--init-adapter', out, '--lora-r', '8']);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(/--lora-r 8 differs from the --init-adapter's 4/);

    // Stopped after step 2 (as Ctrl-C would), then resumed to the end.
    const out3 = join(tmp, 'run3');
    const stop = new AbortController();
    const args3 = ['train', LLAMA, data, '--out', out3, '--validation', data, '--epochs', '1', '--learning-rate', '1e-2', '--seed', '5', ...common];
    const stopped = await runCli(args3, { signal: stop.signal, onStdout: (t) => void (/^step 2\/3/m.test(t) && stop.abort()) });
    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toMatch(/stopped: 2\/3 steps/);
    // The printed command carries every flag the job needs, --validation included.
    expect(stopped.stdout).toContain(`continue with: whittle train ${LLAMA} ${data} --out ${out3} --resume --validation ${data}`);
    expect(parseResultsCsv(readFileSync(join(out3, 'metrics.csv'), 'utf8')).map((r) => r.step)).toEqual([1, 2]);
    expect(existsSync(join(out3, 'adapter_model.safetensors'))).toBe(true);
    const resumed = await runCli([...args3, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/Resuming from step 2\/3/);
    expect(parseResultsCsv(readFileSync(join(out3, 'metrics.csv'), 'utf8')).map((r) => r.step)).toEqual([1, 2, 3]);
  });

  it('a full disk at the checkpoint: the error names the file and bytes, the steps so far are saved, no temporary file is left', async () => {
    const data = writeData();
    const out = join(tmp, 'full-disk');
    const noRoomForCheckpoints: WriteFs = {
      ...nodeWriteFs,
      writeFile: (path, bytes) =>
        path.includes(`${sep}checkpoints${sep}`) ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })) : nodeWriteFs.writeFile(path, bytes),
    };
    const run = await runCli(['train', LLAMA, data, '--out', out, '--epochs', '1', '--batch-size', '6', '--lora-r', '2', '--seed', '1'], { writeFs: noRoomForCheckpoints });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/no space left on the device for .*checkpoints.*\.safetensors: it needs [\d.]+ KiB \(\d+ bytes\)/);
    expect(run.stderr).toMatch(new RegExp(`the adapter after step 2 and its metrics were saved to ${out.replace(/[./]/g, '\\$&')}`));
    expect(parseResultsCsv(readFileSync(join(out, 'metrics.csv'), 'utf8')).map((r) => r.step)).toEqual([1, 2]);
    expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(true);
    const everything = readdirSync(out, { recursive: true }) as string[];
    expect(everything.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
  });

  it('--checkpoint-every N saves a checkpoint every N steps as well as at the epoch end, the last three kept; a resume keeps the cadence', async () => {
    const data = writeData();
    const out = join(tmp, 'every');
    // 12 examples, batch 2: 6 steps in one epoch; stopped after step 3 (as Ctrl-C would).
    const args = ['train', LLAMA, data, '--out', out, '--epochs', '1', '--batch-size', '2', '--lora-r', '2', '--seed', '1'];
    const stop = new AbortController();
    const stopped = await runCli([...args, '--checkpoint-every', '2'], { signal: stop.signal, onStdout: (t) => void (/^step 3\/6/m.test(t) && stop.abort()) });
    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toContain('Checkpoint saved at step 2');
    expect(stopped.stdout).toContain(`continue with: whittle train ${LLAMA} ${data} --out ${out} --resume --checkpoint-every 2`);
    const job = JSON.parse(readFileSync(join(out, 'job.json'), 'utf8')) as { jobId: string; checkpointEvery: number | null };
    expect(job.checkpointEvery).toBe(2);

    // Resumed without the flag: job.json's cadence goes on.
    const resumed = await runCli([...args, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain('Checkpoint saved at step 4');
    expect(resumed.stdout).toMatch(/Checkpoint saved at epoch 1 \(step 6\)/);
    const names = readdirSync(join(out, 'checkpoints', job.jobId)).filter((f) => f.endsWith('.safetensors'));
    expect(names.sort()).toEqual(['step-00000003.safetensors', 'step-00000004.safetensors', 'step-00000006-epoch-1.safetensors']);

    const bad = await runCli(['train', LLAMA, data, '--out', join(tmp, 'every0'), '--checkpoint-every', '0']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--checkpoint-every must be an integer >= 1, got "0"/);
  });

  it('guards --out: one job per folder, one writer at a time, the same data on resume', async () => {
    const data = writeData();
    const out = join(tmp, 'guarded');
    const args = ['train', LLAMA, data, '--out', out, '--epochs', '1', '--batch-size', '6', '--lora-r', '2', '--seed', '1', '--validation', data];
    const first = await runCli(args);
    expect(first.code, first.stderr).toBe(0);
    const job = JSON.parse(readFileSync(join(out, 'job.json'), 'utf8')) as { jobId: string; trainFile: { sha256: string; bytes: number } };
    expect(job.trainFile).toEqual({ bytes: readFileSync(data).length, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown });

    // A second job into the same folder is refused; --overwrite replaces the first one.
    const again = await runCli(args);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already holds a training job \(job\.json, metrics\.csv, adapter_model\.safetensors, adapter_config\.json, checkpoints\).*--resume.*--overwrite/);
    const replaced = await runCli([...args, '--overwrite']);
    expect(replaced.code, replaced.stderr).toBe(0);
    const jobId = (JSON.parse(readFileSync(join(out, 'job.json'), 'utf8')) as { jobId: string }).jobId;
    expect(jobId).not.toBe(job.jobId);
    // Only the new job's checkpoints are left.
    expect(readdirSync(join(out, 'checkpoints'))).toEqual([jobId]);

    // Resuming with another file of the same size and example count is refused, naming it.
    const other = join(tmp, 'other.jsonl');
    writeFileSync(other, readFileSync(data, 'utf8').replace(/Add\./g, 'Sum.'));
    const swapped = await runCli(['train', LLAMA, other, ...args.slice(3), '--resume']);
    expect(swapped.code).toBe(1);
    expect(swapped.stderr).toMatch(new RegExp(`training file ${other.replace(/[.\\/]/g, '\\$&')} is not the file the job was trained on`));
    const noValidation = await runCli([...args.slice(0, -2), '--resume']);
    expect(noValidation.stderr).toMatch(/the job was trained with a validation file .*give it again/);

    // A live writer's lock refuses a second one; the lock is gone after each run.
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
    writeFileSync(join(out, LOCK_FILE), JSON.stringify({ pid: process.pid, host: hostname(), started: 'earlier' }));
    const locked = await runCli([...args, '--resume']);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(new RegExp(`is in use: another whittle train \\(process ${process.pid}, started earlier\\)`));
    rmSync(join(out, LOCK_FILE));
  });
});

describe('examples that lose every trained token to truncation', () => {
  /** 12 conversations, every third with a question far past the model's 128 positions. */
  function writeLong(): string {
    const lines = Array.from({ length: 12 }, (_, i) => {
      const question = i % 3 === 0 ? Array.from({ length: 200 }, (_, k) => `w${k % 10}`).join(' ') : `${i}+1`;
      return JSON.stringify({ messages: [{ role: 'user', content: question }, { role: 'assistant', content: `sum ${i + 1}` }] });
    });
    const path = join(tmp, 'long.jsonl');
    writeFileSync(path, lines.join('\n') + '\n');
    return path;
  }

  it('validate warns without being asked; train refuses over a quarter of them unless --allow-untrained', async () => {
    const data = writeLong();
    const check = await runCli(['validate', data, '--model', LLAMA]);
    expect(check.stdout).toMatch(/4 examples are longer than the max sequence length of 128 tokens/);
    expect(check.stdout).toMatch(/4 examples lose every trained token to truncation/);
    expect(check.stdout).toMatch(/4 of 12 examples train nothing at 128 tokens: whittle train refuses this file unless --allow-untrained/);

    const args = ['train', LLAMA, data, '--epochs', '1', '--batch-size', '4', '--seed', '1'];
    const refused = await runCli([...args, '--out', join(tmp, 'long1')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/4 of 12 training examples \(over 25%\) lose every trained token at 128 tokens \(the model's context is 128\): shorten them, or pass --allow-untrained/);
    expect(existsSync(join(tmp, 'long1', 'job.json'))).toBe(false);

    const allowed = await runCli([...args, '--out', join(tmp, 'long2'), '--allow-untrained']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stderr).toMatch(/4 training examples have no trained token within 128 tokens and are skipped/);
    expect(parseResultsCsv(readFileSync(join(tmp, 'long2', 'metrics.csv'), 'utf8')).map((r) => r.step)).toEqual([1, 2]);
  });
});
