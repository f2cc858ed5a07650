export { acquireGpu, Gpu, isCpuAdapter, KERNEL_CHOICES, storageUsage, type AcquireOptions, type AdapterSummary, type GpuCounters, type KernelChoice, type KernelPlan } from './device';
export { BufferPool, bucketSize, type BufferStats } from './bufferPool';
export { PipelineCache, type BindingKind, type KernelSpec } from './pipelineCache';
export { Recorder, SUBMIT_EVERY, type BufferBinding, type DispatchArgs, type KernelTiming, type RecorderOptions } from './recorder';
export { encodeCommands, RecordedCommands, ReplayCache, type Command, type CommandSegment } from './replay';
export { Params } from './params';
export { GpuDeviceLostError, GpuOutOfMemoryError, GpuValidationError, WebGpuUnavailableError } from './errors';
export { DAWN_NODE_FLAGS, findWebGpu, provideNodeWebGpu } from './navigator';
// The CPU conversions GPU code uses to upload f16 weights, re-exported for it.
export { f16BitsToF32, f32ToF16Bits, fromF16Array, toF16Array, bf16BitsToF32Array } from '../util/f16';
export { BindingCache, KEEP_RECORDINGS, UNIFORM_SLOT, type BindingCacheStats } from './bindingCache';
