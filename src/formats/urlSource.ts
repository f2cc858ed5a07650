// Model files served over HTTP (the app's own embedded model, a mirror, a local server): read with
// Range requests so a multi-GB safetensors file is fetched tensor by tensor, never whole.

import { ModelDirError, type ModelDir } from './hfModelDir';
import type { ByteSource } from './safetensors';

export class HttpSourceError extends Error {
  override name = 'HttpSourceError';
}

type Fetch = typeof fetch;

/** A Content-Length header as a byte count, or null when absent or unusable. */
function contentLength(res: Response): number | null {
  const raw = res.headers.get('content-length');
  if (raw === null || raw.trim() === '') return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/**
 * A ByteSource over one URL. The size comes from a HEAD request (Content-Length). A HEAD without
 * it is common for compressed text: servers that gzip on the fly send it chunked, and Chromium
 * can answer a HEAD from an HTTP-cache entry a concurrent compressed GET wrote (seen with the
 * service worker's precache racing the model loader). Then one `bytes=0-0` request gives the
 * total in Content-Range, or, from a server without Range support, the whole (small) file.
 * Every request bypasses the HTTP cache ('no-store'): Chromium answered range reads wrongly from
 * entries that the service worker's precache was writing at the same moment. Offline copies
 * live in the service worker's cache, which sees these requests all the same.
 */
export async function urlSource(url: string, fetchImpl: Fetch = fetch): Promise<ByteSource> {
  const head = await fetchImpl(url, { method: 'HEAD', cache: 'no-store' });
  if (!head.ok) throw new HttpSourceError(`${url}: HTTP ${head.status} ${head.statusText}`);
  let size = contentLength(head);
  let whole: Uint8Array | null = null;
  if (size === null) {
    const probe = await fetchImpl(url, { headers: { Range: 'bytes=0-0' }, cache: 'no-store' });
    const total = /\/(\d+)\s*$/.exec(probe.headers.get('content-range') ?? '');
    if (probe.status === 206 && total) {
      size = Number(total[1]);
      await probe.arrayBuffer();
    } else if (probe.ok && probe.status !== 206) {
      whole = new Uint8Array(await probe.arrayBuffer());
      size = whole.length;
    } else {
      throw new HttpSourceError(`${url}: the server sent no Content-Length and no usable Content-Range (HTTP ${probe.status})`);
    }
  }
  const fileSize = size;
  return {
    size: fileSize,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (length === 0) return new Uint8Array(0);
      const end = Math.min(offset + length, fileSize) - 1;
      if (whole) return whole.subarray(offset, end + 1);
      const res = await fetchImpl(url, { headers: { Range: `bytes=${offset}-${end}` }, cache: 'no-store' });
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
