// GPU / About: what this device offers and the kernel self-test (the former capability page).
import type { WorkerState } from '../../useGpuWorker';
import { BenchPanel } from './BenchPanel';
import { AdapterCard, FeaturesCard, LimitsCard } from './GpuCards';
import { KernelPlanCard } from './KernelPlanCard';
import { SelfTestPanel } from './SelfTestPanel';

const WORKFLOW: { step: string; what: string }[] = [
  { step: 'Model', what: 'The embedded compact model, a Hugging Face repo, or a local folder.' },
  { step: 'Data', what: 'Chat JSONL with a validation report and token statistics.' },
  { step: 'Job', what: 'LoRA rank, learning rate, epochs and the rest, with auto defaults.' },
  { step: 'Train', what: 'Live loss and accuracy charts, checkpoints, pause and resume.' },
  { step: 'Compare', what: 'Base and fine-tuned models side by side in a playground.' },
  { step: 'Export', what: 'PEFT adapter, merged model, ONNX.' },
];

interface Props {
  state: WorkerState;
  runSelfTest: () => void;
}

export function GpuPage({ state, runSelfTest }: Props) {
  const gpu = state.gpu;
  return (
    <>
      <section className="intro" aria-labelledby="intro-title">
        <h1 id="intro-title">Fine-tune language models in your browser.</h1>
        <p className="lead">
          Whittle trains LoRA adapters on your own GPU through WebGPU. It works offline and your data never leaves this tab.
          This page shows what your GPU offers and runs the kernel self-test: use it to check a new browser or GPU driver
          before training.
        </p>
      </section>

      {gpu.status === 'checking' && (
        <section className="card checking" aria-live="polite" data-testid="checking">
          <span className="spinner" aria-hidden="true" /> Looking for a WebGPU adapter…
        </section>
      )}

      {gpu.status === 'ready' && (
        <div className="grid">
          <AdapterCard report={gpu.report} />
          <LimitsCard report={gpu.report} />
          <SelfTestPanel state={state.selfTest} canRun={!state.lostMessage} onRun={runSelfTest} />
          <FeaturesCard report={gpu.report} />
          <KernelPlanCard />
          <BenchPanel />
        </div>
      )}

      <section className="roadmap" aria-labelledby="roadmap-title">
        <h2 id="roadmap-title">The workflow</h2>
        <ol className="roadmap-steps">
          {WORKFLOW.map((r, i) => (
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
    </>
  );
}
