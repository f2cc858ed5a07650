#!/usr/bin/env python3
"""Peer timings for `npm run bench -- kernels`: the same matmul and attention shapes in PyTorch.

Reads a JSON list of cases on stdin, prints {environment, results} on stdout: environment is
peer_env.peer_environment (torch version, the BLAS library loaded, threads, OPENBLAS_CORETYPE),
results a list of {name, ms, gflops, threads}.
Kinds: matmul {M, N, K} (y = x W^T); attention / attention_backward {B, T, Hq, Hkv, D, flops}
(causal, K/V heads repeated for GQA; backward times torch.autograd.grad alone); lora {T, K, N, r,
scale, flops} (y = x W^T + scale (x A^T) B^T, as PEFT computes it).
Uses Debian's python3-torch on the CPU (or CUDA when present and WHITTLE_PEER_DEVICE=cuda);
CPU threads: WHITTLE_PEER_THREADS (default: PyTorch's, one per physical core).
"""
import json
import math
import sys
import time

import torch

from peer_env import peer_environment


def timeit(fn, device, min_s=0.2, max_iter=50):
    fn()  # warm up
    if device == 'cuda':
        torch.cuda.synchronize()
    times = []
    start = time.perf_counter()
    while len(times) < max_iter and (time.perf_counter() - start < min_s or len(times) < 3):
        t0 = time.perf_counter()
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1e3


def main():
    import os
    device = os.environ.get('WHITTLE_PEER_DEVICE', 'cpu')
    threads = os.environ.get('WHITTLE_PEER_THREADS')
    if threads:  # else PyTorch's own default (physical cores)
        torch.set_num_threads(int(threads))
    cases = json.load(sys.stdin)
    out = []
    with torch.no_grad():
        for c in cases:
            if c['kind'] == 'matmul':
                M, N, K = c['M'], c['N'], c['K']
                a = torch.randn(M, K, device=device)
                w = torch.randn(N, K, device=device)  # y = x W^T, as our linear layers
                ms = timeit(lambda: a @ w.T, device)
                flops = 2 * M * N * K
            elif c['kind'] in ('attention', 'attention_backward'):
                B, T, H, D = c['B'], c['T'], c['Hq'], c['D']
                rep = H // c.get('Hkv', H)
                q = torch.randn(B, H, T, D, device=device)
                k = torch.randn(B, H // rep, T, D, device=device)
                v = torch.randn(B, H // rep, T, D, device=device)
                mask = torch.ones(T, T, dtype=torch.bool, device=device).tril()

                def attn():
                    kk = k.repeat_interleave(rep, dim=1)
                    vv = v.repeat_interleave(rep, dim=1)
                    s = (q @ kk.transpose(-1, -2)) / math.sqrt(D)
                    s = s.masked_fill(~mask, float('-inf'))
                    return s.softmax(-1) @ vv

                if c['kind'] == 'attention':
                    ms = timeit(attn, device)
                else:
                    with torch.enable_grad():
                        for t in (q, k, v):
                            t.requires_grad_()
                        o = attn()
                        do = torch.randn_like(o)
                        ms = timeit(lambda: torch.autograd.grad(o, (q, k, v), do, retain_graph=True), device)
                flops = c['flops']
            elif c['kind'] == 'lora':
                T, K, N, r, scale = c['T'], c['K'], c['N'], c['r'], c['scale']
                x = torch.randn(T, K, device=device)
                w = torch.randn(N, K, device=device)
                a = torch.randn(r, K, device=device)
                b = torch.randn(N, r, device=device)
                ms = timeit(lambda: x @ w.T + (x @ a.T) @ b.T * scale, device)
                flops = c['flops']
            else:
                continue
            out.append({'name': c['name'], 'ms': ms, 'gflops': flops / ms / 1e6, 'threads': torch.get_num_threads()})
    json.dump({'environment': peer_environment(device), 'results': out}, sys.stdout)


if __name__ == '__main__':
    main()
