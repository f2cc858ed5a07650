import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeModelDir } from '../../src/formats/nodeByteSource';
import { ADAPTER_MODEL_FILE, exportPeftAdapter, importPeftAdapter } from '../../src/formats/peft';
import { expectClose } from '../helpers/compare';
import { getTestGpu } from '../helpers/gpu';
import { openFixtureModel } from '../helpers/model';
import { FIXTURES, readGolden } from '../model/golden';

// The adapters in test/fixtures/adapters were exported by Whittle (scripts/make_peft_fixture.ts);
// scripts/check_adapter_torch.py applied them in PyTorch, reading the safetensors bytes itself,
// and recorded the logits.
describe.each(['tiny-llama', 'tiny-gpt2'])('%s PEFT adapter applied by PyTorch', (name) => {
  it('gives the logits our engine gives, and re-exports byte for byte', async () => {
    const gpu = await getTestGpu();
    const { model } = await openFixtureModel(name);
    const adapterPath = join(FIXTURES, 'adapters', name);
    const adapterDir = await nodeModelDir(adapterPath);
    const adapter = await importPeftAdapter(gpu, model, adapterDir);
    await adapterDir.close?.();
    const golden = await readGolden(`${name}-peft`);
    const [B, T] = golden.shape('tokens') as [number, number];
    const logits = await model.logits(Uint32Array.from(await golden.i32('tokens')), B, T, adapter);
    expectClose(logits, await golden.f32('logits'), 1e-4, `${name} logits with the PyTorch-applied adapter`);
    expect(adapter.scale).toBeCloseTo(Number(golden.metadata.scale), 12);
    const again = await exportPeftAdapter(adapter, { baseModelNameOrPath: `test/fixtures/models/${name}` });
    expect(Buffer.from(again.adapterModel).equals(readFileSync(join(adapterPath, ADAPTER_MODEL_FILE)))).toBe(true);
    adapter.destroy();
    model.destroy();
  });
});
