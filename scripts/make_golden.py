#!/usr/bin/env python3
"""Golden fixtures for the model engine, from an independent implementation (PyTorch, CPU).

Writes tiny random models in real Hugging Face layout (config.json, model.safetensors,
tokenizer.json, tokenizer_config.json, generation_config.json) under test/fixtures/models/,
and what the engine must reproduce under test/fixtures/golden/<model>.safetensors:
logits, the masked mean cross-entropy, the LoRA gradients (PEFT key names), a 10-step AdamW
loss trajectory and greedy continuations with and without the adapter.

The model math is written out here on purpose (no transformers/peft on these machines) and
follows transformers' modeling_llama / modeling_qwen2 / modeling_gpt2 and PEFT's LoraLayer.
Everything is computed in float64 from the stored (possibly bf16-rounded) weights.

Run with Debian's interpreter, which sees python3-torch:  /usr/bin/python3 scripts/make_golden.py
"""
import json
import math
import os
import struct

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
MODELS = os.path.join(ROOT, 'test', 'fixtures', 'models')
GOLDEN = os.path.join(ROOT, 'test', 'fixtures', 'golden')

torch.set_default_dtype(torch.float64)

# ---------------------------------------------------------------- safetensors (write)

DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.int32: 'I32'}


def save_safetensors(path, tensors, metadata=None):
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {'dtype': DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header['__metadata__'] = metadata
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- a real byte-level BPE tokenizer

CORPUS = (
    'the quick brown fox jumps over the lazy dog. the patient asked the doctor about the pain. '
    'she said that the answer is in the book. we train small models in the browser with lora. '
    'hello world, hello there! how are you today? i am fine, thank you. the cat sat on the mat. '
) * 4


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map (as in tokenizers' ByteLevel)."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('\xa1'), ord('\xac') + 1)) + list(range(ord('\xae'), ord('\xff') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def train_bpe(corpus, n_merges):
    b2u = bytes_to_unicode()
    words = {}
    for w in corpus.split(' '):
        if not w:
            continue
        sym = tuple(b2u[b] for b in (' ' + w).encode())
        words[sym] = words.get(sym, 0) + 1
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(best)
        new = {}
        for w, c in words.items():
            out = []
            i = 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    vocab = {}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    return vocab, merges


SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def write_tokenizer(d, vocab, merges):
    vocab = dict(vocab)
    added = []
    for s in SPECIALS:
        vocab[s] = len(vocab)
        added.append({'id': vocab[s], 'content': s, 'single_word': False, 'lstrip': False, 'rstrip': False,
                      'normalized': False, 'special': True})
    tok = {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': added,
        'normalizer': None,
        'pre_tokenizer': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True},
        'post_processor': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': False, 'use_regex': True},
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True, 'use_regex': True},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None,
                  'end_of_word_suffix': None, 'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': False,
                  'vocab': vocab, 'merges': [f'{a} {b}' for a, b in merges]},
    }
    with open(os.path.join(d, 'tokenizer.json'), 'w') as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
    cfg = {
        'tokenizer_class': 'PreTrainedTokenizerFast',
        'bos_token': None,
        'eos_token': '<|im_end|>',
        'pad_token': '<|endoftext|>',
        'unk_token': None,
        'model_max_length': 128,
        'chat_template': CHATML,
        'added_tokens_decoder': {str(a['id']): a for a in added},
    }
    with open(os.path.join(d, 'tokenizer_config.json'), 'w') as f:
        json.dump(cfg, f, indent=1)
    return len(vocab), vocab['<|im_end|>'], vocab['<|endoftext|>']


