// matmul_rows_shared: matmul_rows (matmul.wgsl) with A shared through the subgroup instead of
// read by every thread, for CPU adapters with subgroups of at least 8. Its own file because
// subgroup builtins need `enable subgroups;` at the top of the module, which a device without
// the feature rejects; the binding module (src/kernels/matmul.ts) prepends that line,
// matmulCommon.wgsl and matmul.wgsl, whose helpers and bindings this kernel uses.
//
// Why: lavapipe treats a storage load as uniform (one scalar load, broadcast to the SIMD lanes)
// only when its offset is a constant or a push constant; any address built from the workgroup
// id or a loop counter is loaded lane by lane, with a bounds check and a branch per lane and
// component. In matmul_rows every one of the 8 threads so loads the same 8 runs of A per 4 k.
// Here thread s of the subgroup loads one run (row s of the 8, or for A stored transposed one
// run of 4 rows at one k) and subgroupBroadcast hands each run to all 8 threads: an extract and
// a splat on lavapipe. Per 4 k a thread then loads 5 runs (1 of A, 4 of B) instead of 12. The
// blocks fed to the multiply-adds are the very values matmul_rows uses, in the same expression,
// so the two kernels' outputs are identical.
//
// The workgroup is 8 threads, one subgroup (the caller checks the device's subgroups are at
// least 8 wide). subgroup_invocation_id, not local_invocation_id, says which run a thread loads,
// since the broadcasts name threads by it.

@compute @workgroup_size(8, 1, 1)
fn matmul_rows_shared(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(subgroup_invocation_id) sid: u32,
) {
  let base_a = p.off_a + wid.z * p.stride_a;
  let base_b = p.off_b + wid.z * p.stride_b;
  let r0 = wid.y * 8u;
  let c0 = (wid.x * 8u + lid.x) * 4u;
  var acc0 = mat4x4<f32>();
  var acc1 = mat4x4<f32>();
  var k_done = 0u;
  if (has(VEC_A) && has(VEC_B)) {
    // This thread's run of A at k0 = 0, as block_a reads it: A(row s, 0..3) with rows past M
    // repeating the last; or, A stored transposed, A(k = s % 4, 4 rows from r0 + 4 * (s / 4)),
    // the last whole run of 4 standing in for runs past M.
    let last = p.m - 1u;
    let s = sid & 7u;
    let ta = has(TRANS_A);
    let tb = has(TRANS_B);
    let sa = select(base_a + min(r0 + s, last) * p.lda, base_a + min(r0 + 4u * (s / 4u), last & ~3u) + (s % 4u) * p.lda, ta);
    let step_a = select(4u, 4u * p.lda, ta);
    let sb = strip_start(base_b, c0, tb);
    let step_b = select(4u * p.ldb, 4u, tb);
    k_done = p.k & ~3u;
    for (var k0 = 0u; k0 < k_done; k0 += 4u) {
      let bt = strip_b(sb, (k0 / 4u) * step_b, tb);
      let run = a_vec(sa + (k0 / 4u) * step_a);
      let la0 = mat4x4<f32>(subgroupBroadcast(run, 0u), subgroupBroadcast(run, 1u), subgroupBroadcast(run, 2u), subgroupBroadcast(run, 3u));
      let la1 = mat4x4<f32>(subgroupBroadcast(run, 4u), subgroupBroadcast(run, 5u), subgroupBroadcast(run, 6u), subgroupBroadcast(run, 7u));
      let lat0 = transpose(la0);
      let lat1 = transpose(la1);
      let at0 = mat4x4<f32>(select(la0[0], lat0[0], ta), select(la0[1], lat0[1], ta), select(la0[2], lat0[2], ta), select(la0[3], lat0[3], ta));
      let at1 = mat4x4<f32>(select(la1[0], lat1[0], ta), select(la1[1], lat1[1], ta), select(la1[2], lat1[2], ta), select(la1[3], lat1[3], ta));
      acc0 += bt * at0;
      acc1 += bt * at1;
    }
  }
  finish_rows(acc0, acc1, k_done, base_a, base_b, r0, c0, wid.z);
}
