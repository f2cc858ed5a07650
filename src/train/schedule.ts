/**
 * Learning-rate schedules, with the formulas of Hugging Face transformers' optimization.py
 * (get_constant_schedule_with_warmup, get_linear_schedule_with_warmup,
 * get_cosine_schedule_with_warmup), so a job here and the same job in a transformers Trainer
 * step through the same learning rates.
 *
 * `step` is the 0-based index of the optimizer step about to run: transformers' LambdaLR is at
 * current_step = k when optimizer step k (0-based) applies its update, because
 * scheduler.step() runs after optimizer.step(). With warmup the first update therefore has
 * learning rate 0, exactly as there.
 */

export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export const SCHEDULE_KINDS: readonly ScheduleKind[] = ['constant', 'linear', 'cosine'];

export interface ScheduleSpec {
  kind: ScheduleKind;
  /** Peak learning rate (the optimizer's lr). */
  baseLr: number;
  /** Steps of linear warmup from 0 to baseLr. */
  warmupSteps: number;
  /** Optimizer steps of the whole job (num_training_steps). */
  totalSteps: number;
  /** Cosine only: waves over the decay (transformers' num_cycles). Default 0.5: a half wave to 0. */
  numCycles?: number;
}

/** The multiplier of baseLr at 0-based optimizer step `step` (transformers' lr_lambda). */
export function scheduleFactor(spec: ScheduleSpec, step: number): number {
  const { warmupSteps: warmup, totalSteps: total } = spec;
  if (step < warmup) return step / Math.max(1, warmup);
  switch (spec.kind) {
    case 'constant':
      return 1;
    case 'linear':
      return Math.max(0, (total - step) / Math.max(1, total - warmup));
    case 'cosine': {
      const progress = (step - warmup) / Math.max(1, total - warmup);
      const cycles = spec.numCycles ?? 0.5;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
    }
  }
}

/** Learning rate of 0-based optimizer step `step`. */
export function learningRateAt(spec: ScheduleSpec, step: number): number {
  return spec.baseLr * scheduleFactor(spec, step);
}

/** transformers' TrainingArguments.get_warmup_steps: ceil(total x ratio). */
export function warmupStepsFromRatio(totalSteps: number, ratio: number): number {
  return Math.ceil(totalSteps * ratio);
}
