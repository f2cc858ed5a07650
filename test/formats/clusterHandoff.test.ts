import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AXOLOTL_SCHEMA, validateAxolotlConfig } from '../../src/formats/axolotlSchema';
import { ClusterHandoffError, exportClusterConfig, promptCompletionToMessages, trlSettings, type ClusterJob } from '../../src/formats/clusterHandoff';
import { resolveHyperparameters, type HyperparameterRequest } from '../../src/train/hyperparameters';

function job(request: HyperparameterRequest = {}, extra: Partial<ClusterJob> = {}): ClusterJob {
  const hyperparameters = resolveHyperparameters({ seed: 1234, ...request }, 500, { model: { family: 'llama', maxPositions: 2048 }, longestExample: 300 });
  return { baseModel: 'HuggingFaceTB/SmolLM2-135M-Instruct', trainFileName: 'train.jsonl', validationFileName: 'valid.jsonl', hyperparameters, jobName: 'support-bot', ...extra };
}

const config = (j: ClusterJob) => parse(exportClusterConfig(j).axolotlYaml) as Record<string, unknown>;

describe('Axolotl config', () => {
  it('carries the job settings, passes the schema, and trains on assistant turns of OpenAI messages', () => {
    const j = job({ epochs: 2, batchSize: 4, gradientAccumulation: 2, learningRate: 1e-4, schedule: 'cosine', warmupSteps: 5, loraR: 16, loraAlpha: 32, loraDropout: 0.1, maxGradNorm: 0.5, weightDecay: 0.01 });
    const c = config(j);
    expect(validateAxolotlConfig(c)).toEqual([]);
    expect(c).toMatchObject({
      base_model: 'HuggingFaceTB/SmolLM2-135M-Instruct',
      adapter: 'lora',
      lora_r: 16,
      lora_alpha: 32,
      lora_dropout: 0.1,
      lora_target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      sequence_len: 300,
      micro_batch_size: 4,
      gradient_accumulation_steps: 2,
      num_epochs: 2,
      learning_rate: 1e-4,
      lr_scheduler: 'cosine',
      warmup_steps: 5,
      weight_decay: 0.01,
      max_grad_norm: 0.5,
      adam_beta1: 0.9,
      adam_beta2: 0.999,
      adam_epsilon: 1e-8,
      seed: 1234,
      train_on_inputs: false,
      chat_template: 'tokenizer_default',
      eval_steps: j.hyperparameters.evalEvery,
      output_dir: './whittle-lora-out',
    });
    expect(c.warmup_ratio).toBeUndefined();
    expect(c.val_set_size).toBeUndefined();
    const ds = (c.datasets as Record<string, unknown>[])[0]!;
    expect(ds).toMatchObject({
      path: 'train.jsonl',
      ds_type: 'json',
      type: 'chat_template',
      field_messages: 'messages',
      message_property_mappings: { role: 'role', content: 'content' },
      roles: { system: ['system'], user: ['user'], assistant: ['assistant'] },
      roles_to_train: ['assistant'],
      train_on_eos: 'turn',
      message_field_training: 'weight',
    });
    expect((c.test_datasets as Record<string, unknown>[])[0]).toMatchObject({ path: 'valid.jsonl', type: 'chat_template' });
    const yamlText = exportClusterConfig(j).axolotlYaml;
    expect(yamlText).toContain(AXOLOTL_SCHEMA.source);
    // PyYAML reads 1e-8 as a string: exponents are written with a dot.
    expect(yamlText).toContain('adam_epsilon: 1.0e-8\n');
    expect(yamlText).not.toMatch(/[^.\d]\d+e[-+]\d/);
  });

  it('maps warmup ratio, constant schedule, no validation file, rsLoRA, text data and a custom template', () => {
    const ratio = config(job({ schedule: 'constant', warmupRatio: 0.1, useRslora: true }, { validationFileName: null }));
    expect(validateAxolotlConfig(ratio)).toEqual([]);
    expect(ratio).toMatchObject({ warmup_ratio: 0.1, lr_scheduler: 'constant_with_warmup', val_set_size: 0, peft_use_rslora: true });
    expect(ratio.warmup_steps).toBeUndefined();
    expect(ratio.test_datasets).toBeUndefined();
    expect(ratio.eval_steps).toBeUndefined();
    expect(config(job({ schedule: 'constant', warmupSteps: 0 })).lr_scheduler).toBe('constant');

    const text = config(job({}, { datasetFormat: 'text' }));
    expect(validateAxolotlConfig(text)).toEqual([]);
    expect((text.datasets as unknown[])[0]).toEqual({ path: 'train.jsonl', ds_type: 'json', split: 'train', type: 'completion', field: 'text' });
    expect(text.chat_template).toBeUndefined();

    const template = "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}";
    const custom = config(job({}, { chatTemplate: template }));
    expect(validateAxolotlConfig(custom)).toEqual([]);
    expect(custom.chat_template).toBe('jinja');
    expect(custom.chat_template_jinja).toBe(template);
  });

  it('rejects typos, wrong types, bad values and conflicting fields', () => {
    const good = config(job());
    const variant = (edit: (c: Record<string, unknown>) => void) => {
      const c = structuredClone(good);
      edit(c);
      return validateAxolotlConfig(c);
    };
    expect(
      variant((c) => {
        c.lora_rr = c.lora_r;
        delete c.lora_r;
      }),
    ).toEqual(['lora_rr: unknown field (did you mean lora_r?)']);
    expect(
      variant((c) => {
        const ds = (c.datasets as Record<string, unknown>[])[0]!;
        ds.field_mesages = ds.field_messages;
        delete ds.field_messages;
      }),
    ).toEqual(['datasets[0].field_mesages: unknown field (did you mean field_messages?)']);
    expect(variant((c) => (c.lora_r = '8'))).toEqual(['lora_r: expected integer, got "8"']);
    expect(variant((c) => (c.lora_alpha = 16.5))).toEqual(['lora_alpha: expected integer, got 16.5']);
    expect(variant((c) => (c.lr_scheduler = 'cosin'))).toHaveLength(1);
    expect(variant((c) => ((c.datasets as Record<string, unknown>[])[0]!.train_on_eos = 'always'))).toHaveLength(1);
    expect(good.warmup_ratio).toBe(0.03);
    expect(variant((c) => (c.warmup_steps = 3))).toEqual(['warmup_steps and warmup_ratio cannot both be set']);
    expect(variant((c) => (c.val_set_size = 0.1))).toEqual(['use either test_datasets or val_set_size, not both']);
    expect(variant((c) => delete c.base_model)).toEqual(['base_model: required']);
    expect(variant((c) => (c.datasets = []))).toEqual(['datasets: needs at least 1 item(s)']);
    expect(variant((c) => (c.chat_template = 'jinja'))).toEqual(['chat_template_jinja is required when chat_template is jinja']);
    expect(
      variant((c) => {
        delete c.micro_batch_size;
      }).join(),
    ).toMatch(/at least two of micro_batch_size, gradient_accumulation_steps/);
    // A YAML file with a typo, as a user would edit it.
    const edited = exportClusterConfig(job()).axolotlYaml.replace(/^learning_rate:/m, 'learnig_rate:');
    expect(validateAxolotlConfig(parse(edited))).toEqual(['learning_rate: required', 'learnig_rate: unknown field (did you mean learning_rate?)']);
  });

  it('refuses what Axolotl cannot express', () => {
    expect(() => exportClusterConfig(job({ loraAlpha: 12.5 }))).toThrow(ClusterHandoffError);
    expect(() => exportClusterConfig(job({}, { datasetFormat: 'prompt_completion' as 'chat' }))).toThrow(/promptCompletionToMessages/);
  });
});

