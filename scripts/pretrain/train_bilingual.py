"""Pretrains whittle-bilingual-small with PyTorch on the CPU and exports it in Hugging Face layout.

    npx tsx --import ./scripts/register-wgsl.mjs scripts/pretrain/bilingualData.ts --out .pretrain-bilingual
    nice /usr/bin/python3 scripts/pretrain/train_bilingual.py --data .pretrain-bilingual \
        --export public/models/whittle-bilingual-small [--steps N] [--resume]

A Llama-family decoder written out here (RMSNorm, RoPE as in Hugging Face's rotate_half, grouped
query attention, SwiGLU, tied embeddings, no biases) so that Whittle's engine, which loads HF
Llama checkpoints, computes the same function; scripts/pretrain/checkBilingualExport.ts checks
that on the exported file. Seeded; one thread (the machine is shared); resumable from OUT/ckpt.pt.
"""
import argparse
import csv
import json
import math
import os
import shutil
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

from llama_torch import LlamaShape, Model, hf_name

p = argparse.ArgumentParser()
p.add_argument('--data', default='.pretrain-bilingual')
p.add_argument('--export', default='public/models/whittle-bilingual-small')
p.add_argument('--hidden', type=int, default=256)
p.add_argument('--layers', type=int, default=4)
p.add_argument('--heads', type=int, default=8)
p.add_argument('--kv-heads', type=int, default=4)
p.add_argument('--intermediate', type=int, default=688)
p.add_argument('--seq', type=int, default=256)
p.add_argument('--positions', type=int, default=512)
p.add_argument('--batch', type=int, default=16)
p.add_argument('--steps', type=int, default=1500)
p.add_argument('--lr', type=float, default=3e-3)
p.add_argument('--warmup', type=int, default=60)
p.add_argument('--eval-every', type=int, default=100)
p.add_argument('--seed', type=int, default=2027)
p.add_argument('--threads', type=int, default=1)
p.add_argument('--resume', action='store_true')
p.add_argument('--continue-from', default='', help='checkpoint to continue: its weights, optimizer and data '
               'stream, a new warmup from its step, cosine to 10%% of --lr at --steps (total steps)')
p.add_argument('--bench', type=int, default=0, help='time this many steps and exit')
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

tok_cfg = json.load(open(os.path.join(a.data, 'tokenizer_config.json')))
specials = {v['content']: int(k) for k, v in tok_cfg['added_tokens_decoder'].items()}
V = max(specials.values()) + 1
train = torch.from_numpy(np.fromfile(os.path.join(a.data, 'train.bin'), dtype=np.uint16).astype(np.int64))
valid = torch.from_numpy(np.fromfile(os.path.join(a.data, 'valid.bin'), dtype=np.uint16).astype(np.int64))
C, L, H, KV, D = a.hidden, a.layers, a.heads, a.kv_heads, a.hidden // a.heads


model = Model(LlamaShape(V, C, L, H, KV, a.intermediate))
n_params = sum(w.numel() for w in model.parameters())
decay = [w for w in model.parameters() if w.dim() == 2]
no_decay = [w for w in model.parameters() if w.dim() < 2]
opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': no_decay, 'weight_decay': 0.0}], lr=a.lr, betas=(0.9, 0.95))
gen = torch.Generator().manual_seed(a.seed)


def batch(src, B, g):
    starts = torch.randint(0, len(src) - a.seq - 1, (B,), generator=g)
    rows = torch.stack([src[s:s + a.seq + 1] for s in starts])
    return rows[:, :-1], rows[:, 1:]


phase_start = 0  # the step a continuation started from: its warmup and cosine count from there


def lr_at(step):
    step -= phase_start
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    t = (step - a.warmup) / max(1, a.steps - phase_start - a.warmup)
    return a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


@torch.no_grad()
def evaluate():
    g = torch.Generator().manual_seed(1)
    model.eval()
    losses = []
    for _ in range(4):
        x, y = batch(valid, 4, g)
        losses.append(F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1)).item())
    model.train()
    return sum(losses) / len(losses)


