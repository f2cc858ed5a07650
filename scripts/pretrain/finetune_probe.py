"""Searches LoRA fine-tuning settings for the embedded model in PyTorch (fast on the CPU), with
the trainer's semantics: LoRA on every linear layer (PEFT init: A Kaiming-uniform, B zero, scale
alpha/r, dropout on the LoRA input while training, 0.05 as the trainer's auto), AdamW (0.9, 0.999,
eps 1e-8, no weight decay), gradient clip 1, linear decay after 3% warmup, loss on the reply tokens
only, batches of padded examples, greedy replies of at most 64 tokens. Its random numbers are not
the engine's, so the settings it finds are confirmed on Whittle's own engine by
test/train/demoFinetune.test.ts.

    npx tsx scripts/pretrain/dumpFinetuneData.ts public/models/whittle-bilingual-small .pretrain-bilingual/finetune-data.json
    /usr/bin/python3 scripts/pretrain/finetune_probe.py --model public/models/whittle-bilingual-small \
        --data .pretrain-bilingual/finetune-data.json --sample clinic-zh --lr 3e-3 --r 16 --alpha 32 --epochs 4

--sample copy prints the base model's replies to "Repeat exactly: ..." prompts and trains nothing.
"""
import argparse
import json
import math
import os
import random
import time

import torch
import torch.nn.functional as F

from llama_torch import load_exported

p = argparse.ArgumentParser()
p.add_argument('--model', default='public/models/whittle-bilingual-small')
p.add_argument('--data', default='.pretrain-bilingual/finetune-data.json')
p.add_argument('--sample', default='clinic-zh')
p.add_argument('--lr', type=float, default=3e-3)
p.add_argument('--r', type=int, default=16)
p.add_argument('--alpha', type=float, default=32)
p.add_argument('--epochs', type=int, default=4)
p.add_argument('--batch', type=int, default=8)
p.add_argument('--dropout', type=float, default=0.05, help='LoRA dropout (the trainer\'s auto value)')
p.add_argument('--examples', type=int, default=0, help='first N training examples (0: all)')
p.add_argument('--seed', type=int, default=1)
p.add_argument('--targets', default='q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj', help='LoRA target modules')
p.add_argument('--ckpt', default='', help="a train_bilingual.py checkpoint (ckpt.pt) instead of the folder's weights")
a = p.parse_args()
torch.set_num_threads(1)
torch.manual_seed(a.seed)


model = load_exported(a.model, a.ckpt or None)
for w in model.parameters():
    w.requires_grad_(False)


class LoRA(torch.nn.Module):
    def __init__(self, base, r, alpha, dropout):
        super().__init__()
        self.base, self.scale, self.dropout = base, alpha / r, dropout
        bound = 1 / math.sqrt(base.in_features)
        self.A = torch.nn.Parameter(torch.empty(r, base.in_features).uniform_(-bound, bound))
        self.B = torch.nn.Parameter(torch.zeros(base.out_features, r))

    def forward(self, x):
        return self.base(x) + (F.dropout(x, self.dropout, self.training) @ self.A.t() @ self.B.t()) * self.scale


for layer in model.layers:
    for n in a.targets.split(','):
        setattr(layer, n, LoRA(getattr(layer, n), a.r, a.alpha, a.dropout))
lora = [w for w in model.parameters() if w.requires_grad]

tok = json.load(open(os.path.join(a.model, 'tokenizer.json')))
id_to_str = {v: k for k, v in tok['model']['vocab'].items()}
bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b)
        cs.append(256 + n)
        n += 1
u2b = {chr(c): b for b, c in zip(bs, cs)}
special = {t['id'] for t in tok['added_tokens']}
eos = next(t['id'] for t in tok['added_tokens'] if t['content'] == '<|im_end|>')


def decode(ids):
    return bytes(u2b[ch] for i in ids if i not in special for ch in id_to_str[i]).decode('utf8', 'replace')


data = json.load(open(a.data))[a.sample]
train = data['train'][:a.examples] if a.examples else data['train']


def loss_of(batch):
    T = max(len(e['ids']) for e in batch)
    ids = torch.zeros(len(batch), T, dtype=torch.long)
    mask = torch.zeros(len(batch), T)
    for i, e in enumerate(batch):
        ids[i, :len(e['ids'])] = torch.tensor(e['ids'])
        mask[i, :len(e['ids'])] = torch.tensor(e['trained'], dtype=torch.float32)
    logits = model(ids[:, :-1])
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction='none')
    m = mask[:, 1:].reshape(-1)
    return (nll * m).sum() / m.sum()


@torch.no_grad()
def valid_loss():
    model.eval()
    loss = loss_of(data['valid']).item()
    model.train()
    return loss


@torch.no_grad()
def greedy(ids, n=64):
    model.eval()
    ids = list(ids)
    out = []
    for _ in range(n):
        nxt = int(model(torch.tensor([ids]))[0, -1].argmax())
        if nxt == eos:
            break
        ids.append(nxt)
        out.append(nxt)
    model.train()
    return decode(out)


before = [greedy(pr['ids']) for pr in data['prompts']]
if not train:  # a prompts-only set (copy): the base model's replies
    for pr, b in zip(data['prompts'], before):
        print(json.dumps({'q': pr['user'], 'base': b}, ensure_ascii=False))
    raise SystemExit(0)
steps_per_epoch = math.ceil(len(train) / a.batch)
total = steps_per_epoch * a.epochs
warm = math.ceil(total * 0.03)
opt = torch.optim.AdamW(lora, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
rng = random.Random(a.seed)
v0 = valid_loss()
t0 = time.time()
step = 0
for ep in range(a.epochs):
    order = list(range(len(train)))
    rng.shuffle(order)
    for s in range(steps_per_epoch):
        lr = a.lr * ((step + 1) / warm if step < warm else max(0.0, (total - step) / max(1, total - warm)))
        for g in opt.param_groups:
            g['lr'] = lr
        loss = loss_of([train[i] for i in order[s * a.batch:(s + 1) * a.batch]])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora, 1.0)
        opt.step()
        step += 1
    print(f'epoch {ep + 1} train {loss.item():.3f} valid {valid_loss():.3f}', flush=True)
print(f'{a.sample} lr {a.lr} r {a.r} alpha {a.alpha} epochs {a.epochs} batch {a.batch}: valid {v0:.3f} -> {valid_loss():.3f} in {step} steps, {time.time() - t0:.0f}s')
for pr, b in zip(data['prompts'], before):
    print(json.dumps({'q': pr['user'], 'base': b, 'tuned': greedy(pr['ids'])}, ensure_ascii=False))