describe('TRL script', () => {
  it('is a Python file that compiles as it is in the repository (placeholders inside strings)', () => {
    const cache = mkdtempSync(join(tmpdir(), 'whittle-pycache-'));
    try {
      const script = fileURLToPath(new URL('../../src/formats/train_trl.py', import.meta.url));
      // py_compile exits non-zero with the line of a syntax error; the cache goes to a temp folder.
      execFileSync('python3', ['-m', 'py_compile', script], { env: { ...process.env, PYTHONPYCACHEPREFIX: cache }, stdio: 'pipe' });
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it('is valid Python that embeds the job settings and masks exactly the assistant turns', () => {
    const j = job({ loraR: 4, loraAlpha: 8, warmupSteps: 3 }, { chatTemplate: 'tpl with """ and \\ inside', jobName: 'a "quoted"\\ name' });
    const { trlScript } = exportClusterConfig(j);
    const dir = mkdtempSync(join(tmpdir(), 'whittle-trl-'));
    try {
      const path = join(dir, 'train_trl.py');
      writeFileSync(path, trlScript);
      // Loads the script as a module (main() and its torch/trl imports do not run) and drives its
      // masking with a ChatML renderer and a one-token-per-character encoder.
      const probe = `
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("train_trl", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
def render(messages, gen):
    text = "".join(f"<|im_start|>{x['role']}\\n{x['content']}<|im_end|>\\n" for x in messages)
    return text + ("<|im_start|>assistant\\n" if gen else "")
msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1", "weight": 0},
        {"role": "user", "content": "U2"}, {"role": "assistant", "content": "A2"}]
pieces = m.assistant_pieces(render, msgs)
ids, mask = m.tokenize_pieces(lambda t: [ord(c) for c in t], pieces, 40)
print(json.dumps({"settings": m.SETTINGS, "pieces": pieces, "trained": "".join(chr(i) for i, k in zip(ids, mask) if k), "n": len(ids)}))
`;
      const out = JSON.parse(execFileSync('python3', ['-c', probe, path], { encoding: 'utf8' })) as {
        settings: Record<string, unknown>;
        pieces: [string, boolean][];
        trained: string;
        n: number;
      };
      expect(out.settings).toEqual(trlSettings(j));
      expect(out.pieces).toEqual([
        ['<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n', false],
        ['A1<|im_end|>', false],
        ['\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n', false],
        ['A2<|im_end|>', true],
        ['\n', false],
      ]);
      expect(out.n).toBe(40);
      expect(out.trained).toBe('');
      const full = JSON.parse(
        execFileSync('python3', ['-c', probe.replace('pieces, 40)', 'pieces, 1000)'), path], { encoding: 'utf8' }),
      ) as { trained: string };
      expect(full.trained).toBe('A2<|im_end|>');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('promptCompletionToMessages', () => {
  it('turns each line into a user and an assistant message, and names bad lines', () => {
    expect(promptCompletionToMessages('{"prompt":"Hi","completion":"Hello"}\n\n{"prompt":"2+2","completion":"4"}\n')).toBe(
      '{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]}\n' +
        '{"messages":[{"role":"user","content":"2+2"},{"role":"assistant","content":"4"}]}\n',
    );
    expect(() => promptCompletionToMessages('{"prompt":"x"}')).toThrow('line 1 lacks a string prompt and completion');
    expect(() => promptCompletionToMessages('ok\n')).toThrow('line 1 is not JSON');
  });
});
