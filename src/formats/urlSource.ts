// Model files served over HTTP (the app's own embedded model, a mirror, a local server): read with
// Range requests so a multi-GB safetensors file is fetched tensor by tensor, never whole.

import { ModelDirError, type ModelDir } from './hfModelDir';
import type { ByteSource } from './safetensors';

export class HttpSourceError extends Error {
  override name = 'HttpSourceError';
}

type Fetch = typeof fetch;

/** A ByteSource over one URL. The size comes from a HEAD request (Content-Length). */
export async function urlSource(url: string, fetchImpl: Fetch = fetch): Promise<ByteSource> {
  const head = await fetchImpl(url, { method: 'HEAD' });
  if (!head.ok) throw new HttpSourceError(`${url}: HTTP ${head.status} ${head.statusText}`);
  const size = Number(head.headers.get('content-length'));
  if (!Number.isSafeInteger(size) || size < 0) throw new HttpSourceError(`${url}: the server sent no Content-Length`);
  return {
    size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (length === 0) return new Uint8Array(0);
      const end = Math.min(offset + length, size) - 1;
      const res = await fetchImpl(url, { headers: { Range: `bytes=${offset}-${end}` } });
      if (res.status === 206) return new Uint8Array(await res.arrayBuffer());
      if (res.ok) {
        // A server without Range support sends the whole file: take the slice (small files only).
        const all = new Uint8Array(await res.arrayBuffer());
        return all.subarray(offset, end + 1);
      }
      throw new HttpSourceError(`${url}: HTTP ${res.status} reading bytes ${offset}-${end}`);
    },
  };
}

/** A model folder at `baseUrl` holding the listed files (a static server cannot list folders). */
export function urlModelDir(baseUrl: string, fileNames: readonly string[], fetchImpl: Fetch = fetch): ModelDir {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return {
    fileNames: [...fileNames].sort(),
    async open(name) {
      if (!fileNames.includes(name)) throw new ModelDirError(`no file ${name}`, name);
      return urlSource(base + name, fetchImpl);
    },
  };
}
