/**
 * Benchmark rows and their rendering as a markdown table. No Node modules: the browser's bench
 * page uses this too (the PyTorch peer runner is in peer.ts).
 */

export interface BenchRow {
  suite: string;
  name: string;
  /** Our median time per run in milliseconds (NaN for rows that only report memory). */
  ms: number;
  gflops?: number;
  tokensPerSecond?: number;
  peakBytes?: number;
  /** GPU bytes of one component (memory suite: weights, adapter, workspace). */
  bytes?: number;
  /** The same work on a peer implementation, measured in the same run. */
  peer?: { name: string; ms: number; gflops?: number; tokensPerSecond?: number; blas?: string };
  note?: string;
}

/**
 * What a PyTorch peer ran on, as the peer process itself read it (bench/peers/peer_env.py):
 * recorded in every result file so a slow BLAS cannot pass for a fast one.
 */
export interface PeerEnvironment {
  torch: string;
  device: string;
  threads: number;
  /** 'openblas', 'mkl', 'blis', 'atlas', 'reference' (netlib) or 'unknown'. */
  blas: string;
  /** For the table, e.g. 'OpenBLAS (libopenblasp-r0.3.21.so)'. */
  blasLabel: string;
  /** The BLAS libraries mapped into the peer process (/proc/self/maps). */
  blasLibraries: string[];
  /** BLAS_INFO from torch.__config__.show() (Debian's build says 'generic'). */
  buildBlasInfo: string | null;
  openblasCoretype: string | null;
  openblasNumThreads: string | null;
  /** torch.__config__.show(), verbatim. */
  config: string;
}

/** The peer BLAS column: loud when the peer ran on an unoptimised BLAS. */
export function peerBlasCell(env: PeerEnvironment): string {
  if (env.device !== 'cpu') return `${env.device} (CPU BLAS: ${env.blasLabel})`;
  if (env.blas === 'reference' || env.blas === 'unknown') return `${env.blasLabel}: NOT COMPARABLE, the peer is far slower than an optimised BLAS`;
  return env.blasLabel;
}

function fmt(v: number | undefined, digits = 2): string {
  if (v === undefined || !Number.isFinite(v)) return '';
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  return v.toFixed(digits);
}

export function fmtBytes(b: number | undefined): string {
  if (b === undefined || !Number.isFinite(b)) return '';
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  return `${(b / 1024).toFixed(1)} KiB`;
}

interface Column {
  title: string;
  cell(r: BenchRow): string;
  /** Shown even when every cell is empty. */
  always?: boolean;
}

const COLUMNS: Column[] = [
  { title: 'suite', cell: (r) => r.suite, always: true },
  { title: 'case', cell: (r) => r.name, always: true },
  { title: 'ms', cell: (r) => fmt(r.ms, 3), always: true },
  { title: 'GFLOP/s', cell: (r) => fmt(r.gflops) },
  { title: 'tokens/s', cell: (r) => fmt(r.tokensPerSecond, 1) },
  { title: 'GPU bytes', cell: (r) => fmtBytes(r.bytes) },
  { title: 'peak GPU', cell: (r) => fmtBytes(r.peakBytes) },
  { title: 'peer', cell: (r) => r.peer?.name ?? '' },
  { title: 'peer BLAS', cell: (r) => r.peer?.blas ?? '' },
  { title: 'peer ms', cell: (r) => fmt(r.peer?.ms, 3) },
  { title: 'peer GFLOP/s', cell: (r) => fmt(r.peer?.gflops) },
  { title: 'peer tokens/s', cell: (r) => fmt(r.peer?.tokensPerSecond, 1) },
  {
    title: 'ours/peer speed',
    cell: (r) => (r.peer && Number.isFinite(r.peer.ms) && r.ms > 0 ? `${(r.peer.ms / r.ms).toFixed(2)}x` : ''),
  },
  { title: 'note', cell: (r) => (r.note ?? '').replace(/\|/g, '/') },
];

/** A markdown table of the rows; columns no row fills are left out. */
export function markdownTable(rows: BenchRow[]): string {
  const cols = COLUMNS.filter((c) => c.always || rows.some((r) => c.cell(r) !== ''));
  const lines = [`| ${cols.map((c) => c.title).join(' | ')} |`, `| ${cols.map(() => '---').join(' | ')} |`];
  for (const r of rows) lines.push(`| ${cols.map((c) => c.cell(r)).join(' | ')} |`);
  return lines.join('\n');
}

/** Median of a list of timings. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
