import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { TextStream } from '../../src/cli/generate';
import { writeAdapterFolder } from '../../src/cli/model';
import { TextTokenizer } from '../../src/data/tokenizer';
import { nodeModelDir } from '../../src/formats/nodeByteSource';
import { exportPeftAdapter } from '../../src/formats/peft';
import { bytesSource, readSafetensorsHeader } from '../../src/formats/safetensors';
import { WebGpuUnavailableError } from '../../src/gpu';
import { loadCausalLM } from '../../src/model/load';
import { defaultLoraConfig, LoraAdapter } from '../../src/model/lora';
import type { MemoryEstimate } from '../../src/model/memoryEstimate';
import { getTestGpu } from '../helpers/gpu';
import { Rng } from '../helpers/random';
import { runCli } from './run';

const FIXTURES = join(__dirname, '..', 'fixtures');
const LLAMA = join(FIXTURES, 'models', 'tiny-llama');
const GPT2 = join(FIXTURES, 'models', 'tiny-gpt2');
const VALID = join(FIXTURES, 'data', 'chat_valid.jsonl');
const ERRORS = join(FIXTURES, 'data', 'chat_errors.jsonl');
const tmp = mkdtempSync(join(tmpdir(), 'whittle-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

describe('whittle info', () => {
  it('reports the architecture of tiny-llama as its config.json and weights say', async () => {
    const cfg = readJson(join(LLAMA, 'config.json'));
    const header = await readSafetensorsHeader(bytesSource(new Uint8Array(readFileSync(join(LLAMA, 'model.safetensors')))));
    const weightsInFile = [...header.tensors.values()].reduce((s, t) => s + t.elements, 0);

    const run = await runCli(['info', LLAMA, '--json', '--batch', '2', '--seq', '1000', '--rank', '8']);
    expect(run.code).toBe(0);
    const info = JSON.parse(run.stdout) as Record<string, unknown> & { job: Record<string, unknown>; estimate: MemoryEstimate };
    expect(info).toMatchObject({
      architecture: 'LlamaForCausalLM',
      modelType: 'llama',
      layers: cfg.num_hidden_layers,
      hidden: cfg.hidden_size,
      intermediate: cfg.intermediate_size,
      heads: cfg.num_attention_heads,
      kvHeads: cfg.num_key_value_heads,
      vocabSize: cfg.vocab_size,
      maxPositions: cfg.max_position_embeddings,
      parameters: weightsInFile,
      diskDtypes: { F32: header.tensors.size },
      torchDtype: 'float32',
      hasTokenizer: true,
      hasChatTemplate: true,
    });
    // --seq beyond the context is capped to it.
    expect(info.job).toMatchObject({ batch: 2, seq: 128, rank: 8, dtype: 'f16', seqCapped: true });
    const e = info.estimate;
    // LoRA parameters of rank 8 on all seven projections of both layers, by hand.
    const C = 48, I = 88, kv = 2 * 12;
    expect(e.loraParameters).toBe(2 * 8 * (C + C + (C + kv) * 2 + (C + C) + (C + I) * 2 + (I + C)));
    expect(e.residualBytes).toBe(3 * 2 * 128 * C * 4);
    expect(e.totalBytes).toBe(e.weightsBytes + e.loraBytes + e.residualBytes + e.layerScratchBytes + e.keptActivationsBytes + e.logitsBytes + e.optimizerScratchBytes + e.kernelParamsBytes);

    const text = await runCli(['info', LLAMA]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/layers\s+2\n/);
    expect(text.stdout).toMatch(/heads\s+4 \(kv heads 2, head dim 12\)/);
    expect(text.stdout).toMatch(/parameters\s+70,128/);
    expect(text.stdout).toMatch(/LoRA job memory estimate: batch 4 x seq 128 \(capped at the context\), rank 16, weights f16/);
  });

  it('--measure runs a training step whose peak is within 10% of the estimate', async () => {
    const run = await runCli(['info', GPT2, '--json', '--measure', '--batch', '2', '--seq', '40', '--rank', '4', '--dtype', 'f32']);
    expect(run.code).toBe(0);
    const info = JSON.parse(run.stdout) as { estimate: { totalBytes: number }; measured: { peakBytes: number; loss: number } };
    expect(Number.isFinite(info.measured.loss)).toBe(true);
    expect(info.measured.peakBytes / info.estimate.totalBytes).toBeGreaterThan(0.9);
    expect(info.measured.peakBytes / info.estimate.totalBytes).toBeLessThan(1.1);
  });
});

describe('whittle validate', () => {
  it('lists line-numbered errors and exits 1 on a bad file', async () => {
    const run = await runCli(['validate', ERRORS]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('line 2: not valid JSON');
    expect(run.stdout).toContain('line 8: messages[1].role "bot" is not one of');
    expect(run.stdout).toContain('NOT OK');
    const json = await runCli(['validate', ERRORS, '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { ok: boolean; errorCount: number; errors: { line: number }[] };
    expect(report.ok).toBe(false);
    expect(report.errors[0]!.line).toBe(2);
    expect(report.errorCount).toBeGreaterThanOrEqual(report.errors.length);
  });

  it('passes a good file, with token statistics from --model', async () => {
    const run = await runCli(['validate', VALID, '--model', LLAMA, '--max-seq-len', '90']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/12 valid examples/);
    expect(run.stdout).toMatch(/tokens per example: min \d+/);
    expect(run.stdout).toMatch(/longer than the max sequence length of 90 tokens/);
    expect(run.stdout).toMatch(/\nOK\n$/);
  });

  it('refuses fewer than 10 examples unless --allow-small, and says why a file is not OK once', async () => {
    const five = join(tmp, 'five.jsonl');
    writeFileSync(five, readFileSync(VALID, 'utf8').split('\n').slice(0, 5).join('\n') + '\n');
    const small = await runCli(['validate', five]);
    expect(small.code).toBe(1);
    expect(small.stdout).toMatch(/\nNOT OK: only 5 valid examples; at least 10 are needed, .* \(--allow-small to go ahead anyway\)\n$/);
    expect((await runCli(['validate', five, '--allow-small'])).code).toBe(0);
    const train = await runCli(['train', LLAMA, five, '--out', join(tmp, 'five-out')]);
    expect(train.code).toBe(1);
    expect(train.stderr).toMatch(/training file .*five\.jsonl has only 5 valid examples.*\(--allow-small to train anyway\)/);

    const empty = join(tmp, 'empty.jsonl');
    writeFileSync(empty, '\n\n');
    expect((await runCli(['validate', empty])).stdout).toMatch(/\nNOT OK: the file has no examples\n$/);

    const binary = join(tmp, 'weights.jsonl');
    writeFileSync(binary, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0x0a]), Buffer.alloc(4096, 0x0a), Buffer.alloc(4096, 7)]));
    const bin = await runCli(['validate', binary]);
    expect(bin.code).toBe(1);
    expect(bin.stdout).toMatch(/1 error on 1 line:\n {2}line 1: this does not look like a text JSONL file/);

    const array = join(tmp, 'array.json');
    writeFileSync(array, '[\n' + readFileSync(VALID, 'utf8').trim().split('\n').join(',\n') + '\n]\n');
    expect((await runCli(['validate', array])).stdout).toMatch(/1 error on 1 line:\n {2}line 1: this is a JSON array, not JSONL/);

    // A model folder whose chat template would loop 10^8 times: every chat line fails at the
    // template's step limit, named, and the command ends.
    const hostile = join(tmp, 'hostile-model');
    cpSync(LLAMA, hostile, { recursive: true });
    const config = readJson(join(hostile, 'tokenizer_config.json'));
    writeFileSync(join(hostile, 'tokenizer_config.json'), JSON.stringify({ ...config, chat_template: '{% for i in range(100000000) %}{{ i }}{% endfor %}' }));
    const looped = await runCli(['validate', VALID, '--model', hostile]);
    expect(looped.code).toBe(1);
    expect(looped.stdout).toMatch(/line 1: could not tokenize this example \(the chat template asked range\(\) for items past its limit of 1,000,000 steps\)/);

    // A sequence length past the model's context is refused, as train refuses it.
    const long = await runCli(['validate', VALID, '--model', LLAMA, '--max-seq-len', '100000']);
    expect(long.code).toBe(1);
    expect(long.stderr).toMatch(/--max-seq-len 100000 exceeds the model's context of \d+ positions/);
  });
});

describe('whittle eval', () => {
  it('--json prints exactly one object with a finite loss over the trained tokens', async () => {
    const run = await runCli(['eval', LLAMA, VALID, '--json', '--batch-size', '3']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
    const result = JSON.parse(run.stdout) as Record<string, number>;
    expect(Object.keys(result).sort()).toEqual(['loss', 'token_accuracy', 'tokens']);
    expect(Number.isFinite(result.loss)).toBe(true);
    expect(result.loss).toBeGreaterThan(0);
    expect(result.token_accuracy).toBeGreaterThanOrEqual(0);
    expect(result.token_accuracy).toBeLessThanOrEqual(1);
    // The tokens counted are the ones the validation report says are trained.
    const report = JSON.parse((await runCli(['validate', VALID, '--model', LLAMA, '--json'])).stdout) as { stats: { trainedTokens: number } };
    expect(result.tokens).toBe(report.stats.trainedTokens);
    // The batch size only changes how the work is cut.
    const other = JSON.parse((await runCli(['eval', LLAMA, VALID, '--json', '--batch-size', '5'])).stdout) as Record<string, number>;
    expect(other.tokens).toBe(result.tokens);
    expect(Math.abs(other.loss! - result.loss!)).toBeLessThan(1e-4 * result.loss!);
  });

  it('--kernels picks the kernel plan, says which ran, and refuses an unknown one', async () => {
    // 'cpu' opens a device of its own (the shared test device may run either plan).
    const run = await runCli(['eval', LLAMA, VALID, '--kernels', 'cpu']);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/kernels: cpu plan \(cpu adapter, rules\)\]/);
    const bad = await runCli(['eval', LLAMA, VALID, '--kernels', 'fast']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--kernels must be one of auto, cpu, gpu, got "fast"/);
    for (const command of ['train', 'eval', 'generate']) expect((await runCli([command, '--help'])).stdout).toMatch(/--kernels auto\|cpu\|gpu/);
  });

  it('refuses a data file with errors, naming the lines', async () => {
    const run = await runCli(['eval', LLAMA, ERRORS]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/data file .*chat_errors\.jsonl has \d+ errors:\n {2}line 2: not valid JSON/);
  });
});

describe('whittle generate', () => {
  it('streams text, deterministically when greedy, and stops at a stop string', async () => {
    const args = ['generate', LLAMA, '--prompt', 'Hello there', '--max-new-tokens', '12', '--dtype', 'f32'];
    const a = await runCli(args);
    expect(a.code).toBe(0);
    expect(a.stdout.endsWith('\n')).toBe(true);
    expect(a.stdout.length).toBeGreaterThan(1);
    expect(a.stderr).toMatch(/\[12 tokens in [\d.]+ s, [\d.]+ tokens\/s; prompt \d+ tokens .*finished: max tokens; kernels: (cpu|gpu) plan \([^)]*\)(; [^\]]*)?\]/);
    const b = await runCli(args);
    expect(b.stdout).toBe(a.stdout);

    const text = a.stdout.slice(0, -1);
    let k = 2;
    while (k < text.length - 2 && /\uFFFD/.test(text.slice(k, k + 2))) k++;
    const stop = text.slice(k, k + 2);
    const stopped = await runCli([...args, '--stop', stop]);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toBe(text.slice(0, text.indexOf(stop)) + '\n');
    expect(stopped.stderr).toMatch(/finished: stop string/);

    const chat = await runCli(['generate', LLAMA, '--chat', '--system', 'Be terse.', '--prompt', 'Hi', '--max-new-tokens', '5', '--temperature', '0.9', '--top-k', '20', '--seed', '4']);
    expect(chat.code).toBe(0);
    expect(chat.stderr).toMatch(/tokens\/s/);
  });

  it('applies a PEFT adapter from a folder', async () => {
    const gpu = await getTestGpu();
    const dir = await nodeModelDir(LLAMA);
    const { model, config } = await loadCausalLM(gpu, dir, { dtype: 'f32' });
    await dir.close();
    const adapter = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: 4 }));
    adapter.initialize(5);
    const rng = new Rng(6);
    for (const m of adapter.modules.values()) adapter.write(m.b, rng.f32(m.linear.outFeatures * m.r, -1, 1));
    const folder = join(tmp, 'random-adapter');
    await writeAdapterFolder(folder, await exportPeftAdapter(adapter, { baseModelNameOrPath: LLAMA }));
    adapter.destroy();
    model.destroy();

    const args = ['generate', LLAMA, '--prompt', 'Hello there', '--max-new-tokens', '10', '--dtype', 'f32'];
    const base = await runCli(args);
    const adapted = await runCli([...args, '--adapter', folder]);
    expect(adapted.code).toBe(0);
    expect(adapted.stdout).not.toBe(base.stdout);
    // The adapter belongs to tiny-llama, not GPT-2.
    const wrong = await runCli(['generate', GPT2, '--prompt', 'Hi', '--adapter', folder]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/PeftAdapterError: target_modules .* not in this gpt2 model/);
  });

  it('releases only final text: no split characters, no start of a stop string', () => {
    const dir = join(LLAMA);
    const tokenizer = TextTokenizer.fromJson(readJson(join(dir, 'tokenizer.json')), readJson(join(dir, 'tokenizer_config.json')));
    const ids = tokenizer.encode('héllo wor, then STOP and more');
    const stream = new TextStream(tokenizer, ['STOP']);
    let out = '';
    for (const id of ids) {
      const piece = stream.push(id);
      expect(piece).not.toMatch(/\uFFFD/);
      out += piece;
      if (stream.stopped) break;
    }
    expect(out).toBe('héllo wor, then ');
    expect(stream.flush()).toBe('');
    const plain = new TextStream(tokenizer, []);
    expect(ids.map((id) => plain.push(id)).join('') + plain.flush()).toBe('héllo wor, then STOP and more');
  });
});

