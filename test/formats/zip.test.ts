import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { zipFiles } from '../../src/formats/zip';
import { Rng } from '../../src/util/random';

describe('zipFiles', () => {
  it('round-trips a folder with subfolders, storing tensors and deflating text', () => {
    const weights = new Uint8Array(new Rng(3).f32(4096, -1, 1).buffer);
    const config = new TextEncoder().encode(JSON.stringify({ model_type: 'llama', padding: 'x'.repeat(5000) }));
    const files = new Map([
      ['config.json', config],
      ['model.safetensors', weights],
      ['onnx/model.onnx', weights.subarray(0, 1000)],
      ['empty.txt', new Uint8Array(0)],
    ]);
    const zip = zipFiles(files, { mtime: new Date('2025-01-01T00:00:00Z') });
    const back = unzipSync(zip);
    expect(Object.keys(back).sort()).toEqual(['config.json', 'empty.txt', 'model.safetensors', 'onnx/model.onnx']);
    for (const [name, data] of files) expect(Buffer.compare(back[name]!, data), name).toBe(0);
    // Stored tensors: the archive is at least as big as them; the repetitive JSON shrank.
    expect(zip.byteLength).toBeGreaterThan(weights.byteLength + 1000);
    expect(zip.byteLength).toBeLessThan(weights.byteLength + 1000 + config.byteLength / 2);
  });

  it('refuses names that would escape the folder', () => {
    expect(() => zipFiles(new Map([['../x', new Uint8Array(1)]]))).toThrow(/not a relative file name/);
    expect(() => zipFiles(new Map([['/etc/x', new Uint8Array(1)]]))).toThrow(/not a relative file name/);
  });
});
