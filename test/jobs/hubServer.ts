// A stand-in for the Hugging Face Hub over node:http, in the Hub's URL layout: files at
// `/<repo>/resolve/<revision>/<file>` (honouring Range requests; weights may answer with a 302
// to a CDN path, as the Hub does for LFS files), the repo tree API
// `/api/models/<repo>/tree/<revision>` with sizes and LFS entries, the model info API
// `/api/models/<repo>/revision/<revision>`, gated repos that answer 401 without the token,
// 404 for a missing repo, revision or file, and CORS headers as the Hub sends them. A
// connection can be dropped or stalled after some bytes so downloads can be interrupted.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface HubRequest {
  method: string;
  /** The file asked for (resolve/ and CDN paths), '' for API calls and unknown paths. */
  file: string;
  /** The request path. */
  path: string;
  /** The Range header, when sent. */
  range: string | null;
  /** The Authorization header, when sent. */
  authorization: string | null;
  status: number;
}

/** Another repo the server holds. */
export interface HubRepoSpec {
  files: Map<string, Uint8Array>;
  revision?: string;
  /** Answer 401 unless `Authorization: Bearer <token>` carries the server's token. */
  gated?: boolean;
  /** Send *.safetensors from resolve/ as a 302 to a CDN path (the Hub does for LFS files). */
  redirectLfs?: boolean;
}

export interface HubServerOptions {
  repos?: Record<string, HubRepoSpec>;
  /** The access token gated repos accept. */
  token?: string;
}

export interface HubServer {
  url: string;
  files: Map<string, Uint8Array>;
  requests: HubRequest[];
  /** The next GET of `file` sends `bytes` bytes of its body, then closes the connection. */
  dropOnce(file: string, bytes: number): void;
  /** The next GET of `file` sends `bytes` bytes, then sends nothing more (a tab about to close). */
  stallOnce(file: string, bytes: number): void;
  /** Every GET of a file's body waits this long first (so a browser test sees the progress). */
  delayMs: number;
  /** Serve whole files with 200, whatever Range says (a server without Range support). */
  ignoreRange: boolean;
  /** ETag per file; change one to simulate the file changing between attempts. */
  etags: Map<string, string>;
  /** The commit sha each repo's revision points at. */
  commitOf(repo: string): string;
  /** Closes every open connection (ends stalled responses). */
  dropConnections(): void;
  close(): Promise<void>;
}

interface RepoState extends Required<Omit<HubRepoSpec, 'files'>> {
  files: Map<string, Uint8Array>;
  etags: Map<string, string>;
  commit: string;
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'ETag, Content-Range, Content-Length, Accept-Ranges, Link, X-Error-Code, X-Repo-Commit',
};

const sha = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

