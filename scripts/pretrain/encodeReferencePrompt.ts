/**
 * Prints {text, ids} of the prompt whose PyTorch logits reference_logits.py records: a chat in
 * English and Chinese through the embedded model's own tokenizer and template.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatTemplate } from '../../src/data/chatTemplate';
import { TextTokenizer } from '../../src/data/tokenizer';

const dir = process.argv[2] ?? 'public/models/whittle-bilingual-small';
const read = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as unknown;
const tokenizer = TextTokenizer.fromJson(read('tokenizer.json'), read('tokenizer_config.json'));
const text = ChatTemplate.fromTokenizer(tokenizer).render(
  [
    { role: 'system', content: 'Front desk of a small clinic. 不做诊断。' },
    { role: 'user', content: 'Can I book for Tuesday? 我们明天去公园。' },
  ],
  { addGenerationPrompt: true },
);
console.log(JSON.stringify({ text, ids: tokenizer.encode(text) }));
