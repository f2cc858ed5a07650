import { describe, expect, it } from 'vitest';
import { BaseGradients, FullParametersError } from '../../src/model/fullParameters';
import { AdamWOptimizer } from '../../src/train/optimizer';
import { expectClose } from '../helpers/compare';
import { getTestGpu } from '../helpers/gpu';
import { openFixtureModel } from '../helpers/model';
import { readGolden } from './golden';

async function open(name: string, dtype: 'f32' | 'f16' = 'f32') {
  const gpu = await getTestGpu();
  return { gpu, ...(await openFixtureModel(name, dtype)) };
}

describe.each(['tiny-llama', 'tiny-qwen2'])('%s full-parameter gradients', (name) => {
  it('match PyTorch for every base weight (embeddings, norms, biases, tied head)', async () => {
    const { gpu, model, config, files } = await open(name);
    const golden = await readGolden(name);
    const [B, T] = golden.shape('tokens') as [number, number];
    const batch = { B, T, tokens: Uint32Array.from(await golden.i32('tokens')), targets: Uint32Array.from(await golden.i32('targets')), mask: await golden.f32('mask') };
    const full = new BaseGradients(gpu, config, model.weights);
    const trained = batch.mask.reduce((s, m) => s + m, 0);
    // Two steps: the second must overwrite, not add to, the first one's gradients.
    for (let i = 0; i < 2; i++) await model.forwardBackward(batch, null, { gradScale: 1 / trained, accumulate: false, full });
    let checked = 0;
    for (const name of files.weights.tensors.keys()) {
      const want = await golden.f32(`fullgrad.${name}`);
      const w = model.weights;
      let got: Float32Array;
      if (name === 'model.embed_tokens.weight') {
        got = await gpu.readF32(full.embedGrad[0]!.buffer as GPUBuffer, want.length);
      } else if (name === 'lm_head.weight') {
        got = await gpu.readF32(full.headGrad[0]!.buffer as GPUBuffer, want.length);
      } else {
        const layer = /^model\.layers\.(\d+)\.(.*)$/.exec(name);
        let buf: GPUBuffer | undefined;
        if (name === 'model.norm.weight') buf = w.finalNorm.w;
        else if (layer) {
          const L = w.layers[Number(layer[1])]!;
          const rest = layer[2]!;
          if (rest === 'input_layernorm.weight') buf = L.norm1.w;
          else if (rest === 'post_attention_layernorm.weight') buf = L.norm2.w;
          else {
            const lin = [...L.attnIn, L.attnOut, ...L.mlpIn, L.mlpOut].find((l) => rest.startsWith(l.name.slice(`model.layers.${layer[1]}.`.length) + '.'))!;
            buf = rest.endsWith('.bias') ? lin.bias! : lin.w;
          }
        }
        got = await gpu.readF32(full.grad(buf!), want.length);
      }
      expectClose(got, want, 1e-4, `${name} grad`);
      checked++;
    }
    expect(checked).toBe(files.weights.tensors.size);
    // One AdamW step over everything moves the loss down.
    const opt = new AdamWOptimizer(gpu, full.tensors());
    const before = (await model.evaluate(batch))!;
    opt.apply({ lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 });
    const after = await model.evaluate(batch);
    expect(after.lossSum).toBeLessThan(before.lossSum);
    opt.destroy();
    full.destroy();
    model.destroy();
  });
});

it('refuses f16 weights and GPT-2 for full-parameter training', async () => {
  const a = await open('tiny-llama', 'f16');
  expect(() => new BaseGradients(a.gpu, a.config, a.model.weights)).toThrow(FullParametersError);
  a.model.destroy();
  const b = await open('tiny-gpt2');
  expect(() => new BaseGradients(b.gpu, b.config, b.model.weights)).toThrow(/Llama family/);
  b.model.destroy();
});
