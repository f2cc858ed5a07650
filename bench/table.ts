/** Benchmark rows and their rendering as a markdown table. */
export interface BenchRow {
  suite: string;
  name: string;
  /** Our median time per run in milliseconds. */
  ms: number;
  gflops?: number;
  tokensPerSecond?: number;
  peakBytes?: number;
  /** The same work on a peer implementation, measured in the same run. */
  peer?: { name: string; ms: number; gflops?: number };
  note?: string;
}

function fmt(v: number | undefined, digits = 2): string {
  if (v === undefined || !Number.isFinite(v)) return '';
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  return v.toFixed(digits);
}

function fmtBytes(b: number | undefined): string {
  if (b === undefined) return '';
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  return `${(b / 1024).toFixed(1)} KiB`;
}

export function markdownTable(rows: BenchRow[]): string {
  const header = ['suite', 'case', 'ms', 'GFLOP/s', 'tokens/s', 'peak GPU', 'peer', 'peer ms', 'peer GFLOP/s', 'ours/peer speed'];
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const r of rows) {
    const ratio = r.peer ? r.peer.ms / r.ms : undefined;
    lines.push(
      `| ${[
        r.suite,
        r.name,
        fmt(r.ms, 3),
        fmt(r.gflops),
        fmt(r.tokensPerSecond, 1),
        fmtBytes(r.peakBytes),
        r.peer?.name ?? '',
        fmt(r.peer?.ms, 3),
        fmt(r.peer?.gflops),
        ratio === undefined ? '' : `${ratio.toFixed(2)}x`,
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

/** Median of a list of timings. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