describe('command line handling', () => {
  it('explains bad input with exit code 1 and prints help with 0', async () => {
    const unknown = await runCli(['fly']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown command "fly"/);
    const missing = await runCli(['eval', LLAMA]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/missing <file\.jsonl>/);
    const badNumber = await runCli(['info', LLAMA, '--batch', '0']);
    expect(badNumber.code).toBe(1);
    expect(badNumber.stderr).toMatch(/--batch must be an integer >= 1, got "0"/);
    const badFlag = await runCli(['info', LLAMA, '--nope']);
    expect(badFlag.code).toBe(1);
    expect(badFlag.stderr).toMatch(/Unknown option '--nope'/);
    const noDir = await runCli(['info', join(tmp, 'absent')]);
    expect(noDir.code).toBe(1);
    expect(noDir.stderr).toMatch(/model folder .*absent does not exist/);
    const noPrompt = await runCli(['generate', LLAMA]);
    expect(noPrompt.code).toBe(1);
    expect(noPrompt.stderr).toMatch(/--prompt is required/);
    // A negative number is a value out of range, not an ambiguous flag.
    const negative = await runCli(['train', LLAMA, VALID, '--out', join(tmp, 'never'), '--epochs', '-1']);
    expect(negative.code).toBe(1);
    expect(negative.stderr).toMatch(/--epochs must be an integer >= 1, got "-1"/);
    const badTarget = await runCli(['info', LLAMA, '--target-modules', 'q_proj,c_attn']);
    expect(badTarget.code).toBe(1);
    expect(badTarget.stderr).toMatch(/c_attn not in this llama model/);

    const help = await runCli(['train', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: whittle train <modelDir> <train\.jsonl> \[options\]/);
    for (const f of ['--out DIR', '--validation FILE', '--epochs N|auto', '--learning-rate', '--lora-r', '--init-adapter DIR', '--max-grad-norm']) expect(help.stdout).toContain(f);
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    for (const c of ['info', 'validate', 'generate', 'eval', 'train']) expect(top.stdout).toMatch(new RegExp(`\\n  ${c} `));
  });

  it('says how to get WebGPU when there is none', async () => {
    const run = await runCli(['eval', LLAMA, VALID], { acquireGpu: () => Promise.reject(new WebGpuUnavailableError('no adapter found')) });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/no WebGPU: no adapter found/);
    expect(run.stderr).toMatch(/Vulkan/);
    expect(run.stderr).toMatch(/lavapipe/);
  });
});

