// The app shell: header with brand, navigation and theme toggle, hash-routed pages, and the
// WebGPU help shown above every page when this browser cannot train.
import { useEffect, useRef } from 'react';
import { Logo } from './Logo';
import { NoWebGpu } from './NoWebGpu';
import { GpuPage } from './pages/gpu/GpuPage';
import { CreateJobPage } from './pages/CreateJobPage';
import { FineTuningPage } from './pages/FineTuningPage';
import { ModelsPage } from './pages/ModelsPage';
import { PlaygroundPage } from './pages/PlaygroundPage';
import { hrefFor, useRoute, type PageName, type Route } from './router';
import { useTheme, type ThemeChoice } from './theme';
import { useGpuWorker, type GpuState } from './useGpuWorker';
import { EngineProvider } from './engine';

const NAV: { label: string; route: Route; pages: PageName[] }[] = [
  { label: 'Fine-tuning', route: { page: 'jobs', jobId: null, compare: [] }, pages: ['jobs', 'new-job'] },
  { label: 'Playground', route: { page: 'playground', job: null, checkpoint: null }, pages: ['playground'] },
  { label: 'Models', route: { page: 'models' }, pages: ['models'] },
  { label: 'GPU / About', route: { page: 'about' }, pages: ['about'] },
];

const TITLES: Record<PageName, string> = {
  jobs: 'Fine-tuning',
  'new-job': 'Create a fine-tuning job',
  playground: 'Playground',
  models: 'Models',
  about: 'GPU / About',
};

const NEXT_THEME: Record<ThemeChoice, ThemeChoice> = { system: 'light', light: 'dark', dark: 'system' };
const THEME_ICON: Record<ThemeChoice, string> = { system: '◐', light: '☀', dark: '☾' };

function ThemeToggle() {
  const { choice, setChoice } = useTheme();
  const label = choice === 'system' ? 'System' : choice === 'light' ? 'Light' : 'Dark';
  return (
    <button
      type="button"
      className="button ghost theme-toggle"
      onClick={() => setChoice(NEXT_THEME[choice])}
      aria-label={`Theme: ${label}. Switch to ${NEXT_THEME[choice]}`}
      title={`Theme: ${label} (click for ${NEXT_THEME[choice]})`}
      data-testid="theme-toggle"
      data-theme-choice={choice}
    >
      <span aria-hidden="true">{THEME_ICON[choice]}</span>
      <span className="theme-label">{label}</span>
    </button>
  );
}

function GpuPill({ gpu }: { gpu: GpuState }) {
  const text =
    gpu.status === 'checking'
      ? 'Checking GPU…'
      : gpu.status === 'ready'
        ? gpu.report.adapter.architecture || gpu.report.adapter.vendor || 'WebGPU'
        : 'No WebGPU';
  const kind = gpu.status === 'ready' ? 'ok' : gpu.status === 'checking' ? 'quiet' : 'bad';
  return (
    <a className={`pill ${kind} gpu-pill`} href={hrefFor({ page: 'about' })} title="GPU details and kernel self-test" data-testid="gpu-pill">
      <span className="visually-hidden">GPU: </span>
      {text}
    </a>
  );
}

export function App() {
  const { state, runSelfTest } = useGpuWorker();
  const route = useRoute();
  const gpu = state.gpu;
  const main = useRef<HTMLElement>(null);
  const firstRender = useRef(true);

  useEffect(() => {
    document.title = `${TITLES[route.page]} · Whittle`;
    // After a navigation (not the first load), move focus to the page so screen readers and
    // keyboard users start at its top instead of staying on the link they used.
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    main.current?.focus({ preventScroll: true });
    window.scrollTo({ top: 0 });
  }, [route.page]);

  return (
    <>
      <a className="skip-link" href="#main" onClick={(e) => (e.preventDefault(), main.current?.focus())}>
        Skip to content
      </a>
      <header className="site-header">
        <div className="container header-inner">
          <a className="brand" href={hrefFor({ page: 'jobs', jobId: null, compare: [] })} aria-label="Whittle, fine-tuning jobs">
            <Logo size={34} />
            <span>
              <span className="brand-name">Whittle</span>
              <span className="brand-tag">Fine-tuning studio</span>
            </span>
          </a>
          <nav className="main-nav" aria-label="Main">
            <ul>
              {NAV.map((n) => {
                const current = n.pages.includes(route.page);
                return (
                  <li key={n.label}>
                    <a href={hrefFor(n.route)} aria-current={current ? 'page' : undefined} className={current ? 'nav-link current' : 'nav-link'}>
                      {n.label}
                    </a>
                  </li>
                );
              })}
            </ul>
          </nav>
          <div className="header-tools">
            <GpuPill gpu={gpu} />
            <ThemeToggle />
          </div>
        </div>
      </header>

      <main id="main" className="container page" tabIndex={-1} ref={main} data-page={route.page}>
        {state.lostMessage && (
          <div className="callout danger" role="alert">
            <strong>The GPU device was lost.</strong> {state.lostMessage}{' '}
            <button type="button" className="button small" onClick={() => location.reload()}>
              Reload
            </button>
          </div>
        )}
        {gpu.status === 'unavailable' && <NoWebGpu reason={gpu.reason} message={gpu.message} />}
        {gpu.status === 'error' && <NoWebGpu reason="error" message={gpu.message} />}

        {route.page === 'about' ? (
          <GpuPage state={state} runSelfTest={runSelfTest} />
        ) : (
          <EngineProvider>
            {route.page === 'jobs' && <FineTuningPage jobId={route.jobId} compare={route.compare} />}
            {route.page === 'new-job' && <CreateJobPage from={route.from} sample={route.sample ?? null} />}
            {route.page === 'playground' && <PlaygroundPage job={route.job} checkpoint={route.checkpoint} />}
            {route.page === 'models' && <ModelsPage />}
          </EngineProvider>
        )}
      </main>

      <footer className="site-footer">
        <div className="container">Whittle runs entirely on this device. No account, no upload, no telemetry.</div>
      </footer>
    </>
  );
}
