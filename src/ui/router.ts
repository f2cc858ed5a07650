// Hash routing: the app is one static page (it must work from any static host and offline), so
// the route lives after '#'. Pure parsing and formatting plus one hook; no router library.
import { useSyncExternalStore } from 'react';

export type Route =
  | { page: 'jobs'; jobId: string | null; compare: string[] }
  | { page: 'new-job'; from: string | null; /** A shipped sample (public/samples/index.json id) to prefill the data with. */ sample?: string | null }
  | { page: 'playground'; job: string | null; checkpoint: string | null }
  | { page: 'models' }
  | { page: 'about' };

export type PageName = Route['page'];

function params(query: string): URLSearchParams {
  return new URLSearchParams(query);
}

/** '#/jobs/ftjob-1?compare=a,b' -> a Route; anything unknown is the jobs list. */
export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const [path = '', query = ''] = raw.split('?', 2);
  const parts = path.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
  const q = params(query);
  switch (parts[0]) {
    case 'jobs':
      if (parts[1] === 'new') return q.get('sample') ? { page: 'new-job', from: q.get('from'), sample: q.get('sample') } : { page: 'new-job', from: q.get('from') };
      return {
        page: 'jobs',
        jobId: parts[1] ?? null,
        compare: (q.get('compare') ?? '').split(',').filter(Boolean),
      };
    case 'playground':
      return { page: 'playground', job: q.get('job'), checkpoint: q.get('checkpoint') };
    case 'models':
      return { page: 'models' };
    case 'about':
      return { page: 'about' };
    default:
      return { page: 'jobs', jobId: null, compare: [] };
  }
}

/** The hash for a route (what links put in href). */
export function hrefFor(route: Route): string {
  const q = new URLSearchParams();
  switch (route.page) {
    case 'jobs': {
      if (route.compare.length > 0) q.set('compare', route.compare.join(','));
      const qs = q.toString();
      return `#/jobs${route.jobId ? `/${encodeURIComponent(route.jobId)}` : ''}${qs ? `?${qs.replace(/%2C/g, ',')}` : ''}`;
    }
    case 'new-job':
      if (route.from) q.set('from', route.from);
      if (route.sample) q.set('sample', route.sample);
      return q.toString() ? `#/jobs/new?${q.toString()}` : '#/jobs/new';
    case 'playground':
      if (route.job) q.set('job', route.job);
      if (route.checkpoint) q.set('checkpoint', route.checkpoint);
      return `#/playground${q.toString() ? `?${q.toString()}` : ''}`;
    case 'models':
      return '#/models';
    case 'about':
      return '#/about';
  }
}

export function navigate(route: Route): void {
  const next = hrefFor(route);
  if (location.hash !== next) location.hash = next;
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener('hashchange', onChange);
  return () => window.removeEventListener('hashchange', onChange);
}

/** The current hash; components parse it (a string snapshot keeps useSyncExternalStore stable). */
export function useHash(): string {
  return useSyncExternalStore(subscribe, () => location.hash, () => '');
}

export function useRoute(): Route {
  return parseHash(useHash());
}
