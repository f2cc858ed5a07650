import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesSource, readSafetensorsHeader, readTensor } from '../../src/formats/safetensors';

export const FIXTURES = join(__dirname, '..', 'fixtures');

/** The golden tensors scripts/make_golden.py recorded for one tiny model. */
export async function readGolden(model: string) {
  const src = bytesSource(new Uint8Array(readFileSync(join(FIXTURES, 'golden', `${model}.safetensors`))));
  const header = await readSafetensorsHeader(src);
  const f32 = (name: string) => readTensor(src, header, name, { as: 'f32' });
  const i32 = async (name: string) => {
    const raw = await readTensor(src, header, name, { as: 'raw' });
    return new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  };
  const shape = (name: string) => header.tensors.get(name)!.shape;
  const names = [...header.tensors.keys()];
  return { header, f32, i32, shape, names, metadata: header.metadata };
}
