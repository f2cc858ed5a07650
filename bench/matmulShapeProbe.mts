/**
 * Probe for the CPU plan's matmul on lavapipe: x·Wᵀ f32 (W stored [N, K]), 'rows' (16 threads)
 * against 'rows-shared' and against generated register-tile variants (R rows of C per
 * workgroup, Cn columns per thread, WG threads, every thread loading its own A and B), timed by
 * wall clock and by the process's CPU time beside the FMA probe. Aligned shapes only; every
 * output is compared with 'rows'. Not part of the suites (bench/NOTES.md has its results):
 *
 *   VK_ICD_FILENAMES=... npx tsx --import ./scripts/register-wgsl.mjs bench/matmulShapeProbe.mts [M K N] [variants]
 *
 * variants: comma-separated R:Cn:WG[:U[:F]], U = k unroll in runs of 4 (default 1), F = how A is
 * read: 0 through block_a, 1 by plain indexing, 2 and 3 the same with the loop counter passed
 * through subgroupBroadcastFirst (which does not make lavapipe broadcast the loads).
 */
import common from '../shaders/matmulCommon.wgsl?raw';
import own from '../shaders/matmul.wgsl?raw';
import { acquireGpu, Params, type KernelSpec } from '../src/gpu';
import { matmul, sharedRowsFit } from '../src/kernels/matmul';
import { measureFmaPeak } from '../src/bench/fmaProbe';
import { processCpuMs, timeRecording } from '../src/bench/timing';
import { Rng } from '../src/selftest/compare';

function variant(R: number, Cn: number, U: number, form: number): string {
  const nb = R / 4;
  const name = `probe_${R}_${Cn}_${U}_${form}`;
  const lines: string[] = [];
  lines.push(`@compute @workgroup_size(WG_X, 1, 1)`);
  lines.push(`fn ${name}(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {`);
  lines.push(`  let r0 = wid.y * ${R}u;`);
  lines.push(`  let c0 = (wid.x * WG_X + lid.x) * ${Cn}u;`);
  for (let c = 0; c < Cn; c++) lines.push(`  let sb${c} = p.off_b + (c0 + ${c}u) * p.ldb;`);
  for (let j = 0; j < nb; j++) for (let c = 0; c < Cn; c++) lines.push(`  var acc${j}_${c} = vec4<f32>();`);
  lines.push(`  for (var k0 = 0u; k0 < p.k; k0 += ${4 * U}u) {`);
  for (let u = 0; u < U; u++) {
    const k = form >= 2 ? `ku + ${4 * u}u` : `k0 + ${4 * u}u`;
    if (form >= 2 && u === 0) lines.push(`    let ku = subgroupBroadcastFirst(k0);`);
    for (let c = 0; c < Cn; c++) lines.push(`    let bv${u}_${c} = b_vec(sb${c} + ${k});`);
    for (let j = 0; j < nb; j++) {
      if (form === 0 || form === 2) lines.push(`    { let at = transpose(block_a(p.off_a, r0 + ${4 * j}u, ${k}, false));`);
      else {
        const row = (i: number) => `a[(p.off_a + (r0 + ${4 * j + i}u) * p.lda + ${k}) >> 2u]`;
        lines.push(`    { let at = transpose(mat4x4<f32>(${[0, 1, 2, 3].map(row).join(', ')}));`);
      }
      for (let c = 0; c < Cn; c++) lines.push(`      acc${j}_${c} += at * bv${u}_${c};`);
      lines.push(`    }`);
    }
  }
  lines.push(`  }`);
  for (let j = 0; j < nb; j++)
    for (let c = 0; c < Cn; c++)
      for (let i = 0; i < 4; i++) lines.push(`  c[(r0 + ${4 * j + i}u) * p.ldc + c0 + ${c}u] = acc${j}_${c}[${i}];`);
  lines.push(`}`);
  return lines.join('\n');
}

const args = process.argv.slice(2);
const [M, K, N] = (args.length >= 3 ? args.slice(0, 3).map(Number) : [512, 576, 1536]) as [number, number, number];
const specsArg = args[3] ?? '';
const variants = specsArg.split(',').filter((v) => v).map((s) => s.split(':').map(Number) as [number, number, number, number?, number?]);

const gpu = await acquireGpu();
const rng = new Rng(7);
const x = gpu.upload(rng.f32(M * K));
const w = gpu.upload(rng.f32(N * K));
const yRef = gpu.createBuffer(M * N * 4);
const y = gpu.createBuffer(M * N * 4);
const flops = 2 * M * N * K;

async function time(label: string, record: (rec: import('../src/gpu').Recorder) => void, reps = 5): Promise<string> {
  await timeRecording(gpu, record, label); // compile + warm
  const ms: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = processCpuMs()!;
    ms.push(await timeRecording(gpu, record, label));
    cpu.push(processCpuMs()! - c0);
  }
  ms.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  const med = ms[reps >> 1]!;
  const cmed = cpu[reps >> 1]!;
  return `${label.padEnd(22)} ms ${med.toFixed(1).padStart(7)} (best ${ms[0]!.toFixed(1)})  GFLOP/s ${(flops / med / 1e6).toFixed(2).padStart(6)}  CPU ms ${cmed.toFixed(1).padStart(7)}  GFLOP/CPU-s ${(flops / cmed / 1e6).toFixed(2)}`;
}

const peak = await measureFmaPeak(gpu);
console.log(`FMA probe ${peak.gflops.toFixed(2)} GFLOP/s, CPU ms ${peak.processCpuMs?.toFixed(1)} for ${peak.ms.toFixed(1)} ms`);
const rows16 = { kernel: 'rows', wgX: 16 } as const;
console.log(await time('rows 16', (rec) => matmul(gpu, rec, { a: x, b: w, c: yRef, M, N, K, transB: true, tuning: rows16 })));
const want = await gpu.readF32(yRef);
if (sharedRowsFit(gpu)) {
  console.log(await time('rows-shared', (rec) => matmul(gpu, rec, { a: x, b: w, c: y, M, N, K, transB: true, tuning: { kernel: 'rows-shared' } })));
  const got = await gpu.readF32(y);
  let diff = 0;
  for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
  console.log(`rows-shared max|diff| against rows 16: ${diff}`);
} else console.log('rows-shared: no subgroups of 8 or more here');

const params = new Params()
  .u32(M).u32(N).u32(K).u32(K).u32(K).u32(N).u32(0).u32(0).u32(0).u32(0).u32(0).u32(0).u32(0).f32(1).f32(0)
  .u32(2 | 4 | 8).u32(K).u32(1).u32(0).f32(0).bytes();
for (const [R, Cn, WG, U = 1, form = 0] of variants) {
  const entryPoint = `probe_${R}_${Cn}_${U}_${form}`;
  const spec: KernelSpec = { name: entryPoint, code: (form >= 2 ? 'enable subgroups;\n' : '') + common + own + '\n' + variant(R, Cn, U, form), entryPoint, bindings: ['uniform', 'read', 'read', 'read', 'write'], constants: { WG_X: WG } };
  const t0 = performance.now();
  const line = await time(`R${R} C${Cn} WG${WG} U${U} F${form}`, (rec) => rec.dispatch(spec, { buffers: [x, w, x, y], params, workgroups: [N / (Cn * WG), M / R, 1] }));
  const got = await gpu.readF32(y);
  let diff = 0;
  for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
  console.log(`${line}  max|diff| ${diff}  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
console.log(await time('rows 16 again', (rec) => matmul(gpu, rec, { a: x, b: w, c: yRef, M, N, K, transB: true, tuning: rows16 })));
