import { AdapterCard, FeaturesCard, LimitsCard } from './GpuCards';
import { Logo } from './Logo';
import { NoWebGpu } from './NoWebGpu';
import { SelfTestPanel } from './SelfTestPanel';
import { useGpuWorker } from './useGpuWorker';

const ROADMAP: { step: string; what: string }[] = [
  { step: 'Model', what: 'The embedded compact model, a Hugging Face repo, or a local folder.' },
  { step: 'Data', what: 'Chat JSONL with a validation report and token statistics.' },
  { step: 'Job', what: 'LoRA rank, learning rate, epochs and the rest, with auto defaults.' },
  { step: 'Train', what: 'Live loss and accuracy charts, checkpoints, pause and resume.' },
  { step: 'Compare', what: 'Base and fine-tuned models side by side in a playground.' },
  { step: 'Export', what: 'PEFT adapter, merged model, ONNX.' },
];

export function App() {
  const { state, runSelfTest } = useGpuWorker();
  const gpu = state.gpu;
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="site-header">
        <div className="container header-inner">
          <div className="brand">
            <Logo size={36} />
            <div>
              <span className="brand-name">Whittle</span>
              <span className="brand-tag">Fine-tuning studio</span>
            </div>
          </div>
          <span className="pill quiet">Preview build</span>
        </div>
      </header>

      <main id="main" className="container" tabIndex={-1}>
        <section className="intro" aria-labelledby="intro-title">
          <h1 id="intro-title">Fine-tune language models in your browser.</h1>
          <p className="lead">
            Whittle trains LoRA adapters on your own GPU through WebGPU. It works offline and your data never leaves this
            tab. This preview checks what your GPU offers and runs the kernel self-test; the model picker, trainer and
            dashboard come next.
          </p>
        </section>

        {state.lostMessage && (
          <div className="callout danger" role="alert">
            <strong>The GPU device was lost.</strong> {state.lostMessage}{' '}
            <button type="button" className="button small" onClick={() => location.reload()}>
              Reload
            </button>
          </div>
        )}

        {gpu.status === 'checking' && (
          <section className="card checking" aria-live="polite" data-testid="checking">
            <span className="spinner" aria-hidden="true" /> Looking for a WebGPU adapter…
          </section>
        )}

        {gpu.status === 'unavailable' && <NoWebGpu reason={gpu.reason} message={gpu.message} />}
        {gpu.status === 'error' && <NoWebGpu reason="error" message={gpu.message} />}

        {gpu.status === 'ready' && (
          <div className="grid">
            <AdapterCard report={gpu.report} />
            <LimitsCard report={gpu.report} />
            <SelfTestPanel state={state.selfTest} canRun={!state.lostMessage} onRun={runSelfTest} />
            <FeaturesCard report={gpu.report} />
          </div>
        )}

        <section className="roadmap" aria-labelledby="roadmap-title">
          <h2 id="roadmap-title">Coming next</h2>
          <ol className="roadmap-steps">
            {ROADMAP.map((r, i) => (
              <li key={r.step}>
                <span className="roadmap-num" aria-hidden="true">
                  {i + 1}
                </span>
                <div>
                  <h3>{r.step}</h3>
                  <p>{r.what}</p>
                </div>
              </li>
            ))}
          </ol>
        </section>
      </main>

      <footer className="site-footer">
        <div className="container">Whittle runs entirely on this device. No account, no upload, no telemetry.</div>
      </footer>
    </>
  );
}