# ---------------------------------------------------------------- the models


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = (x - mu).pow(2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def rope_inv_freq(cfg):
    d = cfg.get('head_dim') or cfg['hidden_size'] // cfg['num_attention_heads']
    inv = 1.0 / (cfg.get('rope_theta', 10000.0) ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    rs = cfg.get('rope_scaling')
    if rs and rs.get('rope_type', rs.get('type')) == 'llama3':
        factor, lo, hi, old = rs['factor'], rs['low_freq_factor'], rs['high_freq_factor'], rs['original_max_position_embeddings']
        low_wl, high_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        scaled = torch.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wl < high_wl) & ~(wl > low_wl)
        inv = torch.where(medium, smoothed, scaled)
    return inv


def apply_rope(x, pos, inv):
    # x [B, T, H, D]; HF rotate_half convention.
    ang = pos[:, :, None].double() * inv[None, None, :]
    emb = torch.cat([ang, ang], -1)[:, :, None, :]
    cos, sin = emb.cos(), emb.sin()
    d = x.shape[-1] // 2
    rot = torch.cat([-x[..., d:], x[..., :d]], -1)
    return x * cos + rot * sin


def attention(q, k, v, n_rep):
    # q [B,T,H,D], k/v [B,T,Hkv,D]
    B, T, H, D = q.shape
    k = k.repeat_interleave(n_rep, dim=2)
    v = v.repeat_interleave(n_rep, dim=2)
    s = torch.einsum('bthd,bshd->bhts', q, k) / math.sqrt(D)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    s = s.masked_fill(~mask, float('-inf'))
    p = s.softmax(-1)
    return torch.einsum('bhts,bshd->bthd', p, v)


class Lora:
    """PEFT LoraLayer semantics: y = base(x) + (dropout(x) A^T B^T) * scaling."""

    def __init__(self, params, r, alpha, rslora=False):
        self.p = params  # name -> (A, B) leaf tensors
        self.scale = alpha / math.sqrt(r) if rslora else alpha / r

    def apply(self, name, x, y):
        if name not in self.p:
            return y
        a, b = self.p[name]
        return y + (x @ a.T) @ b.T * self.scale


def linear(x, w, b=None):
    y = x @ w.T
    return y + b if b is not None else y


def llama_forward(cfg, W, ids, lora=None):
    B, T = ids.shape
    H, Hkv = cfg['num_attention_heads'], cfg['num_key_value_heads']
    D = cfg.get('head_dim') or cfg['hidden_size'] // H
    eps = cfg['rms_norm_eps']
    inv = rope_inv_freq(cfg)
    pos = torch.arange(T)[None, :].expand(B, T)
    x = W['model.embed_tokens.weight'][ids]
    L = lora or Lora({}, 1, 1)
    for i in range(cfg['num_hidden_layers']):
        p = f'model.layers.{i}.'
        h = rms_norm(x, W[p + 'input_layernorm.weight'], eps)
        def proj(n):
            name = p + 'self_attn.' + n
            return L.apply(name, h, linear(h, W[name + '.weight'], W.get(name + '.bias')))
        q = proj('q_proj').view(B, T, H, D)
        k = proj('k_proj').view(B, T, Hkv, D)
        v = proj('v_proj').view(B, T, Hkv, D)
        q, k = apply_rope(q, pos, inv), apply_rope(k, pos, inv)
        a = attention(q, k, v, H // Hkv).reshape(B, T, H * D)
        o = p + 'self_attn.o_proj'
        x = x + L.apply(o, a, linear(a, W[o + '.weight']))
        h = rms_norm(x, W[p + 'post_attention_layernorm.weight'], eps)
        g = p + 'mlp.gate_proj'
        u = p + 'mlp.up_proj'
        dn = p + 'mlp.down_proj'
        gv = L.apply(g, h, linear(h, W[g + '.weight']))
        uv = L.apply(u, h, linear(h, W[u + '.weight']))
        m = torch.nn.functional.silu(gv) * uv
        x = x + L.apply(dn, m, linear(m, W[dn + '.weight']))
    x = rms_norm(x, W['model.norm.weight'], eps)
    head = W['model.embed_tokens.weight'] if cfg.get('tie_word_embeddings') else W['lm_head.weight']
    return x @ head.T


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def gpt2_forward(cfg, W, ids, lora=None):
    B, T = ids.shape
    H = cfg['n_head']
    C = cfg['n_embd']
    D = C // H
    eps = cfg['layer_norm_epsilon']
    L = lora or Lora({}, 1, 1)
    x = W['wte.weight'][ids] + W['wpe.weight'][torch.arange(T)][None]

    def conv1d(name, inp):
        # GPT-2 Conv1D stores weight [in, out]; PEFT sets fan_in_fan_out=True for it.
        return L.apply(name, inp, inp @ W[name + '.weight'] + W[name + '.bias'])

    for i in range(cfg['n_layer']):
        p = f'h.{i}.'
        h = layer_norm(x, W[p + 'ln_1.weight'], W[p + 'ln_1.bias'], eps)
        qkv = conv1d(p + 'attn.c_attn', h)
        q, k, v = qkv.split(C, dim=-1)
        a = attention(q.view(B, T, H, D), k.view(B, T, H, D), v.view(B, T, H, D), 1).reshape(B, T, C)
        x = x + conv1d(p + 'attn.c_proj', a)
        h = layer_norm(x, W[p + 'ln_2.weight'], W[p + 'ln_2.bias'], eps)
        x = x + conv1d(p + 'mlp.c_proj', gelu_new(conv1d(p + 'mlp.c_fc', h)))
    x = layer_norm(x, W['ln_f.weight'], W['ln_f.bias'], eps)
    return x @ W['wte.weight'].T


# ---------------------------------------------------------------- model definitions


def llama_weights(cfg, g, bias=False):
    C, I, V = cfg['hidden_size'], cfg['intermediate_size'], cfg['vocab_size']
    H, Hkv = cfg['num_attention_heads'], cfg['num_key_value_heads']
    D = cfg.get('head_dim') or C // H
    def r(*shape, s=0.2):
        return torch.randn(*shape, generator=g) * s
    W = {'model.embed_tokens.weight': r(V, C, s=0.5), 'model.norm.weight': 1 + r(C, s=0.1)}
    if not cfg.get('tie_word_embeddings'):
        W['lm_head.weight'] = r(V, C)
    for i in range(cfg['num_hidden_layers']):
        p = f'model.layers.{i}.'
        W[p + 'input_layernorm.weight'] = 1 + r(C, s=0.1)
        W[p + 'post_attention_layernorm.weight'] = 1 + r(C, s=0.1)
        W[p + 'self_attn.q_proj.weight'] = r(H * D, C)
        W[p + 'self_attn.k_proj.weight'] = r(Hkv * D, C)
        W[p + 'self_attn.v_proj.weight'] = r(Hkv * D, C)
        W[p + 'self_attn.o_proj.weight'] = r(C, H * D)
        if bias:
            W[p + 'self_attn.q_proj.bias'] = r(H * D)
            W[p + 'self_attn.k_proj.bias'] = r(Hkv * D)
            W[p + 'self_attn.v_proj.bias'] = r(Hkv * D)
        W[p + 'mlp.gate_proj.weight'] = r(I, C)
        W[p + 'mlp.up_proj.weight'] = r(I, C)
        W[p + 'mlp.down_proj.weight'] = r(C, I)
    return W


def gpt2_weights(cfg, g):
    C, V, P = cfg['n_embd'], cfg['vocab_size'], cfg['n_positions']
    def r(*shape, s=0.2):
        return torch.randn(*shape, generator=g) * s
    W = {'wte.weight': r(V, C, s=0.5), 'wpe.weight': r(P, C, s=0.1), 'ln_f.weight': 1 + r(C, s=0.1), 'ln_f.bias': r(C, s=0.1)}
    for i in range(cfg['n_layer']):
        p = f'h.{i}.'
        for ln in ('ln_1', 'ln_2'):
            W[p + ln + '.weight'] = 1 + r(C, s=0.1)
            W[p + ln + '.bias'] = r(C, s=0.1)
        W[p + 'attn.c_attn.weight'] = r(C, 3 * C)
        W[p + 'attn.c_attn.bias'] = r(3 * C, s=0.1)
        W[p + 'attn.c_proj.weight'] = r(C, C)
        W[p + 'attn.c_proj.bias'] = r(C, s=0.1)
        W[p + 'mlp.c_fc.weight'] = r(C, 4 * C)
        W[p + 'mlp.c_fc.bias'] = r(4 * C, s=0.1)
        W[p + 'mlp.c_proj.weight'] = r(4 * C, C)
        W[p + 'mlp.c_proj.bias'] = r(C, s=0.1)
    return W


LLAMA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']
GPT2_TARGETS = ['c_attn', 'c_proj', 'c_fc']


def lora_params(W, arch, r, g):
    """A as PEFT initialises it (Kaiming-uniform, a=sqrt(5) -> U(-1/sqrt(in), 1/sqrt(in))); B random
    instead of PEFT's zeros so that every gradient in the fixture is non-trivial."""
    targets = LLAMA_TARGETS if arch == 'llama' else GPT2_TARGETS
    P = {}
    for name, w in W.items():
        if not name.endswith('.weight'):
            continue
        mod = name[: -len('.weight')]
        if mod.split('.')[-1] not in targets:
            continue
        out_f, in_f = (w.shape[1], w.shape[0]) if arch == 'gpt2' else (w.shape[0], w.shape[1])
        bound = 1 / math.sqrt(in_f)
        a = (torch.rand(r, in_f, generator=g) * 2 - 1) * bound
        b = torch.randn(out_f, r, generator=g) * 0.1
        P[mod] = (a.requires_grad_(), b.requires_grad_())
    return P


def masked_ce(logits, targets, mask):
    lp = logits.log_softmax(-1)
    nll = -lp.gather(-1, targets[..., None])[..., 0]
    return (nll * mask).sum() / mask.sum()


def token_accuracy(logits, targets, mask):
    hit = (logits.argmax(-1) == targets).double()
    return float((hit * mask).sum() / mask.sum())


def greedy(forward, ids, n):
    ids = ids.clone()
    for _ in range(n):
        nxt = forward(ids)[:, -1].argmax(-1)
        ids = torch.cat([ids, nxt[:, None]], 1)
    return ids


def adamw_trajectory(forward_fn, lora, tokens, targets, mask, steps, lr, betas, eps, wd, clip):
    params = [t for ab in lora.p.values() for t in ab]
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    losses, norms = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = masked_ce(forward_fn(tokens, lora), targets, mask)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, clip)))
        losses.append(float(loss))
        opt.step()
    return losses, norms


