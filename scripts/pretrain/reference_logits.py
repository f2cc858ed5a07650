"""Writes test/fixtures/golden/whittle_bilingual_small_logits.json: PyTorch's logits for one
prompt on the exported whittle-bilingual-small (its F16 weights, computed in F32), which
test/model/bilingualModel.test.ts compares Whittle's engine with. To stay small it keeps, for
the first and the last position, every 8th vocabulary entry.

    npx tsx scripts/pretrain/encodeReferencePrompt.ts > /tmp/prompt.json
    /usr/bin/python3 scripts/pretrain/reference_logits.py public/models/whittle-bilingual-small /tmp/prompt.json \
        test/fixtures/golden/whittle_bilingual_small_logits.json
"""
import json
import sys

import torch

from llama_torch import load_exported

folder, prompt_path, out = sys.argv[1:4]
prompt = json.load(open(prompt_path))
ids = prompt['ids']
model = load_exported(folder)
with torch.no_grad():
    logits = model(torch.tensor([ids]))[0]
json.dump({'text': prompt['text'], 'ids': ids, 'stride': 8, 'positions': [0, len(ids) - 1],
           'logits': [[round(float(x), 6) for x in logits[i, ::8]] for i in (0, len(ids) - 1)],
           'torch': torch.__version__},
          open(out, 'w'))
print(f'wrote {out}')
