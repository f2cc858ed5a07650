import { detectEndOfTurn, type ChatMessage } from '../data/chatTemplate';
import { textUsesBos } from '../data/examples';
import type { TextTokenizer } from '../data/tokenizer';
import { generate } from '../model/generate';
import type { LoraAdapter } from '../model/lora';
import { flag, KERNELS_OPTION, kernelsOption, listOption, numberOption, requiredString, stringOption, type CommandSpec, type ParsedCommand, WEIGHT_DTYPE_OPTION, weightDtypeOption } from './args';
import { CliError, type CliContext } from './io';
import { describeKernelPlan } from '../kernels/matmulPlans';
import { loadAdapterFolder, openModel, planCachedKernels } from './model';

export const generateSpec: CommandSpec = {
  name: 'generate',
  positionals: ['modelDir'],
  summary: 'Generate text from a prompt, streaming tokens as they come (optionally with a PEFT adapter).',
  options: {
    prompt: { type: 'string', arg: 'TEXT', help: 'the prompt (required)' },
    chat: { type: 'boolean', help: "wrap the prompt as a user message in the model's chat template" },
    system: { type: 'string', arg: 'TEXT', help: 'system message (with --chat)' },
    adapter: { type: 'string', arg: 'DIR', help: 'PEFT adapter folder (adapter_config.json + adapter_model.safetensors)' },
    'max-new-tokens': { type: 'string', arg: 'N', help: 'tokens to generate at most', default: '64' },
    temperature: { type: 'string', arg: 'T', help: '0 = greedy', default: '0' },
    'top-k': { type: 'string', arg: 'K', help: '0 = off', default: '0' },
    'top-p': { type: 'string', arg: 'P', help: '1 = off', default: '1' },
    'repetition-penalty': { type: 'string', arg: 'X', help: '1 = off', default: '1' },
    seed: { type: 'string', arg: 'N', help: 'seed of the sampling draws', default: '0' },
    stop: { type: 'string', arg: 'STR', multiple: true, help: 'stop when the text contains STR (repeatable; STR is not printed)' },
    dtype: WEIGHT_DTYPE_OPTION,
    kernels: KERNELS_OPTION,
  },
  notes: ['Generation stops at the model\'s EOS (and, with --chat, the template\'s end-of-turn token). Tokens/s go to stderr.'],
};

/**
 * Incremental detokenisation: decodes the whole output each step and releases only text that is
 * final, i.e. not an incomplete UTF-8 sequence (U+FFFD at the end) and not a possible start of a
 * stop string.
 */
export class TextStream {
  private ids: number[] = [];
  /** Characters of the decoded text already released. */
  private released = 0;
  /** Set once a stop string was seen: the text is cut before it. */
  stopped = false;

  constructor(
    private readonly tokenizer: TextTokenizer,
    private readonly stops: readonly string[],
  ) {}

  /** Adds one token; returns the text that became final. */
  push(id: number): string {
    // A model's vocabulary is often padded past the tokenizer's; such ids have no text.
    if (id >= this.tokenizer.vocabSize) return '';
    this.ids.push(id);
    const text = this.tokenizer.decode(this.ids, { skipSpecialTokens: true });
    // Stop strings can span tokens; search from where an earlier occurrence could have started.
    const longest = Math.max(0, ...this.stops.map((s) => s.length));
    const from = Math.max(0, this.released - longest);
    let cut = -1;
    for (const s of this.stops) {
      const at = text.indexOf(s, from);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      return this.release(text, Math.max(cut, this.released));
    }
    const complete = text.endsWith('\uFFFD') ? text.length - 1 : text.length;
    // Hold back a tail that may grow into a stop string.
    let end = complete;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, complete); k > 0; k--) {
        if (text.slice(complete - k, complete) === s.slice(0, k)) {
          end = Math.min(end, complete - k);
          break;
        }
      }
    }
    return this.release(text, end);
  }

  /** The rest, at the end of generation (an incomplete character is released as is). */
  flush(): string {
    if (this.stopped || this.ids.length === 0) return '';
    const text = this.tokenizer.decode(this.ids, { skipSpecialTokens: true });
    return this.release(text, text.length);
  }

  private release(text: string, end: number): string {
    if (end <= this.released) return '';
    const out = text.slice(this.released, end);
    this.released = end;
    return out;
  }
}

