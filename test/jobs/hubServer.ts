// A stand-in for the Hugging Face Hub over node:http: a model folder served at
// `/<repo>/resolve/<revision>/<file>`, honouring Range requests, that can drop or stall a
// connection after some bytes so downloads can be interrupted on purpose.
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface HubRequest {
  method: string;
  file: string;
  /** The Range header, when sent. */
  range: string | null;
  status: number;
}

export interface HubServer {
  url: string;
  files: Map<string, Uint8Array>;
  requests: HubRequest[];
  /** The next GET of `file` sends `bytes` bytes of its body, then closes the connection. */
  dropOnce(file: string, bytes: number): void;
  /** The next GET of `file` sends `bytes` bytes, then sends nothing more (a tab about to close). */
  stallOnce(file: string, bytes: number): void;
  /** Serve whole files with 200, whatever Range says (a server without Range support). */
  ignoreRange: boolean;
  /** ETag per file; change one to simulate the file changing between attempts. */
  etags: Map<string, string>;
  /** Closes every open connection (ends stalled responses). */
  dropConnections(): void;
  close(): Promise<void>;
}

export async function startHubServer(modelDir: string, repo: string, revision = 'main'): Promise<HubServer> {
  const files = new Map(readdirSync(modelDir).map((n) => [n, new Uint8Array(readFileSync(join(modelDir, n)))] as const));
  const requests: HubRequest[] = [];
  const drops = new Map<string, { bytes: number; stall: boolean }>();
  const etags = new Map([...files.keys()].map((n) => [n, `"${n}-v1"`]));
  const prefix = `/${repo}/resolve/${revision}/`;
  const state = { ignoreRange: false };

  const handler = (req: IncomingMessage, res: import('node:http').ServerResponse) => {
    const path = decodeURIComponent(req.url ?? '');
    const file = path.startsWith(prefix) ? path.slice(prefix.length) : '';
    const body = files.get(file);
    const range = req.headers.range ?? null;
    const record = (status: number) => requests.push({ method: req.method ?? 'GET', file, range, status });
    if (!body) {
      record(404);
      res.writeHead(404).end('Entry not found');
      return;
    }
    let start = 0;
    let end = body.byteLength - 1;
    let status = 200;
    const m = range && !state.ignoreRange ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), end) : end;
      if (start > end) {
        record(416);
        res.writeHead(416, { 'Content-Range': `bytes */${body.byteLength}` }).end();
        return;
      }
      status = 206;
    }
    record(status);
    const headers: Record<string, string> = { 'Content-Length': String(end - start + 1), ETag: etags.get(file)!, 'Accept-Ranges': 'bytes' };
    if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${body.byteLength}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const slice = body.subarray(start, end + 1);
    const drop = drops.get(file);
    if (drop) {
      drops.delete(file);
      res.write(slice.subarray(0, drop.bytes), () => {
        if (!drop.stall) res.socket?.destroy();
      });
      return;
    }
    res.end(slice);
  };

  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    files,
    requests,
    etags,
    get ignoreRange() {
      return state.ignoreRange;
    },
    set ignoreRange(v: boolean) {
      state.ignoreRange = v;
    },
    dropOnce: (file, bytes) => drops.set(file, { bytes, stall: false }),
    stallOnce: (file, bytes) => drops.set(file, { bytes, stall: true }),
    dropConnections: () => server.closeAllConnections(),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