describe('flag aliases', () => {
  it('accepts the jobs spec spellings (--lora-rank, --warmup-steps, --lr-scheduler, --max-seq-length, --validation-file)', async () => {
    const { resolveAliases } = await import('../../src/cli/args');
    const { trainSpec } = await import('../../src/cli/train');
    expect(
      resolveAliases(trainSpec, ['m', 'f', '--lora-rank', '4', '--warmup-steps=2', '--lr-scheduler', 'cosine', '--max-seq-length', '64', '--validation-file', 'v.jsonl', '--seed', '1']),
    ).toEqual(['m', 'f', '--lora-r', '4', '--warmup=2', '--schedule', 'cosine', '--max-seq-len', '64', '--validation', 'v.jsonl', '--seed', '1']);
    // Only where the command has the target flag: eval has no --lora-r.
    const { evalSpec } = await import('../../src/cli/eval');
    expect(resolveAliases(evalSpec, ['--lora-rank', '4'])).toEqual(['--lora-rank', '4']);
  });
});

describe('progress bar', () => {
  it('draws the share done', async () => {
    const { progressBar } = await import('../../src/cli/io');
    expect(progressBar(0, 4, 'x', 8)).toBe('[........]   0%  x');
    expect(progressBar(1, 4, 'step 1/4', 8)).toBe('[##......]  25%  step 1/4');
    expect(progressBar(4, 4, 'done', 8)).toBe('[########] 100%  done');
  });
});
