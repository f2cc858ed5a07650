// The service worker's caching decisions, run in a bare context: which response becomes the
// offline index.html, and what an offline request falls back to.
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';

import { describe, expect, it } from 'vitest';

interface SwDecisions {
  shellCacheKey(path: string, isNavigation: boolean, contentType: string | null): string | null;
  offlineCandidates(path: string, isNavigation: boolean): string[];
}

function loadServiceWorker(): SwDecisions {
  const source = readFileSync(new URL('../../public/sw.js', import.meta.url), 'utf8');
  const context: Record<string, unknown> = { self: { addEventListener: () => {}, registration: { scope: 'http://app.test/' } } };
  // Top-level function declarations of a script become properties of its context.
  runInNewContext(source, context);
  return context as unknown as SwDecisions;
}

describe('service worker caching', () => {
  const sw = loadServiceWorker();

  it('caches only the app page as index.html', () => {
    expect(sw.shellCacheKey('', true, 'text/html; charset=utf-8')).toBe('index.html');
    expect(sw.shellCacheKey('index.html', true, 'text/html')).toBe('index.html');
    // Opening the web manifest in a tab is a navigation too: it is cached as itself.
    expect(sw.shellCacheKey('manifest.webmanifest', true, 'application/manifest+json')).toBe('manifest.webmanifest');
    expect(sw.shellCacheKey('samples/index.json', true, 'application/json')).toBe('samples/index.json');
    // The root answered with something other than HTML (a captive portal's JSON, say) is not the app.
    expect(sw.shellCacheKey('', true, 'application/json')).toBeNull();
    expect(sw.shellCacheKey('', true, null)).toBeNull();
    expect(sw.shellCacheKey('assets/index-abc.js', false, 'text/javascript')).toBe('assets/index-abc.js');
  });

  it('offline, the app page falls back to index.html and other pages to themselves first', () => {
    expect(sw.offlineCandidates('', true)).toEqual(['index.html']);
    expect(sw.offlineCandidates('manifest.webmanifest', true)).toEqual(['manifest.webmanifest', 'index.html']);
    expect(sw.offlineCandidates('assets/index-abc.js', false)).toEqual(['assets/index-abc.js']);
  });
});
