/* Whittle's service worker: the app works offline once it has been loaded online.
 *
 * - install: fetches sw-manifest.json (written by the build, see vite.config.ts) and caches the
 *   app shell (index.html, the hashed bundle, public files) and the data (the embedded model
 *   folders under models/ and samples/).
 * - fetch: data is served cache-first (it only changes with a new data version); everything else
 *   network-first with the cache as fallback, so a new deploy is picked up as soon as it is online.
 *   Range and HEAD requests are answered from a cached full response (the safetensors loader
 *   reads tensors with `Range: bytes=a-b` and sizes files with HEAD).
 * - activate: deletes Whittle caches of other versions.
 */
'use strict';

// Replaced at build time by {shellVersion, dataVersion}; unbuilt (dev) it is a plain string.
const BUILD = '__WHITTLE_SW_BUILD__';
const VERSIONS = typeof BUILD === 'object' ? BUILD : { shellVersion: 'dev', dataVersion: 'dev' };
const CACHE_PREFIX = 'whittle-';
const SHELL_CACHE = `${CACHE_PREFIX}shell-${VERSIONS.shellVersion}`;
const DATA_CACHE = `${CACHE_PREFIX}data-${VERSIONS.dataVersion}`;
const DATA_PREFIXES = ['models/', 'samples/'];

