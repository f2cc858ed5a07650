import { describe, expect, it } from 'vitest';
import { LoraAdapter, defaultLoraConfig } from '../../src/model/lora';
import { LoraOptimizer } from '../../src/train/optimizer';
import { getTestGpu } from '../helpers/gpu';
import { openFixtureModel } from '../helpers/model';
import { readGolden } from '../model/golden';

describe.each(['tiny-llama', 'tiny-qwen2', 'tiny-gpt2'])('%s training trajectory', (name) => {
  it.each(['always', 'never'] as const)('follows PyTorch AdamW + clip_grad_norm_ for 10 steps within 1e-4 (recompute %s)', async (recompute) => {
    const gpu = await getTestGpu();
    const { model, config } = await openFixtureModel(name);
    model.recompute = recompute;
    const golden = await readGolden(name);
    const hp = JSON.parse(golden.metadata.train!) as { steps: number; lr: number; betas: [number, number]; eps: number; wd: number; clip: number };
    const adapter = new LoraAdapter(gpu, config, model.weights, defaultLoraConfig(config, { r: Number(golden.metadata.rank), alpha: Number(golden.metadata.alpha) }));
    const init = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const n of golden.names) if (n.startsWith('base_model.')) init.set(n, { shape: [...golden.shape(n)], data: await golden.f32(n) });
    adapter.loadTensors((n) => init.get(n));
    const opt = new LoraOptimizer(gpu, adapter);
    const [B, T] = golden.shape('tokens') as [number, number];
    const batch = { B, T, tokens: Uint32Array.from(await golden.i32('tokens')), targets: Uint32Array.from(await golden.i32('targets')), mask: await golden.f32('mask') };
    const trained = batch.mask.reduce((s, m) => s + m, 0);
    const wantLoss = await golden.f32('trajectory_loss');
    const wantNorm = await golden.f32('trajectory_grad_norm');
    const settings = { lr: hp.lr, beta1: hp.betas[0], beta2: hp.betas[1], eps: hp.eps, weightDecay: hp.wd, maxGradNorm: hp.clip };
    for (let step = 0; step < hp.steps; step++) {
      const totals = (await model.forwardBackward(batch, adapter, { gradScale: 1 / trained, accumulate: false }))!;
      opt.apply(settings);
      const loss = totals.lossSum / totals.tokens;
      const norm = await opt.readGradNorm();
      expect(Math.abs(loss - wantLoss[step]!), `loss at step ${step}: ${loss} vs ${wantLoss[step]}`).toBeLessThan(1e-4 * Math.max(1, wantLoss[step]!));
      expect(Math.abs(norm - wantNorm[step]!), `grad norm at step ${step}`).toBeLessThan(1e-4 * Math.max(1, wantNorm[step]!));
    }
    opt.destroy();
    adapter.destroy();
    model.destroy();
  });
});
