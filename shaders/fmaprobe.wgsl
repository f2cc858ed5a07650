// Peak f32 FMA rate probe: every thread runs 8 independent vec4 chains acc = fma(acc, m, c)
// (32 scalar FMAs per loop trip, enough independent work to hide FMA latency) and writes the sum
// of its lanes, so no chain is dead code. m and c come from a uniform, so no compiler can fold
// the chains; with m = +-1 and integer c every value stays an exact f32 integer and the output
// has a closed form (src/kernels/reference/fmaprobe.ts).

const WG: u32 = 64u;

struct ProbeParams {
  iters: u32,      // loop trips per thread (32 FMAs each)
  row_stride: u32, // threads per grid row (index = gid.y * row_stride + gid.x)
  threads: u32,    // real thread count (the grid may be larger)
  _pad: u32,
  m: f32,
  c: f32,
  _pad1: f32,
  _pad2: f32,
}

@group(0) @binding(0) var<uniform> p: ProbeParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn fma_probe(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * p.row_stride + gid.x;
  if (i >= p.threads) {
    return;
  }
  // Start values: the thread's index mod 64 plus the chain's lane (0..31), all exact in f32.
  let base = f32(i & 63u);
  let m = vec4<f32>(p.m);
  let c = vec4<f32>(p.c);
  var a0 = vec4<f32>(base + 0.0, base + 1.0, base + 2.0, base + 3.0);
  var a1 = a0 + 4.0;
  var a2 = a0 + 8.0;
  var a3 = a0 + 12.0;
  var a4 = a0 + 16.0;
  var a5 = a0 + 20.0;
  var a6 = a0 + 24.0;
  var a7 = a0 + 28.0;
  for (var k = 0u; k < p.iters; k++) {
    a0 = fma(a0, m, c);
    a1 = fma(a1, m, c);
    a2 = fma(a2, m, c);
    a3 = fma(a3, m, c);
    a4 = fma(a4, m, c);
    a5 = fma(a5, m, c);
    a6 = fma(a6, m, c);
    a7 = fma(a7, m, c);
  }
  let s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
  out[i] = (s.x + s.y) + (s.z + s.w);
}
