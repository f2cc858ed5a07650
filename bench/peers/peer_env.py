"""What the PyTorch peer really ran on, read inside the peer process at run time.

A peer on the netlib reference BLAS is ~30x slower at a matmul than one on OpenBLAS (Debian's
python3-torch is built with BLAS_INFO=generic and calls whatever libblas.so.3 the alternatives
system points at), so every result records which BLAS library the process had mapped, not
which one was meant to be installed.
"""
import os
import re

import torch


def loaded_blas():
    """Paths of the BLAS libraries mapped into this process (after a matmul has run)."""
    a = torch.ones(64, 64)
    (a @ a).sum().item()  # a real GEMM first, in case the library is loaded lazily
    paths = set()
    with open('/proc/self/maps') as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ''
            name = os.path.basename(path)
            if re.search(r'blas|mkl_rt|libmkl|blis|accelerate', name, re.I):
                paths.add(os.path.realpath(path))
    return sorted(paths)


def blas_kind(paths):
    """'openblas', 'mkl', 'blis', 'atlas', 'reference' (netlib) or 'unknown'."""
    joined = ' '.join(paths).lower()
    for kind in ('openblas', 'mkl', 'blis', 'atlas'):
        if kind in joined:
            return kind
    # Debian installs the netlib reference BLAS (package libblas3) under .../blas/.
    if any('/blas/libblas.so' in p for p in paths):
        return 'reference'
    return 'unknown'


def peer_environment(device):
    """The peer's torch version, BLAS backend, thread count and OpenBLAS settings."""
    paths = loaded_blas()
    config = torch.__config__.show()
    build = re.search(r'BLAS_INFO=([^,\s]+)', config)
    built = build.group(1).lower() if build else None
    # A torch built against a named BLAS (PyPI's wheels link MKL statically) calls that one, even
    # when the process maps another (numpy's bundled OpenBLAS); only a 'generic' build (Debian's)
    # calls whatever libblas.so.3 is mapped.
    if built in ('mkl', 'openblas', 'blis'):
        kind = built
        paths = [p for p in paths if built in p.lower()]
    else:
        kind = blas_kind(paths)
    label = {
        'openblas': 'OpenBLAS',
        'mkl': 'MKL' if paths else 'MKL (linked into torch)',
        'blis': 'BLIS',
        'atlas': 'ATLAS',
        'reference': 'REFERENCE BLAS (netlib, unoptimised)',
    }.get(kind, 'unknown BLAS')
    # The implementation's own file (libopenblasp-r0.3.21.so names the version), else libblas.so.3.
    names = sorted((os.path.basename(p) for p in paths), key=lambda n: n.startswith('libblas'))
    lib = names[0] if names else None
    return {
        'torch': torch.__version__,
        'device': device,
        'threads': torch.get_num_threads(),
        'blas': kind,
        'blasLabel': f'{label} ({lib})' if lib else label,
        'blasLibraries': paths,
        'buildBlasInfo': build.group(1) if build else None,
        'openblasCoretype': os.environ.get('OPENBLAS_CORETYPE'),
        'openblasNumThreads': os.environ.get('OPENBLAS_NUM_THREADS'),
        'config': config,
    }
