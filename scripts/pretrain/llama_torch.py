"""The Llama-family decoder that train_bilingual.py pretrains and finetune_probe.py fine-tunes:
RMSNorm, RoPE as in Hugging Face's rotate_half, grouped-query attention, SwiGLU, tied embeddings,
no biases; parameter names are Hugging Face's (less the "model." prefix)."""
import json
import math
import os
import struct
from typing import NamedTuple

import numpy as np

import torch
import torch.nn.functional as F


class LlamaShape(NamedTuple):
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int


class RMSNorm(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


def rope(T, D):
    inv = 1.0 / (10000 ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    f = torch.outer(torch.arange(T, dtype=torch.float32), inv)
    e = torch.cat([f, f], -1)
    return e.cos(), e.sin()


def rotate(x, cos, sin):
    h = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., h:], x[..., :h]], -1) * sin


class Layer(torch.nn.Module):
    def __init__(self, s):
        super().__init__()
        C, H, KV, D = s.hidden, s.heads, s.kv_heads, s.hidden // s.heads
        self.H, self.KV, self.D = H, KV, D
        lin = lambda i, o: torch.nn.Linear(i, o, bias=False)
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(C), RMSNorm(C)
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = lin(C, H * D), lin(C, KV * D), lin(C, KV * D), lin(H * D, C)
        self.gate_proj, self.up_proj, self.down_proj = lin(C, s.intermediate), lin(C, s.intermediate), lin(s.intermediate, C)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        H, KV, D = self.H, self.KV, self.D
        h = self.input_layernorm(x)
        q = rotate(self.q_proj(h).view(B, T, H, D).transpose(1, 2), cos, sin)
        k = rotate(self.k_proj(h).view(B, T, KV, D).transpose(1, 2), cos, sin)
        v = self.v_proj(h).view(B, T, KV, D).transpose(1, 2)
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D) + mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + self.o_proj(y)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Model(torch.nn.Module):
    def __init__(self, s):
        super().__init__()
        L = s.layers
        self.D = s.hidden // s.heads
        self.embed_tokens = torch.nn.Embedding(s.vocab, s.hidden)
        self.layers = torch.nn.ModuleList([Layer(s) for _ in range(L)])
        self.norm = RMSNorm(s.hidden)
        for n, w in self.named_parameters():
            if w.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if ('o_proj' in n or 'down_proj' in n) else 0.02
                torch.nn.init.normal_(w, 0, std)

    def forward(self, ids):
        T = ids.shape[1]
        cos, sin = rope(T, self.D)
        mask = torch.full((T, T), float('-inf')).triu(1)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x) @ self.embed_tokens.weight.t()


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        s, e = t['data_offsets']
        dt = {'F16': np.float16, 'F32': np.float32}[t['dtype']]
        out[name] = torch.from_numpy(np.frombuffer(blob[s:e], dtype=dt).astype(np.float32).reshape(t['shape']))
    return out


def hf_name(name):
    """This module's parameter name -> Hugging Face Llama's (self_attn./mlp. groups, model. prefix)."""
    for group, projections in (('self_attn', ('q_proj', 'k_proj', 'v_proj', 'o_proj')), ('mlp', ('gate_proj', 'up_proj', 'down_proj'))):
        for proj in projections:
            name = name.replace(f'.{proj}.', f'.{group}.{proj}.')
    return 'model.' + name


def load_exported(folder, checkpoint=None):
    """A Hugging Face folder written by train_bilingual.py (config.json, model.safetensors), or
    its config.json with the weights of a training checkpoint."""
    cfg = json.load(open(os.path.join(folder, 'config.json')))
    shape = LlamaShape(cfg['vocab_size'], cfg['hidden_size'], cfg['num_hidden_layers'], cfg['num_attention_heads'],
                       cfg['num_key_value_heads'], cfg['intermediate_size'])
    model = Model(shape)
    if checkpoint:
        model.load_state_dict(torch.load(checkpoint)['model'])
        return model
    weights = read_safetensors(os.path.join(folder, 'model.safetensors'))
    model.load_state_dict({k: weights[hf_name(k)] for k in model.state_dict()})
    return model