export async function runGenerate(ctx: CliContext, { values, positionals }: ParsedCommand): Promise<number> {
  const prompt = requiredString(generateSpec, values, 'prompt');
  const chat = flag(values, 'chat');
  const system = stringOption(values, 'system');
  if (system !== undefined && !chat) throw new CliError('--system needs --chat');
  const options = {
    maxNewTokens: numberOption(values, 'max-new-tokens', 64, { integer: true, min: 1 }),
    temperature: numberOption(values, 'temperature', 0, { min: 0 }),
    topK: numberOption(values, 'top-k', 0, { integer: true, min: 0 }),
    topP: numberOption(values, 'top-p', 1, { above: 0, max: 1 }),
    repetitionPenalty: numberOption(values, 'repetition-penalty', 1, { above: 0 }),
    seed: numberOption(values, 'seed', 0, { integer: true, min: 0 }),
  };
  const stops = listOption(values, 'stop');
  if (stops.some((s) => s.length === 0)) throw new CliError('--stop must not be empty');
  const dtype = weightDtypeOption(values);
  ctx.useKernels(kernelsOption(values));

  const opened = await openModel(ctx, positionals[0]!, dtype);
  const { model, config, tokenizer, template } = opened;
  let adapter: LoraAdapter | null = null;
  try {
    const adapterDir = stringOption(values, 'adapter');
    if (adapterDir !== undefined) adapter = await loadAdapterFolder(ctx, model, adapterDir);

    const eos = new Set(config.eosTokenIds);
    if (tokenizer.eos) eos.add(tokenizer.eos.id);
    const genEos = (opened.files.generationConfig as { eos_token_id?: unknown } | null)?.eos_token_id;
    for (const id of Array.isArray(genEos) ? genEos : [genEos]) if (typeof id === 'number') eos.add(id);
    let ids: number[];
    if (chat) {
      if (template === null) throw new CliError(`${opened.path} has no chat template; drop --chat to use the raw prompt`);
      const messages: ChatMessage[] = [];
      if (system !== undefined) messages.push({ role: 'system', content: system });
      messages.push({ role: 'user', content: prompt });
      // The template writes its own BOS, so no special tokens are added.
      ids = tokenizer.encode(template.render(messages, { addGenerationPrompt: true }));
      const endOfTurn = detectEndOfTurn(template, tokenizer);
      const eot = endOfTurn === null ? undefined : tokenizer.tokenToId(endOfTurn);
      if (eot !== undefined) eos.add(eot);
    } else {
      ids = tokenizer.encode(prompt);
      if (tokenizer.bos && textUsesBos(tokenizer) && ids[0] !== tokenizer.bos.id) ids.unshift(tokenizer.bos.id);
    }
    if (ids.length === 0) throw new CliError('the prompt is empty after tokenization');
    if (ids.length >= config.maxPositions) {
      throw new CliError(`the prompt is ${ids.length} tokens; the model's context is ${config.maxPositions}, leaving no room to generate`);
    }

    const plan = describeKernelPlan(await planCachedKernels(ctx, model.gpu));
    const stream = new TextStream(tokenizer, stops);
    const result = await generate(model, [ids], adapter, {
      ...options,
      eosTokenIds: [...eos],
      onToken: (step) => {
        const id = step[0];
        if (id === undefined) return false;
        const text = stream.push(id);
        if (text) ctx.io.stdout(text);
        return stream.stopped;
      },
    });
    const rest = stream.flush();
    if (rest) ctx.io.stdout(rest);
    ctx.io.stdout('\n');
    const n = result.tokens[0]!.length;
    const finish = stream.stopped ? 'stop string' : result.finish[0] === 'eos' ? 'EOS' : result.finish[0] === 'length' ? 'max tokens' : result.finish[0] === 'context' ? `context full (${ids.length} prompt tokens of ${model.config.maxPositions})` : 'stopped';
    ctx.note(`[${n} token${n === 1 ? '' : 's'} in ${(result.decodeMs / 1000).toFixed(2)} s, ${result.tokensPerSecond.toFixed(1)} tokens/s; prompt ${ids.length} tokens in ${result.prefillMs.toFixed(0)} ms; finished: ${finish}; kernels: ${plan}]`);
    return 0;
  } finally {
    adapter?.destroy();
    model.destroy();
  }
}
