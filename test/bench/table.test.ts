import { describe, expect, it } from 'vitest';

import { markdownTable, peerBlasCell, type BenchRow, type PeerEnvironment } from '../../src/bench/table';

const env = (over: Partial<PeerEnvironment>): PeerEnvironment => ({
  torch: '1.13.0a0',
  device: 'cpu',
  threads: 1,
  blas: 'openblas',
  blasLabel: 'OpenBLAS (libopenblasp-r0.3.21.so)',
  blasLibraries: ['/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so'],
  buildBlasInfo: 'generic',
  openblasCoretype: null,
  openblasNumThreads: null,
  config: '',
  ...over,
});

describe('the peer BLAS column', () => {
  it('names an optimised BLAS as it is', () => {
    expect(peerBlasCell(env({}))).toBe('OpenBLAS (libopenblasp-r0.3.21.so)');
  });

  it('marks a reference or unidentified BLAS as not comparable', () => {
    const reference = env({ blas: 'reference', blasLabel: 'REFERENCE BLAS (netlib, unoptimised) (libblas.so.3.11.0)' });
    expect(peerBlasCell(reference)).toMatch(/^REFERENCE BLAS .*NOT COMPARABLE/);
    expect(peerBlasCell(env({ blas: 'unknown', blasLabel: 'unknown BLAS' }))).toMatch(/NOT COMPARABLE/);
  });

  it('is a column of the markdown table when a row has a peer', () => {
    const row: BenchRow = { suite: 'kernels', name: 'matmul', ms: 2, peer: { name: 'torch 1.13.0a0 f32 CPU (1 threads)', ms: 1, blas: peerBlasCell(env({ blas: 'reference', blasLabel: 'REFERENCE BLAS' })) } };
    const [header, , line] = markdownTable([row]).split('\n');
    const cols = header!.split(' | ');
    const cells = line!.split(' | ');
    const at = cols.indexOf('peer BLAS');
    expect(at).toBeGreaterThan(0);
    expect(cells[at]).toMatch(/NOT COMPARABLE/);
    expect(markdownTable([{ suite: 'kernels', name: 'matmul', ms: 2 }])).not.toContain('peer BLAS');
  });
});
