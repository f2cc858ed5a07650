/**
 * Splits `threads` one-dimensional work items of `groupSize` threads into a (x, y) grid that
 * respects maxComputeWorkgroupsPerDimension. Shaders recover the index as
 * `gid.y * rowStride + gid.x` and must bound-check it against the real count.
 */
export function grid1d(threads: number, groupSize: number, maxPerDim = 65535): { workgroups: [number, number]; rowStride: number } {
  const groups = Math.ceil(threads / groupSize);
  if (groups <= maxPerDim) return { workgroups: [Math.max(groups, 0), 1], rowStride: groups * groupSize };
  const x = maxPerDim;
  const y = Math.ceil(groups / x);
  if (y > maxPerDim) throw new Error(`grid1d: ${threads} threads do not fit in a ${maxPerDim}^2 grid`);
  return { workgroups: [x, y], rowStride: x * groupSize };
}
