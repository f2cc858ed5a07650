#!/usr/bin/env python3
"""Peer timings for `npm run bench -- kernels`: the same matmul and attention shapes in PyTorch.

Reads a JSON list of cases on stdin, prints a JSON list of {name, ms, gflops} on stdout.
Uses Debian's python3-torch on the CPU (or CUDA when present and WHITTLE_PEER_DEVICE=cuda).
"""
import json
import math
import sys
import time

import torch


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
            elif c['kind'] == 'attention':
                B, T, H, D = c['B'], c['T'], c['Hq'], c['D']
                q = torch.randn(B, H, T, D, device=device)
                k = torch.randn(B, H, T, D, device=device)
                v = torch.randn(B, H, T, D, device=device)
                mask = torch.ones(T, T, dtype=torch.bool, device=device).tril()

                def attn():
                    s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
                    s = s.masked_fill(~mask, float('-inf'))
                    return s.softmax(-1) @ v

                ms = timeit(attn, device)
                flops = c['flops']
            else:
                continue
            out.append({'name': c['name'], 'ms': ms, 'gflops': flops / ms / 1e6})
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main()
