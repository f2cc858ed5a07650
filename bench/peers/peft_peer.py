#!/usr/bin/env python3
"""The PyTorch + PEFT peer of the one-shot benchmark (bench/oneshot.sh), on CUDA when available.

Reads the cases the benchmark bundle writes (`node whittle-bench.mjs peer-cases ...`, JSON):
  {"train": [{name, config, B, T, r, alpha, lr, steps, warmup, tokens, targets}],
   "generate": [{config, prompt, newTokens, reps, prefillName, decodeName}]}
where `config` is the Hugging Face config.json our suite builds its random model from and
`tokens`/`targets` (train) and `prompt` (generate) are the very token ids our suites use.

Train: transformers' AutoModelForCausalLM.from_config (random init) with PEFT's LoRA
(LoraConfig r, lora_alpha, lora_dropout=0, target_modules='all-linear': every linear layer of
every block, the LM head excluded, as ours), one step = forward, mean cross-entropy over every
position, backward into LoRA only, clip_grad_norm_(1.0), torch.optim.AdamW; median ms over
`steps` timed steps after `warmup` untimed ones, once per base dtype (--dtypes; PEFT keeps the
LoRA weights in float32 on a bfloat16 base, as it does by default).
Generate: the same base model without LoRA, greedy (do_sample=False), batch 1, KV cache:
prefill = time to the first generated token, decode = (time for newTokens - time for 1) /
(newTokens - 1) per token, min_new_tokens forcing every run to the full count.

Prints {"environment": {...}, "rows": [...]} on stdout, each row naming the row of ours it
pairs with (`of`), its suite, dtype, ms and tokens/s. Progress goes to stderr. Exits with 2 and
a one-line reason when torch, transformers or peft cannot be imported.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time

DTYPES = ('float32', 'bfloat16', 'float16')


def log(msg):
    print(f'[peft_peer] {msg}', file=sys.stderr, flush=True)


def parse_args(argv):
    ap = argparse.ArgumentParser(description='PyTorch + PEFT peer for the one-shot Whittle benchmark.')
    ap.add_argument('--cases', default='-', help="the bundle's peer-cases JSON file ('-': stdin, the default)")
    ap.add_argument('--device', default='auto', choices=('auto', 'cuda', 'cpu'), help='auto: cuda when torch sees a GPU, else cpu')
    ap.add_argument('--dtypes', default='float32,bfloat16', help=f'base weight dtypes, comma-separated, of {", ".join(DTYPES)}')
    ap.add_argument('--suites', default='train,generate', help='train and/or generate')
    ap.add_argument('--out', help='also write the JSON here after every case (atomically), so a run cut short keeps its rows')
    args = ap.parse_args(argv)
    args.dtypes = [d.strip() for d in args.dtypes.split(',') if d.strip()]
    for d in args.dtypes:
        if d not in DTYPES:
            ap.error(f"--dtypes: unknown dtype '{d}' (known: {', '.join(DTYPES)})")
    args.suites = [s.strip() for s in args.suites.split(',') if s.strip()]
    for s in args.suites:
        if s not in ('train', 'generate'):
            ap.error(f"--suites: train or generate, got '{s}'")
    return args


def missing_packages():
    """The packages this peer needs that cannot be imported, with why."""
    missing = []
    for name in ('torch', 'transformers', 'peft'):
        try:
            __import__(name)
        except Exception as e:  # ImportError, or a broken install raising something else
            missing.append(f'{name} ({type(e).__name__}: {e})')
    return missing


def pick_device(torch, wanted):
    if wanted == 'cuda' and not torch.cuda.is_available():
        sys.exit('peft_peer: --device cuda, but torch sees no CUDA device')
    if wanted == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return wanted


def build_model(cfg, dtype_name, device, lora=None):
    import torch
    from transformers import AutoModelForCausalLM

    from torch_train import hf_config  # beside this script: the same config as the train peer's PEFT mode

    torch.manual_seed(1)
    config = hf_config(cfg)
    # Initialise on the device itself where torch can (2.0+): random init of a large vocabulary
    # on the CPU would take longer than the timed steps.
    where = torch.device(device) if hasattr(torch.device, '__enter__') else contextlib.nullcontext()
    with where:
        model = AutoModelForCausalLM.from_config(config)
    model = model.to(device=device, dtype=getattr(torch, dtype_name))
    if lora is not None:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=lora['r'], lora_alpha=lora['alpha'], lora_dropout=0.0, target_modules='all-linear'))
    return model


def sync(torch, device):
    if device == 'cuda':
        torch.cuda.synchronize()


def train_case(c, dtype_name, device):
    import torch
    import torch.nn.functional as F

    model = build_model(c['config'], dtype_name, device, lora={'r': c['r'], 'alpha': c['alpha']})
    model.train()
    B, T = c['B'], c['T']
    V = c['config']['vocab_size']
    ids = torch.tensor(c['tokens'], dtype=torch.long, device=device).view(B, T)
    targets = torch.tensor(c['targets'], dtype=torch.long, device=device).view(B, T)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=c.get('lr', 1e-4), weight_decay=0.0)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=ids).logits.float()
        loss = F.cross_entropy(logits.view(B * T, V), targets.view(B * T))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    for _ in range(c.get('warmup', 1)):
        loss = step()
    sync(torch, device)
    times = []
    for _ in range(c.get('steps', 3)):
        t0 = time.perf_counter()
        loss = step()
        sync(torch, device)
        times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() if device == 'cuda' else None
    del model, opt
    if device == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    log(f'train {c["name"]} {dtype_name}: {ms:.1f} ms/step, loss {float(loss):.3f}')
    return {'suite': 'train', 'of': c['name'], 'dtype': dtype_name, 'ms': ms, 'tokensPerSecond': B * T / ms * 1e3,
            'loss': float(loss), 'peakBytes': peak, 'steps': c.get('steps', 3)}


def generate_case(c, dtype_name, device):
    import torch

    model = build_model(c['config'], dtype_name, device)
    model.eval()
    ids = torch.tensor([c['prompt']], dtype=torch.long, device=device)
    n = c['newTokens']

    def run(tokens):
        sync(torch, device)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=tokens,
                                 min_new_tokens=tokens, pad_token_id=0, use_cache=True)
        sync(torch, device)
        if out.shape[1] - ids.shape[1] != tokens:
            raise RuntimeError(f'generated {out.shape[1] - ids.shape[1]} of {tokens} tokens')
        return (time.perf_counter() - t0) * 1e3

    run(n)  # warm-up
    prefill, decode = [], []
    for _ in range(c.get('reps', 3)):
        first = run(1)
        whole = run(n)
        prefill.append(first)
        decode.append((whole - first) / max(1, n - 1))
    p, d = statistics.median(prefill), statistics.median(decode)
    del model
    if device == 'cuda':
        torch.cuda.empty_cache()
    log(f'generate {c["decodeName"]} {dtype_name}: prefill {p:.1f} ms, decode {d:.2f} ms/token')
    return [
        {'suite': 'generate', 'of': c['prefillName'], 'dtype': dtype_name, 'ms': p, 'tokensPerSecond': len(c['prompt']) / p * 1e3},
        {'suite': 'generate', 'of': c['decodeName'], 'dtype': dtype_name, 'ms': d, 'tokensPerSecond': 1e3 / d},
    ]


def environment(device):
    import peft
    import torch
    import transformers

    env = {'torch': torch.__version__, 'transformers': transformers.__version__, 'peft': peft.__version__, 'device': device,
           'deviceName': torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu',
           'cuda': torch.version.cuda, 'threads': torch.get_num_threads(),
           'tf32Matmul': bool(torch.backends.cuda.matmul.allow_tf32) if device == 'cuda' else None}
    try:  # the BLAS the process mapped, as the other peers record it (CPU runs)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from peer_env import peer_environment

        env['peerEnvironment'] = peer_environment(device)
    except Exception as e:  # not needed for a CUDA run; say why it is missing
        env['peerEnvironment'] = f'unavailable: {e}'
    return env


def main(argv):
    args = parse_args(argv)
    missing = missing_packages()
    if missing:
        print(f'peft_peer: cannot run, missing Python packages: {"; ".join(missing)}. It needs torch, transformers '
              'and peft (pip install torch transformers peft); bench/peers/torch_train.py needs only torch.', file=sys.stderr)
        return 2
    import torch

    device = pick_device(torch, args.device)
    with (sys.stdin if args.cases == '-' else open(args.cases)) as f:
        cases = json.load(f)
    log(f'device {device}; dtypes {", ".join(args.dtypes)}; {len(cases.get("train", []))} train and {len(cases.get("generate", []))} generate cases')
    env = environment(device)
    rows = []

    def save():
        if args.out:
            with open(args.out + '.tmp', 'w') as f:
                json.dump({'environment': env, 'rows': rows}, f)
            os.replace(args.out + '.tmp', args.out)

    for dtype_name in args.dtypes:
        if 'train' in args.suites:
            for c in cases.get('train', []):
                rows.append(train_case(c, dtype_name, device))
                save()
        if 'generate' in args.suites:
            for c in cases.get('generate', []):
                rows += generate_case(c, dtype_name, device)
                save()
    json.dump({'environment': env, 'rows': rows}, sys.stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
