// The kernel plan this browser asks the workers for, saved in localStorage (the GPU page sets it).
import type { KernelChoice } from '../worker/trainingProtocol';

export const KERNELS_KEY = 'whittle.kernels';

export const KERNEL_CHOICE_LABELS: Record<KernelChoice, string> = {
  auto: 'Automatic (CPU kernels on software adapters)',
  cpu: 'CPU kernels (no workgroup memory)',
  gpu: 'GPU kernels (tiled through workgroup memory)',
};

/** The saved choice; 'auto' when none is saved, storage is blocked, or the value is unknown. */
export function savedKernelChoice(): KernelChoice {
  try {
    const v = globalThis.localStorage?.getItem(KERNELS_KEY);
    return v && v in KERNEL_CHOICE_LABELS ? (v as KernelChoice) : 'auto';
  } catch {
    return 'auto';
  }
}

/** Saves the choice; false when storage is blocked (the choice then lasts until the page closes). */
export function saveKernelChoice(choice: KernelChoice): boolean {
  try {
    globalThis.localStorage?.setItem(KERNELS_KEY, choice);
    return true;
  } catch {
    return false;
  }
}
