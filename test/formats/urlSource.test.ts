import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadHfModelDir } from '../../src/formats/hfModelDir';
import { HttpSourceError, urlModelDir, urlSource } from '../../src/formats/urlSource';

const DIR = join(__dirname, '..', 'fixtures', 'models', 'tiny-llama');
let server: Server;
let base = '';
const ranges: string[] = [];

beforeAll(async () => {
  // A static server with Range support, like the app's own (Vite) or a CDN.
  server = createServer((req, res) => {
    let path = join(DIR, decodeURIComponent(req.url!.slice(1)));
    let size: number;
    const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
    // `/chunked/...`: HEAD without Content-Length, as gzip-on-the-fly servers (and Chromium's
    // HTTP cache after a compressed GET) answer. `/norange/...`: that, and no Range support.
    const chunked = req.url!.startsWith('/chunked/') || req.url!.startsWith('/norange/');
    const noRange = req.url!.startsWith('/norange/');
    if (chunked) path = join(DIR, decodeURIComponent(req.url!.slice(req.url!.indexOf('/', 1) + 1)));
    try {
      size = statSync(path).size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': size }).end();
    } else if (m && noRange) {
      ranges.push(`ignored ${req.headers.range!}`);
      res.writeHead(200);
      createReadStream(path).pipe(res);
    } else if (m) {
      ranges.push(req.headers.range!);
      const [start, end] = [Number(m[1]), Math.min(Number(m[2]), size - 1)];
      res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${size}` });
      createReadStream(path, { start, end }).pipe(res);
    } else {
      res.writeHead(200, { 'content-length': size });
      createReadStream(path).pipe(res);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('urlSource', () => {
  it('reads byte ranges with Range requests', async () => {
    const src = await urlSource(`${base}model.safetensors`);
    const whole = readFileSync(join(DIR, 'model.safetensors'));
    expect(src.size).toBe(whole.length);
    expect([...(await src.read(100, 17))]).toEqual([...whole.subarray(100, 117)]);
    expect(ranges).toContain('bytes=100-116');
  });

  it('loads a model folder over HTTP, fetching only headers up front', async () => {
    ranges.length = 0;
    const dir = urlModelDir(base, ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']);
    const files = await loadHfModelDir(dir);
    expect((files.config as { model_type: string }).model_type).toBe('llama');
    expect(files.weights.has('model.embed_tokens.weight')).toBe(true);
    const emb = await files.weights.read('model.embed_tokens.weight', { as: 'f32' });
    expect(emb.length).toBe(320 * 48);
    // The weights file was never fetched whole: every read was a range.
    const size = statSync(join(DIR, 'model.safetensors')).size;
    for (const r of ranges) {
      const [, a, b] = /bytes=(\d+)-(\d+)/.exec(r)!;
      expect(Number(b) - Number(a) + 1).toBeLessThan(size);
    }
  });

  it('says which URL failed', async () => {
    await expect(urlSource(`${base}missing.safetensors`)).rejects.toThrow(HttpSourceError);
    await expect(urlSource(`${base}missing.safetensors`)).rejects.toThrow(/missing\.safetensors: HTTP 404/);
  });

  it('finds the size when HEAD has no Content-Length: from Content-Range, or from the whole file', async () => {
    const whole = readFileSync(join(DIR, 'tokenizer.json'));
    ranges.length = 0;
    const viaRange = await urlSource(`${base}chunked/tokenizer.json`);
    expect(viaRange.size).toBe(whole.length);
    expect(ranges).toEqual(['bytes=0-0']);
    expect(Buffer.from(await viaRange.read(10, 200)).equals(whole.subarray(10, 210))).toBe(true);

    ranges.length = 0;
    const noRange = await urlSource(`${base}norange/tokenizer.json`);
    expect(noRange.size).toBe(whole.length);
    expect(Buffer.from(await noRange.read(whole.length - 7, 50)).equals(whole.subarray(whole.length - 7))).toBe(true);
    // The body the probe brought back serves every read: one request in all.
    expect(ranges).toEqual(['ignored bytes=0-0']);
  });
});
