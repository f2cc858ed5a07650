import { makeBatches } from '../data/batching';
import type { ExampleList } from '../data/exampleList';
import type { TokenSequence } from '../data/examples';
import type { LoraAdapter } from '../model/lora';
import type { CausalLM } from '../model/transformer';
import { flag, KERNELS_OPTION, kernelsOption, numberOption, stringOption, type CommandSpec, type ParsedCommand, WEIGHT_DTYPE_OPTION, weightDtypeOption } from './args';
import { loadDataset } from './dataset';
import { CliError, type CliContext } from './io';
import { describeKernelPlan } from '../kernels/matmulPlans';
import { loadAdapterFolder, openModel, padTokenId, planCachedKernels } from './model';

export const evalSpec: CommandSpec = {
  name: 'eval',
  positionals: ['modelDir', 'file.jsonl'],
  summary: 'Mean loss and token accuracy of a model (optionally with a PEFT adapter) on the trained tokens of a JSONL file.',
  options: {
    adapter: { type: 'string', arg: 'DIR', help: 'PEFT adapter folder' },
    'max-seq-len': { type: 'string', arg: 'N', help: "examples are truncated to N tokens (capped at the model's context)", default: '512' },
    'batch-size': { type: 'string', arg: 'N', help: 'sequences per forward pass', default: '4' },
    dtype: WEIGHT_DTYPE_OPTION,
    kernels: KERNELS_OPTION,
    json: { type: 'boolean', help: 'print exactly one JSON object {"loss", "token_accuracy", "tokens"}' },
  },
  notes: ['Loss and accuracy count the tokens a training job would train on (assistant replies for chat data).'],
};

export interface EvalTotals {
  /** Mean cross-entropy per trained token. */
  loss: number;
  /** Share of trained tokens whose argmax prediction is the target. */
  accuracy: number;
  /** Trained tokens counted. */
  tokens: number;
}

/** Loss and accuracy over every trained token of `examples`, in batches of one shape each. */
export async function evaluateExamples(
  model: CausalLM,
  adapter: LoraAdapter | null,
  examples: ExampleList<TokenSequence>,
  options: { batchSize: number; maxSeqLen: number; padId: number },
): Promise<EvalTotals> {
  let lossSum = 0;
  let tokens = 0;
  let correct = 0;
  const batches = makeBatches(examples, { ...options, seed: 0, epoch: 0 });
  for (const batch of batches) {
    if (batch.trainedTokens === 0) continue;
    const t = await model.evaluate(batch, adapter);
    lossSum += t.lossSum;
    tokens += t.tokens;
    correct += t.correct;
  }
  return { loss: tokens > 0 ? lossSum / tokens : NaN, accuracy: tokens > 0 ? correct / tokens : NaN, tokens };
}

export async function runEval(ctx: CliContext, { values, positionals }: ParsedCommand): Promise<number> {
  const [modelDir, file] = positionals as [string, string];
  const maxSeqLenWanted = numberOption(values, 'max-seq-len', 512, { integer: true, min: 2 });
  const batchSize = numberOption(values, 'batch-size', 4, { integer: true, min: 1 });
  const dtype = weightDtypeOption(values);
  const json = flag(values, 'json');
  ctx.useKernels(kernelsOption(values));

  const opened = await openModel(ctx, modelDir, dtype);
  const { model, config } = opened;
  let adapter: LoraAdapter | null = null;
  try {
    const adapterDir = stringOption(values, 'adapter');
    if (adapterDir !== undefined) adapter = await loadAdapterFolder(ctx, model, adapterDir);
    const maxSeqLen = Math.min(maxSeqLenWanted, config.maxPositions);
    const data = await loadDataset(file, opened, maxSeqLen, 'data file');
    const truncated = data.examples.truncatedCount;
    const plan = describeKernelPlan(await planCachedKernels(ctx, model.gpu));
    const t0 = performance.now();
    const totals = await evaluateExamples(model, adapter, data.examples.list(), { batchSize, maxSeqLen, padId: padTokenId(opened, config) });
    if (totals.tokens === 0) throw new CliError(`${file} has no trained tokens to evaluate (no assistant replies with weight 1 within ${maxSeqLen} tokens)`);
    const seconds = (performance.now() - t0) / 1000;
    if (json) {
      ctx.print(JSON.stringify({ loss: totals.loss, token_accuracy: totals.accuracy, tokens: totals.tokens }));
      ctx.note(`[kernels: ${plan}]`);
    } else {
      ctx.print(`loss            ${totals.loss.toFixed(4)} (perplexity ${Math.exp(totals.loss).toFixed(2)})`);
      ctx.print(`token accuracy  ${(totals.accuracy * 100).toFixed(2)}%`);
      ctx.print(`trained tokens  ${totals.tokens} in ${data.examples.count} examples${truncated ? ` (${truncated} truncated to ${maxSeqLen} tokens)` : ''}`);
      ctx.note(`[${seconds.toFixed(2)} s${adapter ? `, adapter ${adapterDir}` : ''}; kernels: ${plan}]`);
    }
    return 0;
  } finally {
    adapter?.destroy();
    model.destroy();
  }
}
