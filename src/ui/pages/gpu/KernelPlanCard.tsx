// The GPU page's kernel-plan setting: which kernel family the training and benchmark workers run.
import { useState } from 'react';
import type { KernelChoice } from '../../../worker/trainingProtocol';
import { KERNEL_CHOICE_LABELS, saveKernelChoice, savedKernelChoice } from '../../kernelPlan';

const CHOICES = Object.keys(KERNEL_CHOICE_LABELS) as KernelChoice[];

export function KernelPlanCard() {
  const [choice, setChoice] = useState<KernelChoice>(savedKernelChoice);
  const [saved, setSaved] = useState(true);
  const change = (next: KernelChoice) => {
    setChoice(next);
    setSaved(saveKernelChoice(next));
  };
  return (
    <section className="card" aria-labelledby="kernels-title" data-testid="kernel-plan">
      <h2 id="kernels-title">Kernels</h2>
      <p className="summary">
        CPU kernels avoid workgroup memory and barriers, which are slow when shaders run on the CPU (SwiftShader, lavapipe); GPU
        kernels tile through workgroup memory as real GPUs want. Both give the same results within their tested bounds.
      </p>
      <label className="field">
        <span className="label">Kernel plan</span>
        <select value={choice} onChange={(e) => change(e.target.value as KernelChoice)} data-testid="kernel-plan-select">
          {CHOICES.map((c) => (
            <option key={c} value={c}>
              {KERNEL_CHOICE_LABELS[c]}
            </option>
          ))}
        </select>
      </label>
      <p className="muted" role="status">
        {saved
          ? 'Benchmarks use it from their next run; training uses it after the page reloads.'
          : 'This browser blocks storage, so the choice cannot be kept: the workers keep the automatic plan.'}
      </p>
    </section>
  );
}
