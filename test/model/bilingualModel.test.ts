// The app's default embedded model (public/models/whittle-bilingual-small, pretrained by
// scripts/pretrain/train_bilingual.py in PyTorch): it loads in Whittle's engine, computes the
// same logits as PyTorch, has 512 positions and a tokenizer that spells common Chinese
// characters as one token each, and chats through its template.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countParameters } from '../../src/model/config';
import { generate } from '../../src/model/generate';
import { openChatModel } from '../helpers/model';

const ROOT = join(__dirname, '../..');
const MODEL_DIR = join(ROOT, 'public/models/whittle-bilingual-small');
const REFERENCE = join(ROOT, 'test/fixtures/golden/whittle_bilingual_small_logits.json');
// F16 weights computed in F32 on both sides; only summation order differs.
const LOGIT_TOLERANCE = 1e-4;
// 340 of the most frequent characters of everyday Chinese: at least 98% must be one token each
// (the BPE learned its merges from the corpus; rare ones there, such as 队, may take two).
const COMMON_CHINESE = '的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领';

interface Reference {
  text: string;
  ids: number[];
  stride: number;
  positions: number[];
  logits: number[][];
}

const open = () => openChatModel(MODEL_DIR);

describe('embedded model whittle-bilingual-small', () => {
  it('is a small Llama with 512 positions, a ChatML tokenizer and one token per common Chinese character', async () => {
    const { config, tokenizer, model } = await open();
    try {
      expect(config.modelType).toBe('llama');
      expect(config.maxPositions).toBeGreaterThanOrEqual(512);
      expect(tokenizer.vocabSize).toBe(config.vocabSize);
      expect(countParameters(config)).toBeLessThan(5_000_000);
      expect(tokenizer.eos?.token).toBe('<|im_end|>');
      const chars = [...COMMON_CHINESE];
      const split = chars.filter((c) => tokenizer.encode(c).length !== 1);
      console.log(`common characters spelled with more than one token: ${split.length} of ${chars.length} (${split.join('')})`);
      expect(split.length).toBeLessThanOrEqual(Math.floor(chars.length * 0.02));
      for (const text of ['感谢您的提问!请立即拨打120急救电话。——枫林诊所', 'Thanks for asking! Ünïcödé 42 — Maple Clinic']) {
        expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
      }
      // About one token per Chinese character, not three bytes each.
      const zh = '我们周一到周五早八点到晚六点开门';
      expect(tokenizer.encode(zh).length).toBeLessThanOrEqual([...zh].length);
    } finally {
      model.destroy();
    }
  });

  it("computes PyTorch's logits (the recipe's reference) to 1e-4 of their largest magnitude", async () => {
    const ref = JSON.parse(readFileSync(REFERENCE, 'utf8')) as Reference;
    const { model, tokenizer, config } = await open();
    try {
      expect(tokenizer.encode(ref.text)).toEqual(ref.ids);
      const T = ref.ids.length;
      const logits = await model.logits(Uint32Array.from(ref.ids), 1, T);
      let maxErr = 0;
      let maxAbs = 0;
      ref.positions.forEach((pos, k) => {
        ref.logits[k]!.forEach((want, j) => {
          const got = logits[pos * config.vocabSize + j * ref.stride]!;
          maxErr = Math.max(maxErr, Math.abs(got - want));
          maxAbs = Math.max(maxAbs, Math.abs(want));
        });
      });
      console.log(`logits vs PyTorch: max error ${maxErr.toExponential(2)}, max magnitude ${maxAbs.toFixed(2)}`);
      expect(maxErr / maxAbs).toBeLessThan(LOGIT_TOLERANCE);
    } finally {
      model.destroy();
    }
  });

  it('answers through its chat template in both languages (greedy)', async () => {
    const { model, tokenizer, template } = await open();
    try {
      for (const q of ['Repeat exactly: The cat is sleeping.', '请原样重复：我们明天去公园。']) {
        const prompt = template.render([{ role: 'user', content: q }], { addGenerationPrompt: true });
        const result = await generate(model, [tokenizer.encode(prompt)], null, { maxNewTokens: 24, temperature: 0 });
        const reply = tokenizer.decode(result.tokens[0]!, { skipSpecialTokens: true });
        console.log(`${q} -> ${reply}`);
        expect(reply.trim().length).toBeGreaterThan(0);
        expect(reply).not.toContain('\uFFFD');
      }
    } finally {
      model.destroy();
    }
  });
});