os.makedirs(a.data, exist_ok=True)
ckpt_path = os.path.join(a.data, 'ckpt.pt')
log_path = os.path.join(a.data, 'training-log.csv')
start, elapsed = 0, 0.0
if (a.resume and os.path.exists(ckpt_path)) or a.continue_from:
    resuming = a.resume and os.path.exists(ckpt_path)
    ck = torch.load(ckpt_path if resuming else a.continue_from)
    model.load_state_dict(ck['model'])
    opt.load_state_dict(ck['opt'])
    gen.set_state(ck['gen'])
    start, elapsed = ck['step'], ck['elapsed']
    # A resume keeps its run's schedule; a continuation (even of a continuation) starts a new one here.
    phase_start = ck.get('phase_start', 0) if resuming else start
    print(f'resumed at step {start} (schedule from step {phase_start})')
elif not a.bench:
    with open(log_path, 'w') as f:
        f.write('step,lr,train_loss,valid_loss,elapsed_s\n')

print(f'params {n_params} vocab {V} train tokens {len(train)} valid tokens {len(valid)}')
t0 = time.time() - elapsed
recent = []
for step in range(start, a.steps if not a.bench else start + a.bench):
    for grp in opt.param_groups:
        grp['lr'] = lr_at(step)
    x, y = batch(train, a.batch, gen)
    loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    recent = (recent + [loss.item()])[-20:]
    if a.bench:
        print(f'step {step} loss {loss.item():.3f} {(time.time() - t0) / (step - start + 1):.2f} s/step', flush=True)
        continue
    last = step + 1 == a.steps
    if (step + 1) % a.eval_every == 0 or last:
        vl = evaluate()
        el = time.time() - t0
        with open(log_path, 'a') as f:
            f.write(f'{step + 1},{lr_at(step):.6g},{sum(recent) / len(recent):.4f},{vl:.4f},{el:.0f}\n')
        print(f'step {step + 1} train {sum(recent) / len(recent):.3f} valid {vl:.3f} {el:.0f}s', flush=True)
        torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'gen': gen.get_state(), 'step': step + 1, 'elapsed': el, 'phase_start': phase_start}, ckpt_path + '.tmp')
        os.replace(ckpt_path + '.tmp', ckpt_path)
if a.bench:
    raise SystemExit(0)

# ---- export (Hugging Face layout, F16 weights)
def write_safetensors(path, tensors):
    header, blobs, off = {'__metadata__': {'format': 'pt'}}, [], 0
    for name, t in tensors.items():
        b = t.detach().to(torch.float16).contiguous().numpy().tobytes()
        header[name] = {'dtype': 'F16', 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path + '.tmp', 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
    os.replace(path + '.tmp', path)


os.makedirs(a.export, exist_ok=True)
write_safetensors(os.path.join(a.export, 'model.safetensors'), {hf_name(k): v for k, v in model.state_dict().items()})
eot, eos = specials['<|endoftext|>'], specials['<|im_end|>']
config = {
    'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'vocab_size': V, 'hidden_size': C,
    'intermediate_size': a.intermediate, 'num_hidden_layers': L, 'num_attention_heads': H,
    'num_key_value_heads': KV, 'head_dim': D, 'hidden_act': 'silu', 'max_position_embeddings': a.positions,
    'rms_norm_eps': 1e-5, 'rope_theta': 10000, 'rope_scaling': None, 'attention_bias': False,
    'attention_dropout': 0, 'mlp_bias': False, 'tie_word_embeddings': True, 'initializer_range': 0.02,
    'bos_token_id': eot, 'eos_token_id': eos, 'pad_token_id': eot, 'torch_dtype': 'float16', 'use_cache': True,
}
json.dump(config, open(os.path.join(a.export, 'config.json'), 'w'), indent=2)
json.dump({'bos_token_id': eot, 'eos_token_id': eos, 'pad_token_id': eot, 'do_sample': False, 'max_new_tokens': 128},
          open(os.path.join(a.export, 'generation_config.json'), 'w'), indent=2)
for f in ('tokenizer.json', 'tokenizer_config.json', 'training-log.csv'):
    shutil.copy(os.path.join(a.data, f), os.path.join(a.export, f))

json.dump({'params': n_params, 'steps': a.steps, 'continued_from_step': phase_start, 'batch': a.batch, 'seq': a.seq, 'lr': a.lr,
           'tokens_seen': a.steps * a.batch * a.seq, 'wall_s': round(time.time() - t0),
           'torch': torch.__version__, 'threads': a.threads},
          open(os.path.join(a.data, 'run.json'), 'w'))
print('exported to', a.export)
