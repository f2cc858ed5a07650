// Typed errors so callers (UI, CLI, trainer) can tell "no WebGPU" from "device lost" from
// "out of memory" and react differently: show a help page, resume from a checkpoint, shrink a batch.

export class WebGpuUnavailableError extends Error {
  override name = 'WebGpuUnavailableError';
}

export class GpuDeviceLostError extends Error {
  override name = 'GpuDeviceLostError';
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

export class GpuOutOfMemoryError extends Error {
  override name = 'GpuOutOfMemoryError';
}

export class GpuValidationError extends Error {
  override name = 'GpuValidationError';
}