/** Site-root-relative path of a same-scope URL ('assets/x.js'), or null when out of scope. */
function scopePath(url) {
  const scope = self.registration.scope;
  return url.startsWith(scope) ? url.slice(scope.length).split(/[?#]/)[0] : null;
}

function scopeUrl(path) {
  return new URL(path, self.registration.scope).href;
}

async function cacheAll(cacheName, paths) {
  const cache = await caches.open(cacheName);
  await Promise.all(
    paths.map(async (path) => {
      const url = scopeUrl(path);
      // 'reload': straight from the network, so an HTTP cache cannot hand back an old deploy.
      const response = await fetch(new Request(url, { cache: 'reload' }));
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      await cache.put(url, response);
    }),
  );
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const response = await fetch(scopeUrl('sw-manifest.json'), { cache: 'no-store' });
      if (!response.ok) throw new Error(`sw-manifest.json: HTTP ${response.status}`);
      const manifest = await response.json();
      if (manifest.shellVersion !== VERSIONS.shellVersion || manifest.dataVersion !== VERSIONS.dataVersion) {
        throw new Error('sw-manifest.json is from another build than sw.js');
      }
      // A data cache of this version already filled by an earlier worker is reused as it is.
      const dataCached = await caches.has(DATA_CACHE);
      await Promise.all([cacheAll(SHELL_CACHE, manifest.shell), dataCached ? null : cacheAll(DATA_CACHE, manifest.data)]);
      await self.skipWaiting();
    })().catch(async (error) => {
      // Half-filled caches of a failed install must not be mistaken for complete ones later.
      await Promise.all([caches.delete(SHELL_CACHE), caches.delete(DATA_CACHE)]);
      throw error;
    }),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      const keep = new Set([SHELL_CACHE, DATA_CACHE]);
      for (const name of await caches.keys()) {
        if (name.startsWith(CACHE_PREFIX) && !keep.has(name)) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

/** The first and last byte of a single `bytes=` range, or null (absent, malformed, several ranges). */
function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    return suffix === 0 ? { start: size, end: size - 1 } : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return { start, end };
}

/** Answers GET, HEAD and single-range GET requests from a cached full (200) response. */
async function fromCached(request, cached) {
  const range = request.headers.get('range');
  if (request.method !== 'HEAD' && !range) return cached;
  const blob = await cached.blob();
  const headers = new Headers(cached.headers);
  headers.set('accept-ranges', 'bytes');
  // The stored headers are the server's: its body encoding and hop-by-hop headers (a chunked
  // transfer-encoding beside our content-length) do not describe the response built here.
  for (const h of ['content-encoding', 'transfer-encoding', 'connection', 'keep-alive']) headers.delete(h);
  if (request.method === 'HEAD' || !range) {
    headers.set('content-length', String(blob.size));
    return new Response(null, { status: 200, statusText: 'OK', headers });
  }
  const r = parseRange(range, blob.size);
  if (r === null) {
    // Unparseable or multi-range: the whole file, as a server without Range support would send.
    headers.set('content-length', String(blob.size));
    return new Response(blob, { status: 200, statusText: 'OK', headers });
  }
  if (r.start > r.end || r.start >= blob.size) {
    return new Response(null, { status: 416, statusText: 'Range Not Satisfiable', headers: { 'content-range': `bytes */${blob.size}` } });
  }
  headers.set('content-range', `bytes ${r.start}-${r.end}/${blob.size}`);
  headers.set('content-length', String(r.end - r.start + 1));
  return new Response(blob.slice(r.start, r.end + 1), { status: 206, statusText: 'Partial Content', headers });
}

/**
 * Fetches the full file (never a range, so it can be cached) and stores it. The body is read once
 * into a Blob that both the cache and the page get: answering with a tee'd stream while
 * cache.put drains the other branch stalled big files when the worker took control mid-load.
 * Concurrent requests for one file (a HEAD and a GET, say) share one fetch.
 */
const inFlight = new Map();
function fetchAndCache(cacheName, url) {
  let pending = inFlight.get(url);
  if (!pending) {
    pending = (async () => {
      const response = await fetch(url);
      if (response.status !== 200) return response;
      const blob = await response.blob();
      const init = { status: 200, statusText: response.statusText, headers: new Headers(response.headers) };
      const cache = await caches.open(cacheName);
      await cache.put(url, new Response(blob, init));
      return new Response(blob, init);
    })().finally(() => inFlight.delete(url));
    inFlight.set(url, pending);
  }
  // Each caller gets its own Response over the same bytes.
  return pending.then((r) => r.clone());
}

async function cacheFirst(request, path) {
  const url = scopeUrl(path);
  const cached = await (await caches.open(DATA_CACHE)).match(url);
  if (cached) return fromCached(request, cached);
  const response = await fetchAndCache(DATA_CACHE, url);
  return response.status === 200 ? fromCached(request, response) : response;
}

/** True for the app's own page: the scope root or index.html (the app routes by hash). */
function isAppPage(path) {
  return path === '' || path === 'index.html';
}

/**
 * Where a 200 response to a network-first request is cached. Only the app's own HTML becomes
 * the offline index.html: a navigation to another same-origin file (the web manifest, a JSON
 * file opened in a tab) is cached under its own path, never as the app.
 */
function shellCacheKey(path, isNavigation, contentType) {
  if (isNavigation && isAppPage(path)) return /^text\/html\b/i.test(contentType || '') ? 'index.html' : null;
  return path === '' ? null : path;
}

/** Cached paths to try, in order, for a request made offline. */
function offlineCandidates(path, isNavigation) {
  if (!isNavigation) return [path];
  // The app is one page (hash routing): any navigation can fall back to index.html.
  return isAppPage(path) ? ['index.html'] : [path, 'index.html'];
}

async function networkFirst(request, path, isNavigation) {
  try {
    if (request.method === 'GET' && !request.headers.has('range')) {
      const response = await fetch(request);
      const key = response.status === 200 ? shellCacheKey(path, isNavigation, response.headers.get('content-type')) : null;
      if (key !== null) {
        const cache = await caches.open(SHELL_CACHE);
        await cache.put(scopeUrl(key), response.clone());
      }
      return response;
    }
    return await fetch(request);
  } catch (error) {
    const cache = await caches.open(SHELL_CACHE);
    for (const candidate of offlineCandidates(path, isNavigation)) {
      const cached = await cache.match(scopeUrl(candidate), { ignoreSearch: true });
      if (cached) return fromCached(request, cached);
    }
    throw error;
  }
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' && request.method !== 'HEAD') return;
  const path = scopePath(request.url);
  if (path === null) return; // another origin (the Hugging Face Hub, a mirror): not ours to cache
  if (DATA_PREFIXES.some((p) => path.startsWith(p))) {
    event.respondWith(cacheFirst(request, path));
  } else {
    event.respondWith(networkFirst(request, path, request.mode === 'navigate'));
  }
});
