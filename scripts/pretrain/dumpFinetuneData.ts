/**
 * Tokenizes the shipped samples and the held-out test prompts (test/fixtures/data/
 * finetune_heldout.json) with a model folder's tokenizer and chat template, exactly as a job
 * does, into one JSON file that scripts/pretrain/finetune_probe.py reads to search LoRA settings
 * in PyTorch before they are confirmed on Whittle's engine by the tests.
 *
 *   npx tsx scripts/pretrain/dumpFinetuneData.ts public/models/whittle-bilingual-small OUT.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatTemplate, detectEndOfTurn } from '../../src/data/chatTemplate';
import { tokenizeExample } from '../../src/data/examples';
import type { ChatMessage } from '../../src/data/datasetTypes';
import { TextTokenizer } from '../../src/data/tokenizer';
import { sampleDatasets } from '../make_samples';
import { doctorQaLines } from '../make_doctor_qa_fixture';

const [modelDir, outPath] = process.argv.slice(2);
if (!modelDir || !outPath) throw new Error('usage: dumpFinetuneData.ts MODEL_DIR OUT.json');
const read = (name: string) => JSON.parse(readFileSync(join(modelDir, name), 'utf8')) as unknown;
const tokenizer = TextTokenizer.fromJson(read('tokenizer.json'), read('tokenizer_config.json'));
const template = ChatTemplate.fromTokenizer(tokenizer);
const endOfTurn = detectEndOfTurn(template, tokenizer);
const heldout = JSON.parse(readFileSync('test/fixtures/data/finetune_heldout.json', 'utf8')) as Record<string, Record<string, string[]>>;

const tok = (messages: ChatMessage[]) => {
  const t = tokenizeExample({ kind: 'chat', messages }, tokenizer, template, { endOfTurn });
  return { ids: [...t.ids], trained: [...t.trained] };
};
const prompt = (system: string, user: string) => {
  const messages: ChatMessage[] = system ? [{ role: 'system', content: system }, { role: 'user', content: user }] : [{ role: 'user', content: user }];
  const text = template.render(messages, { addGenerationPrompt: true });
  return { user, ids: tokenizer.encode(text) };
};
const out: Record<string, unknown> = {};
for (const d of sampleDatasets()) {
  const system = d.train[0]![0]!.content;
  const asks = Object.values(heldout[d.id] ?? {}).flat();
  out[d.id] = { train: d.train.map(tok), valid: d.valid.map(tok), prompts: asks.map((q) => prompt(system, q)) };
}
const doctor = doctorQaLines().map((l) => (JSON.parse(l) as { messages: ChatMessage[] }).messages);
out['doctor-qa'] = { train: doctor.slice(0, 16).map(tok), valid: doctor.slice(16).map(tok), prompts: [] };
// The base model's own copying, with no fine-tune: the pirate sentences, asked as in its pretraining.
out['copy'] = { train: [], valid: [], prompts: heldout['pirate-style']!.sentences!.map((q) => prompt('', `Repeat exactly: ${q}`)) };
writeFileSync(outPath, JSON.stringify(out));
console.log(`wrote ${outPath}`);
