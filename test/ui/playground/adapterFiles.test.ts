// Reading the adapter a playground pane picks (pure logic; the pane itself is covered by
// test/browser/playgroundEngines.test.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AdapterFilesError, readPickedAdapter } from '../../../src/ui/playground/adapterFiles';

const DIR = join(__dirname, '..', '..', 'fixtures', 'adapters', 'tiny-llama');
const configText = readFileSync(join(DIR, 'adapter_config.json'), 'utf8');
const weights = readFileSync(join(DIR, 'adapter_model.safetensors'));

/** A File as a folder pick gives it (webkitRelativePath set). */
function inFolder(path: string, data: BlobPart): File {
  const f = new File([data], path.split('/').at(-1)!);
  Object.defineProperty(f, 'webkitRelativePath', { value: path });
  return f;
}

describe('readPickedAdapter', () => {
  it('reads the two files picked directly, and summarises the config', async () => {
    const a = await readPickedAdapter([new File([weights], 'adapter_model.safetensors'), new File([configText], 'adapter_config.json')]);
    expect(a.name).toBe('adapter files');
    expect(a.config).toEqual(JSON.parse(configText));
    expect(a.weights.size).toBe(weights.byteLength);
    expect(a.summary).toBe('LoRA r 4 · 7 modules');
  });

  it('takes a folder’s top-level files over those of checkpoint subfolders, and names the folder', async () => {
    const a = await readPickedAdapter([
      inFolder('my-adapter/checkpoint-10/adapter_model.safetensors', new Uint8Array(3)),
      inFolder('my-adapter/checkpoint-10/adapter_config.json', '{"r": 2}'),
      inFolder('my-adapter/adapter_model.safetensors', weights),
      inFolder('my-adapter/adapter_config.json', configText),
      inFolder('my-adapter/README.md', '# hi'),
    ]);
    expect(a.name).toBe('my-adapter');
    expect(a.weights.size).toBe(weights.byteLength);
    expect((a.config as { r: number }).r).toBe(4);
  });

  it('names what is missing or broken', async () => {
    await expect(readPickedAdapter([])).rejects.toThrow(AdapterFilesError);
    await expect(readPickedAdapter([new File([weights], 'adapter_model.safetensors')])).rejects.toThrow('adapter_config.json is missing');
    await expect(readPickedAdapter([new File(['{}'], 'notes.txt')])).rejects.toThrow('adapter_config.json and adapter_model.safetensors are missing');
    await expect(readPickedAdapter([new File(['{"r": 4,'], 'adapter_config.json'), new File([weights], 'adapter_model.safetensors')])).rejects.toThrow(/adapter_config.json is not valid JSON/);
    await expect(readPickedAdapter([new File(['[1]'], 'adapter_config.json'), new File([weights], 'adapter_model.safetensors')])).rejects.toThrow('not a JSON object');
  });
});
