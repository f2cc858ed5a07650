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
  /** Kernels: gflops over the device's peak f32 FMA rate measured by the FMA probe (0..1). */
  peakShare?: number;
  /**
   * Kernels (matmul rows, Node only): CPU milliseconds the whole process used per run, median.
   * On a CPU adapter that is the kernel's own work, which other load on the machine does not
   * stretch the way it stretches the wall-clock and timestamp times.
   */
  processCpuMs?: number;
  tokensPerSecond?: number;
  peakBytes?: number;
  /** GPU bytes of one component (memory suite: weights, adapter, workspace). */
  bytes?: number;
  /** Train: compute dispatches encoded per optimizer step. */
  dispatchesPerStep?: number;
  /** Train: queue submits per optimizer step (readback copies included). */
  submitsPerStep?: number;
  /** Train: reads the CPU waited for per optimizer step. */
  blockingReadsPerStep?: number;
  /** Train: bind groups created per optimizer step (after the warm-up step). */
  bindGroupsPerStep?: number;
  /** Train: CPU milliseconds to record and encode one step, waits for the GPU excluded. */
  encodeMs?: number;
  /**
   * Train, dry runs: process CPU time (all threads) over the step. Nothing runs on the GPU in a
   * dry run, so this is the encoding's CPU cost, unlike wall time less sensitive to other load.
   */
  encodeCpuMs?: number;
  /**
   * Train, real runs: process CPU time (all threads) over the step. On a CPU adapter (lavapipe)
   * the kernels run on this process's threads, so this is the step's work, far less stretched by
   * other jobs on the machine than wall time; on a GPU it is the CPU side only.
   */
  stepCpuMs?: number;
  /** Generate: compute dispatches per decoded token. */
  dispatchesPerToken?: number;
  /** Generate: CPU milliseconds to record and encode one decoded token. */
  encodeMsPerToken?: number;
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
  { title: 'of FMA peak', cell: (r) => (r.peakShare === undefined || !Number.isFinite(r.peakShare) ? '' : `${(100 * r.peakShare).toFixed(1)}%`) },
  { title: 'tokens/s', cell: (r) => fmt(r.tokensPerSecond, 1) },
  { title: 'GPU bytes', cell: (r) => fmtBytes(r.bytes) },
  { title: 'peak GPU', cell: (r) => fmtBytes(r.peakBytes) },
  { title: 'dispatches/step', cell: (r) => fmt(r.dispatchesPerStep, 0) },
  { title: 'submits/step', cell: (r) => fmt(r.submitsPerStep, 0) },
  { title: 'blocking reads/step', cell: (r) => fmt(r.blockingReadsPerStep, 0) },
  { title: 'bind groups/step', cell: (r) => fmt(r.bindGroupsPerStep, 0) },
  { title: 'encode ms', cell: (r) => fmt(r.encodeMs, 1) },
  { title: 'encode CPU ms', cell: (r) => fmt(r.encodeCpuMs, 1) },
  { title: 'step CPU ms', cell: (r) => fmt(r.stepCpuMs, 1) },
  { title: 'dispatches/token', cell: (r) => fmt(r.dispatchesPerToken, 0) },
  { title: 'encode ms/token', cell: (r) => fmt(r.encodeMsPerToken, 2) },
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
