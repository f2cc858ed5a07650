// "Download as zip" for the export folders (merged model, adapter, ONNX, cluster hand-off).
// Weights barely compress, so binary tensor files are stored and only text is deflated: a
// multi-gigabyte folder zips at copy speed instead of spending minutes in deflate.
// fflate writes classic (non-ZIP64) archives, so each file and the archive stay under 4 GiB.

import { zipSync, type Zippable } from 'fflate';

const STORED = /\.(safetensors|onnx|onnx_data|bin|gguf|pt)$/i;
const ZIP32_LIMIT = 2 ** 32 - 1;

export interface ZipOptions {
  /** Deflate level for text files (0..9, default 6). */
  level?: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
  /** Modification time recorded for every entry (default: now). */
  mtime?: Date;
}

/** Zips a file map (names may contain `/` for folders). */
export function zipFiles(files: ReadonlyMap<string, Uint8Array>, options: ZipOptions = {}): Uint8Array {
  const entries: Zippable = {};
  let total = 0;
  for (const [name, data] of files) {
    if (!name || name.startsWith('/') || name.split('/').includes('..')) throw new Error(`zip: ${JSON.stringify(name)} is not a relative file name`);
    if (data.byteLength > ZIP32_LIMIT) throw new Error(`zip: ${name} is ${data.byteLength} bytes, over the 4 GiB a zip entry can hold`);
    total += data.byteLength;
    entries[name] = [data, { level: STORED.test(name) ? 0 : (options.level ?? 6) }];
  }
  if (total > ZIP32_LIMIT) throw new Error(`zip: ${total} bytes in all, over the 4 GiB a zip can hold; download the files one by one`);
  return zipSync(entries, { mtime: options.mtime ?? new Date() });
}