def write_model_dir(name, cfg, W, dtype, arch):
    d = os.path.join(MODELS, name)
    os.makedirs(d, exist_ok=True)
    vocab_size, eos, pad = write_tokenizer(d, VOCAB, MERGES)
    assert vocab_size <= cfg['vocab_size']
    stored = {k: v.to(dtype) for k, v in W.items()}
    save_safetensors(os.path.join(d, 'model.safetensors'), stored, {'format': 'pt'})
    with open(os.path.join(d, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(d, 'generation_config.json'), 'w') as f:
        json.dump({'eos_token_id': eos, 'pad_token_id': pad, 'do_sample': False}, f, indent=1)
    # The reference computes with what was stored (bf16/f16 rounding included).
    return {k: v.double() for k, v in stored.items()}


def make(name, arch, cfg, dtype, seed, bias=False, rank=4, alpha=8):
    g = torch.Generator().manual_seed(seed)
    W = llama_weights(cfg, g, bias) if arch == 'llama' else gpt2_weights(cfg, g)
    W = write_model_dir(name, cfg, W, dtype, arch)
    fwd = llama_forward if arch == 'llama' else gpt2_forward
    V = cfg['vocab_size']
    B, T = 2, 11
    tokens = torch.randint(0, V, (B, T), generator=g)
    targets = torch.randint(0, V, (B, T), generator=g)
    mask = (torch.rand(B, T, generator=g) > 0.3).double()
    mask[0, -1] = 1.0
    lora = Lora(lora_params(W, arch, rank, g), rank, alpha)
    with torch.no_grad():
        base_logits = fwd(cfg, W, tokens)
    logits = fwd(cfg, W, tokens, lora)
    loss = masked_ce(logits, targets, mask)
    loss.backward()
    out = {
        'tokens': tokens.int(),
        'targets': targets.int(),
        'mask': mask.float(),
        'base_logits': base_logits.float(),
        'lora_logits': logits.detach().float(),
        'loss': loss.detach().float().reshape(1),
        'token_accuracy': torch.tensor([token_accuracy(logits.detach(), targets, mask)]).float(),
    }
    for mod, (a, b) in lora.p.items():
        key = 'base_model.model.' + ('transformer.' if arch == 'gpt2' else '') + mod
        out[key + '.lora_A.weight'] = a.detach().float()
        out[key + '.lora_B.weight'] = b.detach().float()
        out['grad.' + key + '.lora_A.weight'] = a.grad.float()
        out['grad.' + key + '.lora_B.weight'] = b.grad.float()
    if arch == 'llama':
        # Full-parameter gradients of the base model (no adapter): what pretraining computes.
        Wg = {k: v.clone().requires_grad_() for k, v in W.items()}
        masked_ce(fwd(cfg, Wg, tokens), targets, mask).backward()
        for k, v in Wg.items():
            out['fullgrad.' + k] = v.grad.float()
    # Training trajectory from the same initial adapter.
    lora2 = Lora({m: (a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()) for m, (a, b) in lora.p.items()}, rank, alpha)
    hp = dict(steps=10, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, wd=0.01, clip=1.0)
    losses, norms = adamw_trajectory(lambda t, l: fwd(cfg, W, t, l), lora2, tokens, targets, mask, **hp)
    out['trajectory_loss'] = torch.tensor(losses).float()
    out['trajectory_grad_norm'] = torch.tensor(norms).float()
    prompt = tokens[:, :5]
    with torch.no_grad():
        out['greedy_base'] = greedy(lambda ids: fwd(cfg, W, ids), prompt, 8).int()
        out['greedy_lora'] = greedy(lambda ids: fwd(cfg, W, ids, lora), prompt, 8).int()
    meta = {
        'arch': arch, 'rank': str(rank), 'alpha': str(alpha), 'dtype': str(dtype),
        'train': json.dumps({k: v for k, v in hp.items()}),
        'note': 'losses are recorded before each step; grad norms before clipping',
    }
    os.makedirs(GOLDEN, exist_ok=True)
    save_safetensors(os.path.join(GOLDEN, name + '.safetensors'), out, meta)
    print(f'{name}: loss {float(loss):.6f}, trajectory {losses[0]:.4f} -> {losses[-1]:.4f}')


VOCAB, MERGES = train_bpe(CORPUS, 40)
ENDOFTEXT, IM_START, IM_END = (len(VOCAB) + i for i in range(3))

if __name__ == '__main__':
    V = 320
    make('tiny-llama', 'llama', {
        'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'vocab_size': V, 'hidden_size': 48,
        'intermediate_size': 88, 'num_hidden_layers': 2, 'num_attention_heads': 4, 'num_key_value_heads': 2,
        'max_position_embeddings': 128, 'rms_norm_eps': 1e-5, 'rope_theta': 10000.0,
        'rope_scaling': {'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0, 'high_freq_factor': 4.0,
                         'original_max_position_embeddings': 16},
        'hidden_act': 'silu', 'tie_word_embeddings': False, 'attention_bias': False, 'mlp_bias': False,
        'bos_token_id': None, 'eos_token_id': IM_END, 'torch_dtype': 'float32',
    }, torch.float32, seed=1)
    make('tiny-qwen2', 'llama', {
        'architectures': ['Qwen2ForCausalLM'], 'model_type': 'qwen2', 'vocab_size': V, 'hidden_size': 64,
        'intermediate_size': 96, 'num_hidden_layers': 2, 'num_attention_heads': 4, 'num_key_value_heads': 1,
        'max_position_embeddings': 128, 'rms_norm_eps': 1e-6, 'rope_theta': 1000000.0, 'rope_scaling': None,
        'hidden_act': 'silu', 'tie_word_embeddings': True, 'use_sliding_window': False, 'sliding_window': 128,
        'bos_token_id': None, 'eos_token_id': IM_END, 'torch_dtype': 'bfloat16',
    }, torch.bfloat16, seed=2, bias=True)
    make('tiny-gpt2', 'gpt2', {
        'architectures': ['GPT2LMHeadModel'], 'model_type': 'gpt2', 'vocab_size': V, 'n_embd': 48, 'n_layer': 2,
        'n_head': 4, 'n_positions': 64, 'n_ctx': 64, 'layer_norm_epsilon': 1e-5, 'activation_function': 'gelu_new',
        'bos_token_id': ENDOFTEXT, 'eos_token_id': ENDOFTEXT, 'torch_dtype': 'float32',
    }, torch.float32, seed=3)
