#!/usr/bin/env python3
"""Applies PEFT adapters exported by Whittle with an independent implementation (PyTorch).

Reads test/fixtures/adapters/<model>/ (adapter_config.json + adapter_model.safetensors, parsed
here from the raw bytes) and the base model in test/fixtures/models/<model>/, applies LoRA the
way PEFT does (scaling alpha/r, or alpha/sqrt(r) with use_rslora; keys
base_model.model.<module>.lora_A/B.weight), and records the logits on fixed tokens in
test/fixtures/golden/<model>-peft.safetensors. test/formats/peftTorch.test.ts checks our
engine against them.

Run with Debian's interpreter, which sees python3-torch:  /usr/bin/python3 scripts/check_adapter_torch.py
"""
import json
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import GOLDEN, MODELS, Lora, gpt2_forward, llama_forward, save_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
ADAPTERS = os.path.join(ROOT, 'test', 'fixtures', 'adapters')

DT = {'F32': (torch.float32, 4), 'F16': (torch.float16, 2), 'BF16': (torch.bfloat16, 2)}


def load_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        dtype, size = DT[info['dtype']]
        a, b = info['data_offsets']
        raw = bytearray(body[a:b])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(raw, dtype=dtype)
        out[name] = t.reshape(info['shape']).double()
    return out


def main():
    torch.set_default_dtype(torch.float64)
    for name in ('tiny-llama', 'tiny-gpt2'):
        cfg = json.load(open(os.path.join(MODELS, name, 'config.json')))
        W = load_safetensors(os.path.join(MODELS, name, 'model.safetensors'))
        acfg = json.load(open(os.path.join(ADAPTERS, name, 'adapter_config.json')))
        assert acfg['peft_type'] == 'LORA' and acfg['bias'] == 'none'
        tensors = load_safetensors(os.path.join(ADAPTERS, name, 'adapter_model.safetensors'))
        arch = 'gpt2' if cfg['model_type'] == 'gpt2' else 'llama'
        prefix = 'base_model.model.' + ('transformer.' if arch == 'gpt2' else '')
        params = {}
        for key, t in tensors.items():
            if not key.endswith('.lora_A.weight'):
                continue
            module = key[len(prefix):-len('.lora_A.weight')]
            params[module] = (t, tensors[key.replace('lora_A', 'lora_B')])
        assert params, 'no LoRA tensors'
        lora = Lora(params, acfg['r'], acfg['lora_alpha'], rslora=acfg.get('use_rslora', False))
        g = torch.Generator().manual_seed(5)
        tokens = torch.randint(0, cfg['vocab_size'], (2, 9), generator=g)
        fwd = gpt2_forward if arch == 'gpt2' else llama_forward
        with torch.no_grad():
            logits = fwd(cfg, W, tokens, lora)
        save_safetensors(os.path.join(GOLDEN, f'{name}-peft.safetensors'),
                         {'tokens': tokens.int(), 'logits': logits.float()},
                         {'scale': repr(lora.scale), 'modules': str(len(params))})
        print(f'{name}: {len(params)} adapted modules, scale {lora.scale:.4f}')


if __name__ == '__main__':
    main()
