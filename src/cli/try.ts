// whittle try: the first screen's "Try it" job from the command line: the app's built-in model,
// a shipped sample's files and the card's settings (src/jobs/samples.ts), so a run here trains
// what the page trains.
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { EMBEDDED_MODEL_NAME, firstExamplesFileName, firstJsonlLines, parseSampleIndex, tryItExamples, tryItHyperparameters, type TryItLength } from '../jobs/samples';
import { flag, requiredString, stringOption, type CommandSpec, type ParsedCommand, WEIGHT_DTYPE_OPTION, weightDtypeOption, LOG_EVERY_OPTION, logEveryOption } from './args';
import { CliError, type CliContext } from './io';
import { trainModel } from './train';

/** public/ of this checkout: where the app's model and samples are served from. */
const PUBLIC_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../public');

export const trySpec: CommandSpec = {
  name: 'try',
  positionals: ['sample-id'],
  summary: 'Run the app\'s "Try it" job: the built-in model fine-tuned on a shipped sample with the card\'s settings.',
  options: {
    out: { type: 'string', arg: 'DIR', help: 'output folder (required), as for whittle train' },
    quick: { type: 'boolean', help: "the card's quick check: one epoch over the first examples" },
    model: { type: 'string', arg: 'DIR', help: 'model folder', default: `public/models/${EMBEDDED_MODEL_NAME}` },
    samples: { type: 'string', arg: 'DIR', help: 'folder with index.json and the sample files', default: 'public/samples' },
    dtype: WEIGHT_DTYPE_OPTION,
    'log-every': LOG_EVERY_OPTION,
  },
  notes: ['Every hyperparameter the card leaves to auto is resolved by the same rules as the job form (the model\'s whittle_finetune.json first).'],
};

export async function runTry(ctx: CliContext, { values, positionals }: ParsedCommand): Promise<number> {
  const id = positionals[0]!;
  const out = requiredString(trySpec, values, 'out', '--out DIR');
  const samplesDir = stringOption(values, 'samples') ?? join(PUBLIC_DIR, 'samples');
  const modelDir = stringOption(values, 'model') ?? join(PUBLIC_DIR, 'models', EMBEDDED_MODEL_NAME);
  const length: TryItLength = flag(values, 'quick') ? 'quick' : 'suggested';

  let indexText: string;
  try {
    indexText = readFileSync(join(samplesDir, 'index.json'), 'utf8');
  } catch {
    throw new CliError(`no sample index at ${join(samplesDir, 'index.json')}`);
  }
  const samples = parseSampleIndex(JSON.parse(indexText));
  const sample = samples.find((s) => s.id === id);
  if (!sample) throw new CliError(`there is no sample "${id}" (samples: ${samples.map((s) => s.id).join(', ')})`);

  // The training file as the page uploads it: the whole file, or its first examples under a name that says so.
  const n = tryItExamples(sample, length);
  let trainFile = join(samplesDir, sample.trainFile);
  if (n < sample.trainExamples) {
    await mkdir(out, { recursive: true });
    trainFile = join(out, firstExamplesFileName(sample.trainFile, n));
    writeFileSync(trainFile, firstJsonlLines(readFileSync(join(samplesDir, sample.trainFile), 'utf8'), n));
  }
  ctx.print(`try ${sample.id} (${length === 'quick' ? `quick check, ${n} examples` : `full run, ${sample.suggestedEpochs} epochs`}) on ${modelDir}`);
  return trainModel(ctx, {
    modelDir,
    trainFile,
    validFile: join(samplesDir, sample.validFile),
    out,
    request: tryItHyperparameters(sample, length),
    dtype: weightDtypeOption(values),
    logEvery: logEveryOption(values),
    resume: false,
  });
}