export async function startHubServer(modelDir: string, repo: string, revision = 'main', options: HubServerOptions = {}): Promise<HubServer> {
  const files = new Map(readdirSync(modelDir).map((n) => [n, new Uint8Array(readFileSync(join(modelDir, n)))] as const));
  const requests: HubRequest[] = [];
  const drops = new Map<string, { bytes: number; stall: boolean }>();
  const etags = new Map([...files.keys()].map((n) => [n, `"${n}-v1"`]));
  const state = { ignoreRange: false, delayMs: 0 };
  const repos = new Map<string, RepoState>([[repo, { files, etags, revision, gated: false, redirectLfs: false, commit: sha(repo).slice(0, 40) }]]);
  for (const [name, spec] of Object.entries(options.repos ?? {})) {
    repos.set(name, {
      files: spec.files,
      etags: new Map([...spec.files.keys()].map((n) => [n, `"${sha(spec.files.get(n)!).slice(0, 16)}"`])),
      revision: spec.revision ?? 'main',
      gated: spec.gated ?? false,
      redirectLfs: spec.redirectLfs ?? false,
      commit: sha(name).slice(0, 40),
    });
  }
  const isLfs = (file: string) => file.endsWith('.safetensors');

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    const path = decodeURIComponent(url.pathname);
    const range = req.headers.range ?? null;
    const authorization = req.headers.authorization ?? null;
    let file = '';
    const record = (status: number) => requests.push({ method: req.method ?? 'GET', file, path, range, authorization, status });
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record(status);
      res.writeHead(status, { ...CORS, 'Content-Type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    if (req.method === 'OPTIONS') {
      record(204);
      res.writeHead(204, { ...CORS, 'Access-Control-Allow-Headers': 'Authorization, Range', 'Access-Control-Allow-Methods': 'GET, HEAD' }).end();
      return;
    }
    const allowed = (r: RepoState) => !r.gated || authorization === `Bearer ${options.token}`;
    const gatedAnswer = (name: string) => json(401, { error: `Access to model ${name} is restricted. You must have access to it and be authenticated to access it. Please log in.` }, { 'X-Error-Code': 'GatedRepo' });

    // The API: /api/models/<owner>/<name>/(tree|revision)/<rev>
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(tree|revision)\/([^/]+)(\/.*)?$/.exec(path);
    if (api) {
      const [, name, kind, rev] = api;
      const r = repos.get(name!);
      if (!r) return json(404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
      if (!allowed(r)) return gatedAnswer(name!);
      if (rev !== r.revision && rev !== r.commit && !(kind === 'revision' && rev === 'HEAD')) return json(404, { error: `Invalid rev id: ${rev}` }, { 'X-Error-Code': 'RevisionNotFound' });
      if (kind === 'revision') {
        return json(200, { _id: sha(name!).slice(0, 24), id: name, sha: r.commit, private: false, gated: r.gated ? 'manual' : false, downloads: 0, likes: 0, lastModified: '2026-01-01T00:00:00.000Z', siblings: [...r.files.keys()].map((rfilename) => ({ rfilename })) });
      }
      const entries = [...r.files].map(([p, bytes]) =>
        isLfs(p)
          ? { type: 'file', oid: sha(`pointer ${p}`).slice(0, 40), size: 135, path: p, lfs: { oid: sha(bytes), size: bytes.byteLength, pointerSize: 135 } }
          : { type: 'file', oid: sha(bytes).slice(0, 40), size: bytes.byteLength, path: p },
      );
      return json(200, entries);
    }

    // Files: /<owner>/<name>/resolve/<rev>/<file>, and the CDN path redirects point at.
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const cdn = /^\/cdn\/([^/]+\/[^/]+)\/(.+)$/.exec(path);
    const name = resolve?.[1] ?? cdn?.[1] ?? '';
    file = resolve?.[3] ?? cdn?.[2] ?? '';
    const r = repos.get(name);
    if (!r || (resolve && resolve[2] !== r.revision && resolve[2] !== r.commit)) {
      record(404);
      res.writeHead(404, { ...CORS, 'X-Error-Code': r ? 'RevisionNotFound' : 'RepoNotFound' }).end(r ? 'Invalid rev id' : 'Repository not found');
      return;
    }
    if (!allowed(r)) return gatedAnswer(name);
    const body = r.files.get(file);
    if (!body) {
      record(404);
      res.writeHead(404, { ...CORS, 'X-Error-Code': 'EntryNotFound' }).end('Entry not found');
      return;
    }
    if (resolve && r.redirectLfs && isLfs(file)) {
      record(302);
      res.writeHead(302, { ...CORS, Location: `/cdn/${name}/${file}`, 'X-Repo-Commit': r.commit, ETag: r.etags.get(file)! }).end();
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
        res.writeHead(416, { ...CORS, 'Content-Range': `bytes */${body.byteLength}` }).end();
        return;
      }
      status = 206;
    }
    record(status);
    const headers: Record<string, string> = { ...CORS, 'Content-Length': String(end - start + 1), ETag: r.etags.get(file)!, 'Accept-Ranges': 'bytes' };
    if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${body.byteLength}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const slice = body.subarray(start, end + 1);
    if (state.delayMs > 0) {
      // Half the body, a pause, then the rest: the progress shows a file part-way.
      const half = slice.subarray(0, slice.byteLength >> 1);
      res.write(half);
      setTimeout(() => res.end(slice.subarray(half.byteLength)), state.delayMs);
      return;
    }
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
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(v: number) {
      state.delayMs = v;
    },
    commitOf: (name) => repos.get(name)!.commit,
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
