// Early warning that a job is diverging while its numbers are still finite (NaN and infinity stop
// the job outright: TrainingDivergedError). A learning rate far too high shows as a training loss
// that climbs well above where it started, or a gradient norm that explodes and stays exploded;
// either is reported once, with the advice to lower the learning rate.

/** Steps in a row a symptom must last before it is reported (one bad batch is not divergence). */
export const DIVERGENCE_PATIENCE = 3;
/** The loss counts as risen when it is this many times its starting value... */
export const LOSS_RISE_FACTOR = 1.5;
/** ...and at least this much above it (in nats), so a loss near 0 rising to 0.02 is no alarm. */
export const LOSS_RISE_MIN = 1;
/** The gradient norm counts as exploded at this many times its starting value. */
export const GRAD_EXPLOSION_FACTOR = 100;

export interface StepSignals {
  step: number;
  trainLoss: number;
  gradNorm: number;
  learningRate: number;
}

export class DivergenceWatch {
  private startLoss: number | null = null;
  private startGrad: number | null = null;
  private lossRun = 0;
  private gradRun = 0;
  private lossReported = false;
  private gradReported = false;

  /** Feeds one optimizer step; returns a warning the first time a symptom has lasted long enough. */
  observe(m: StepSignals): string | null {
    if (!Number.isFinite(m.trainLoss) || !Number.isFinite(m.gradNorm)) return null;
    // The first step with trained tokens sets the baseline (a step with none has loss 0).
    if (this.startLoss === null) {
      if (m.trainLoss > 0) {
        this.startLoss = m.trainLoss;
        this.startGrad = m.gradNorm > 0 ? m.gradNorm : null;
      }
      return null;
    }
    this.startGrad ??= m.gradNorm > 0 ? m.gradNorm : null;
    const lossRisen = m.trainLoss > this.startLoss * LOSS_RISE_FACTOR && m.trainLoss > this.startLoss + LOSS_RISE_MIN;
    const gradExploded = this.startGrad !== null && m.gradNorm > this.startGrad * GRAD_EXPLOSION_FACTOR;
    this.lossRun = lossRisen ? this.lossRun + 1 : 0;
    this.gradRun = gradExploded ? this.gradRun + 1 : 0;
    const advice = `Lower the learning rate (it is ${m.learningRate.toExponential(2)}; try a tenth of it).`;
    if (this.lossRun >= DIVERGENCE_PATIENCE && !this.lossReported) {
      this.lossReported = true;
      return (
        `Training looks divergent: the training loss has been above ${LOSS_RISE_FACTOR}x its starting value for ${this.lossRun} steps ` +
        `(${this.startLoss.toFixed(4)} at the start, ${m.trainLoss.toFixed(4)} at step ${m.step}). ${advice}`
      );
    }
    if (this.gradRun >= DIVERGENCE_PATIENCE && !this.gradReported) {
      this.gradReported = true;
      return (
        `Training looks divergent: the gradient norm has been over ${GRAD_EXPLOSION_FACTOR}x its starting value for ${this.gradRun} steps ` +
        `(${this.startGrad!.toExponential(2)} at the start, ${m.gradNorm.toExponential(2)} at step ${m.step}). ${advice}`
      );
    }
    return null;
  }
}

/** What to do after a NaN/infinite step: only a checkpoint that was saved is offered. */
export function divergedAdvice(checkpointStep: number | null): string {
  const restart = checkpointStep === null ? 'start the job again (no checkpoint was saved before it diverged)' : `start again from the checkpoint at step ${checkpointStep}`;
  return `Lower the learning rate (or its multiplier), or keep gradient clipping on, and ${restart}.`;
}
