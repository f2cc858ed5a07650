#!/usr/bin/env python3
"""Peer timings for `npm run bench -- train`: one LoRA training step in PyTorch, same shapes.

Reads a JSON list of cases on stdin:
  {name, config (a Hugging Face config.json dict), B, T, r, alpha, lr, steps, warmup, seed}
and prints {environment, results} on stdout: environment is peer_env.peer_environment (torch
version, the BLAS library loaded, threads, OPENBLAS_CORETYPE), results a list of {name, ms,
tokensPerSecond, loss, device, threads} (median ms per step over `steps` timed steps, after
`warmup` untimed ones).

A step is what Whittle's step does: forward, masked-mean cross-entropy over every position,
backward into LoRA A/B only (base weights frozen), clip_grad_norm_(1.0), AdamW. LoRA follows
PEFT (A Kaiming-uniform, B zero, scale alpha / r, no dropout) on every linear layer of every
block (llama: q k v o gate up down; gpt2: c_attn c_proj c_fc c_proj). The model math follows
scripts/make_golden.py (transformers' modeling_llama / modeling_gpt2), in float32, with random
N(0, 0.02) weights. PyTorch keeps every activation for the backward pass (no recomputation).

WHITTLE_PEER_IMPL=peft builds the model with transformers (AutoModelForCausalLM.from_config,
random init) and wraps it with PEFT's get_peft_model (LoraConfig target_modules='all-linear',
which is every linear layer of every block, the LM head excluded) instead: the real library
stack, for machines that have transformers and peft installed. WHITTLE_PEER_DTYPE (float32,
bfloat16, float16; default float32) sets the base weights' dtype in that mode.

Device: CPU by default, CUDA with WHITTLE_PEER_DEVICE=cuda. CPU threads: WHITTLE_PEER_THREADS
(default: PyTorch's, one per physical core). Run with Debian's interpreter, which has python3-torch.
"""
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from peer_env import peer_environment

DEVICE = os.environ.get('WHITTLE_PEER_DEVICE', 'cpu')
HAS_SDPA = hasattr(F, 'scaled_dot_product_attention')


def log(msg):
    print(f'[torch_train] {msg}', file=sys.stderr, flush=True)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(T, D, theta):
    inv = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.float32, device=DEVICE) / D))
    ang = torch.arange(T, dtype=torch.float32, device=DEVICE)[:, None] * inv[None, :]
    emb = torch.cat([ang, ang], -1)  # [T, D]
    return emb.cos()[None, :, None, :], emb.sin()[None, :, None, :]


def apply_rope(x, cos, sin):
    d = x.shape[-1] // 2
    rot = torch.cat([-x[..., d:], x[..., :d]], -1)
    return x * cos + rot * sin


def causal_attention(q, k, v):
    """q [B,T,H,D], k/v [B,T,H,D] (already repeated for GQA) -> [B,T,H,D]."""
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    if HAS_SDPA:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:
        T, D = q.shape[-2], q.shape[-1]
        s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
        out = s.masked_fill(~mask, float('-inf')).softmax(-1) @ v
    return out.transpose(1, 2)


class Model:
    def __init__(self, cfg, r, alpha, seed):
        g = torch.Generator().manual_seed(seed)
        self.cfg = cfg
        self.gpt2 = cfg['model_type'] == 'gpt2'
        self.scale = alpha / r
        self.W = {}
        self.lora = {}

        def rnd(*shape):
            return (torch.randn(*shape, generator=g) * 0.02).to(DEVICE)

        def linear(name, out_f, in_f, bias):
            self.W[name + '.weight'] = rnd(out_f, in_f)  # [out, in] for both families
            if bias:
                self.W[name + '.bias'] = rnd(out_f)
            bound = 1 / math.sqrt(in_f)
            a = ((torch.rand(r, in_f, generator=g) * 2 - 1) * bound).to(DEVICE).requires_grad_()
            b = torch.zeros(out_f, r, device=DEVICE).requires_grad_()
            self.lora[name] = (a, b)

        if self.gpt2:
            C, L, V = cfg['n_embd'], cfg['n_layer'], cfg['vocab_size']
            I = cfg.get('n_inner') or 4 * C
            self.W['wte'] = rnd(V, C)
            self.W['wpe'] = rnd(cfg.get('n_positions', 1024), C)
            for i in range(L):
                p = f'h.{i}.'
                linear(p + 'attn.c_attn', 3 * C, C, True)
                linear(p + 'attn.c_proj', C, C, True)
                linear(p + 'mlp.c_fc', I, C, True)
                linear(p + 'mlp.c_proj', C, I, True)
        else:
            C, L, V = cfg['hidden_size'], cfg['num_hidden_layers'], cfg['vocab_size']
            I = cfg['intermediate_size']
            H = cfg['num_attention_heads']
            Hkv = cfg.get('num_key_value_heads', H)
            D = cfg.get('head_dim') or C // H
            qkv_bias = cfg['model_type'] == 'qwen2' or cfg.get('attention_bias', False)
            self.W['embed'] = rnd(V, C)
            if not cfg.get('tie_word_embeddings', False):
                self.W['lm_head'] = rnd(V, C)
            for i in range(L):
                p = f'model.layers.{i}.'
                linear(p + 'q_proj', H * D, C, qkv_bias)
                linear(p + 'k_proj', Hkv * D, C, qkv_bias)
                linear(p + 'v_proj', Hkv * D, C, qkv_bias)
                linear(p + 'o_proj', C, H * D, cfg.get('attention_bias', False))
                linear(p + 'gate_proj', I, C, False)
                linear(p + 'up_proj', I, C, False)
                linear(p + 'down_proj', C, I, False)
        self.ones = torch.ones(C, device=DEVICE)
        self.zeros = torch.zeros(C, device=DEVICE)

    def params(self):
        return [t for ab in self.lora.values() for t in ab]

    def lin(self, name, x):
        y = F.linear(x, self.W[name + '.weight'], self.W.get(name + '.bias'))
        a, b = self.lora[name]
        return y + (x @ a.T) @ b.T * self.scale

    def forward(self, ids):
        return self.forward_gpt2(ids) if self.gpt2 else self.forward_llama(ids)

    def forward_llama(self, ids):
        cfg = self.cfg
        B, T = ids.shape
        H = cfg['num_attention_heads']
        Hkv = cfg.get('num_key_value_heads', H)
        D = cfg.get('head_dim') or cfg['hidden_size'] // H
        eps = cfg.get('rms_norm_eps', 1e-6)
        cos, sin = rope_tables(T, D, cfg.get('rope_theta', 10000.0))
        x = self.W['embed'][ids]
        for i in range(cfg['num_hidden_layers']):
            p = f'model.layers.{i}.'
            h = rms_norm(x, self.ones, eps)
            q = apply_rope(self.lin(p + 'q_proj', h).view(B, T, H, D), cos, sin)
            k = apply_rope(self.lin(p + 'k_proj', h).view(B, T, Hkv, D), cos, sin)
            v = self.lin(p + 'v_proj', h).view(B, T, Hkv, D)
            k = k.repeat_interleave(H // Hkv, dim=2)
            v = v.repeat_interleave(H // Hkv, dim=2)
            a = causal_attention(q, k, v).reshape(B, T, H * D)
            x = x + self.lin(p + 'o_proj', a)
            h = rms_norm(x, self.ones, eps)
            m = F.silu(self.lin(p + 'gate_proj', h)) * self.lin(p + 'up_proj', h)
            x = x + self.lin(p + 'down_proj', m)
        x = rms_norm(x, self.ones, eps)
        return x @ self.W.get('lm_head', self.W['embed']).T

    def forward_gpt2(self, ids):
        cfg = self.cfg
        B, T = ids.shape
        C, H = cfg['n_embd'], cfg['n_head']
        D = C // H
        eps = cfg.get('layer_norm_epsilon', 1e-5)
        x = self.W['wte'][ids] + self.W['wpe'][:T][None]
        for i in range(cfg['n_layer']):
            p = f'h.{i}.'
            h = F.layer_norm(x, (C,), self.ones, self.zeros, eps)
            q, k, v = self.lin(p + 'attn.c_attn', h).split(C, dim=-1)
            a = causal_attention(q.view(B, T, H, D), k.view(B, T, H, D), v.view(B, T, H, D)).reshape(B, T, C)
            x = x + self.lin(p + 'attn.c_proj', a)
            h = F.layer_norm(x, (C,), self.ones, self.zeros, eps)
            x = x + self.lin(p + 'mlp.c_proj', F.gelu(self.lin(p + 'mlp.c_fc', h), approximate='tanh'))
        x = F.layer_norm(x, (C,), self.ones, self.zeros, eps)
        return x @ self.W['wte'].T


def hf_config(cfg):
    """The transformers config of a config.json dict: N(0, 0.02) random init, no dropout (as ours)."""
    from transformers import AutoConfig

    fields = {k: v for k, v in cfg.items() if k != 'model_type'}
    config = AutoConfig.for_model(cfg['model_type'], **fields)
    config.initializer_range = 0.02
    for field in ('resid_pdrop', 'embd_pdrop', 'attn_pdrop', 'attention_dropout'):
        if hasattr(config, field):
            setattr(config, field, 0.0)
    return config


class PeftModel:
    """The same step through transformers + PEFT (WHITTLE_PEER_IMPL=peft)."""

    def __init__(self, cfg, r, alpha, seed):
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        torch.manual_seed(seed)
        dtype = getattr(torch, os.environ.get('WHITTLE_PEER_DTYPE', 'float32'))
        base = AutoModelForCausalLM.from_config(hf_config(cfg), torch_dtype=dtype)
        lora = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules='all-linear')
        self.model = get_peft_model(base, lora).to(DEVICE)
        self.model.train()

    def params(self):
        return [p for p in self.model.parameters() if p.requires_grad]

    def forward(self, ids):
        return self.model(input_ids=ids).logits.float()


def sync():
    if DEVICE == 'cuda':
        torch.cuda.synchronize()


def run_case(c):
    cfg = c['config']
    V = cfg['vocab_size']
    B, T = c['B'], c['T']
    impl = PeftModel if os.environ.get('WHITTLE_PEER_IMPL') == 'peft' else Model
    model = impl(cfg, c['r'], c['alpha'], c.get('seed', 1))
    g = torch.Generator().manual_seed(c.get('seed', 1) + 1)
    ids = torch.randint(0, V, (B, T), generator=g).to(DEVICE)
    targets = torch.randint(0, V, (B, T), generator=g).to(DEVICE)
    params = model.params()
    opt = torch.optim.AdamW(params, lr=c.get('lr', 1e-4), weight_decay=0.0)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model.forward(ids)
        loss = F.cross_entropy(logits.view(B * T, V), targets.view(B * T))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    loss = None
    for _ in range(c.get('warmup', 1)):
        loss = step()
    sync()
    times = []
    for _ in range(c.get('steps', 3)):
        t0 = time.perf_counter()
        loss = step()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    log(f'{c["name"]}: {ms:.1f} ms/step')
    return {'name': c['name'], 'ms': ms, 'tokensPerSecond': B * T / ms * 1e3, 'loss': float(loss),
            'device': DEVICE, 'threads': torch.get_num_threads(), 'impl': os.environ.get('WHITTLE_PEER_IMPL', 'manual')}


def main():
    threads = os.environ.get('WHITTLE_PEER_THREADS')
    if threads:  # else PyTorch's own default (physical cores)
        torch.set_num_threads(int(threads))
    cases = json.load(sys.stdin)
    results = [run_case(c) for c in cases]
    json.dump({'environment': peer_environment(DEVICE), 'results': results}, sys.stdout)


if __name__ == '__main__':
    main()
