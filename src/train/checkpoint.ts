/**
 * Training checkpoints: everything needed to continue a job exactly where it stopped, in ONE
 * safetensors file.
 *
 * Tensors (F32): the adapter under PEFT's names (`<peftKey>.lora_A.weight`, `.lora_B.weight`, so
 * the file also loads as an adapter) and AdamW's moments under
 * `optimizer.<peftKey>.lora_A.exp_avg` / `.exp_avg_sq` (and lora_B).
 * Metadata (strings): `format`, `version`, `name`, and JSON for `state` (optimizer step, data
 * position, seed, elapsed time), `hyperparameters` and `metrics` (every step so far).
 *
 * The trainer keeps no hidden random state: data order is a function of (seed, epoch), dropout
 * masks of (seed, epoch, micro-batch index) and validation batches of the step, so the seed and
 * the data position are the whole random state.
 */
import type { Gpu } from '../gpu';
import { parseKernelPlanRecord, type KernelPlanRecord } from '../kernels/matmulPlans';
import { bytesSource, readSafetensorsHeader, readTensor, writeSafetensors, type ByteSource, type TensorToWrite } from '../formats/safetensors';
import type { LoraAdapter, LoraModule, LoraTensor } from '../model/lora';
import type { Hyperparameters } from './hyperparameters';
import type { StepMetrics } from './metrics';
import type { LoraOptimizer } from './optimizer';

export const CHECKPOINT_FORMAT = 'whittle-checkpoint';
export const CHECKPOINT_VERSION = 1;

/** Where a job stands: enough, with the seed, to reproduce everything that follows. */
export interface TrainerState {
  /** Optimizer steps completed, skipped ones included. */
  step: number;
  /**
   * AdamW's step count (its bias correction): `step` less the steps skipped for a non-finite
   * gradient. Absent when equal to `step` (and in checkpoints from before skipping existed).
   */
  optimizerStep?: number;
  /** 0-based epoch of the next micro-batch (= epochs once the job is done). */
  epoch: number;
  /** Index of the next optimizer step (batch plan) within that epoch. */
  batchIndex: number;
  /** Optimizer steps of the whole job. */
  totalSteps: number;
  /** Seed of data order, dropout and (at creation) LoRA initialisation. */
  seed: number;
  /** Training wall time so far, excluding time spent stopped. */
  elapsedMs: number;
  /** True once every epoch has run. */
  finished: boolean;
  /**
   * Whether the job recomputes each layer's activations for the backward ('always') or keeps them
   * ('never'), as resolved when it first ran. Absent in checkpoints from before it was recorded.
   */
  recompute?: 'always' | 'never';
  /** How many layers keep their activations (the others are recomputed); absent in older checkpoints. */
  keptLayers?: number;
  /**
   * The kernel plan the job runs (family and per-shape matmul launches), so a resume uses the
   * same kernels and stays bit-exact whatever the tuning cache holds by then. Absent in
   * checkpoints from before it was recorded: those jobs ran the rules.
   */
  kernelPlan?: KernelPlanRecord;
}

export interface Checkpoint {
  /** Store name, e.g. `step-00000040-epoch-1`. */
  name: string;
  state: TrainerState;
  hyperparameters: Hyperparameters;
  metrics: StepMetrics[];
  /** Adapter weights and AdamW moments, by tensor name (see the file comment). */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** The checkpoint name for a state: sorts by step, so names in order are checkpoints in order. */
export function checkpointName(state: Pick<TrainerState, 'step' | 'epoch' | 'batchIndex'>, epochEnd: boolean): string {
  const step = `step-${String(state.step).padStart(8, '0')}`;
  return epochEnd ? `${step}-epoch-${state.epoch}` : step;
}

function moduleTensors(m: LoraModule): { name: string; buffer: LoraTensor; shape: number[] }[] {
  const a = [m.r, m.linear.inFeatures];
  const b = [m.linear.outFeatures, m.r];
  return [
    { name: `${m.peftKey}.lora_A.weight`, buffer: m.a, shape: a },
    { name: `${m.peftKey}.lora_B.weight`, buffer: m.b, shape: b },
    { name: `optimizer.${m.peftKey}.lora_A.exp_avg`, buffer: m.expAvgA, shape: a },
    { name: `optimizer.${m.peftKey}.lora_A.exp_avg_sq`, buffer: m.expAvgSqA, shape: a },
    { name: `optimizer.${m.peftKey}.lora_B.exp_avg`, buffer: m.expAvgB, shape: b },
    { name: `optimizer.${m.peftKey}.lora_B.exp_avg_sq`, buffer: m.expAvgSqB, shape: b },
  ];
}


/** Reads the adapter and its AdamW moments from the GPU into a checkpoint. */
export async function captureCheckpoint(
  _gpu: Gpu,
  adapter: LoraAdapter,
  info: { name: string; state: TrainerState; hyperparameters: Hyperparameters; metrics: readonly StepMetrics[] },
): Promise<Checkpoint> {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const all = [...adapter.modules.values()].flatMap(moduleTensors);
  const data = await adapter.readMany(all.map((t) => t.buffer));
  for (const [i, t] of all.entries()) tensors.set(t.name, { shape: t.shape, data: data[i]! });
  return { name: info.name, state: { ...info.state }, hyperparameters: info.hyperparameters, metrics: info.metrics.map((m) => ({ ...m })), tensors };
}

/** Writes adapter, moments and AdamW's step count back; shapes must match the adapter. */
export function restoreCheckpoint(_gpu: Gpu, adapter: LoraAdapter, optimizer: LoraOptimizer, checkpoint: Checkpoint): void {
  const names = new Set<string>();
  for (const m of adapter.modules.values()) {
    for (const t of moduleTensors(m)) {
      names.add(t.name);
      const got = checkpoint.tensors.get(t.name);
      if (!got) throw new CheckpointError(`checkpoint ${checkpoint.name} lacks ${t.name}`);
      if (got.shape.length !== t.shape.length || got.shape.some((d, i) => d !== t.shape[i])) {
        throw new CheckpointError(`checkpoint ${checkpoint.name}: ${t.name} is [${got.shape.join(', ')}] but the adapter needs [${t.shape.join(', ')}]`);
      }
    }
  }
  const extra = [...checkpoint.tensors.keys()].filter((n) => !names.has(n));
  if (extra.length) throw new CheckpointError(`checkpoint ${checkpoint.name} has tensors this adapter lacks: ${extra.slice(0, 3).join(', ')}`);
  // All checked before the first write, so a bad file leaves the adapter as it was.
  for (const m of adapter.modules.values()) {
    for (const t of moduleTensors(m)) adapter.write(t.buffer, checkpoint.tensors.get(t.name)!.data);
  }
  // Checkpoints from before skipped steps existed carry no optimizerStep: every step was taken.
  optimizer.step = checkpoint.state.optimizerStep ?? checkpoint.state.step;
}

/** One safetensors file (F32 tensors, JSON metadata). */
export function serializeCheckpoint(checkpoint: Checkpoint): Uint8Array {
  const tensors: TensorToWrite[] = [...checkpoint.tensors].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: t.data }));
  return writeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT,
    version: String(CHECKPOINT_VERSION),
    name: checkpoint.name,
    state: JSON.stringify(checkpoint.state),
    hyperparameters: JSON.stringify(checkpoint.hyperparameters),
    // JSON has no NaN: non-finite values become null and read back as NaN.
    metrics: JSON.stringify(checkpoint.metrics),
  });
}

function parseJson(metadata: Record<string, string>, key: string): unknown {
  const text = metadata[key];
  if (text === undefined) throw new CheckpointError(`not a checkpoint: metadata lacks ${key}`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`checkpoint metadata ${key} is not valid JSON: ${(e as Error).message}`);
  }
}

function checkState(value: unknown): TrainerState {
  const s = value as Partial<TrainerState> | null;
  const ints = ['step', 'epoch', 'batchIndex', 'totalSteps', 'seed'] as const;
  if (!s || typeof s !== 'object') throw new CheckpointError('checkpoint state is not an object');
  for (const k of ints) {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new CheckpointError(`checkpoint state.${k} is ${String(v)}, not a non-negative integer`);
  }
  if (typeof s.elapsedMs !== 'number' || !(s.elapsedMs >= 0)) throw new CheckpointError('checkpoint state.elapsedMs is not a non-negative number');
  if (typeof s.finished !== 'boolean') throw new CheckpointError('checkpoint state.finished is not a boolean');
  const o = s.optimizerStep;
  if (o !== undefined && (typeof o !== 'number' || !Number.isInteger(o) || o < 0 || o > s.step!)) {
    throw new CheckpointError(`checkpoint state.optimizerStep is ${String(o)}, not an integer in [0, step]`);
  }
  if (s.recompute !== undefined && s.recompute !== 'always' && s.recompute !== 'never') throw new CheckpointError(`checkpoint state.recompute is ${String(s.recompute)}, not 'always' or 'never'`);
  const kept = s.keptLayers;
  if (kept !== undefined && (typeof kept !== 'number' || !Number.isInteger(kept) || kept < 0)) throw new CheckpointError(`checkpoint state.keptLayers is ${String(kept)}, not a non-negative integer`);
  if (s.kernelPlan !== undefined && !parseKernelPlanRecord(s.kernelPlan)) throw new CheckpointError('checkpoint state.kernelPlan is not a kernel plan record');
  return s as TrainerState;
}

function revive(m: StepMetrics): StepMetrics {
  const out = { ...m } as Record<string, unknown>;
  for (const [k, v] of Object.entries(out)) if (v === null && k !== 'etaMs') out[k] = NaN;
  return out as unknown as StepMetrics;
}

/** Reads a checkpoint file (bytes or any ByteSource). */
export async function parseCheckpoint(file: Uint8Array | ByteSource): Promise<Checkpoint> {
  const src = file instanceof Uint8Array ? bytesSource(file) : file;
  const header = await readSafetensorsHeader(src);
  const meta = header.metadata;
  if (meta.format !== CHECKPOINT_FORMAT) throw new CheckpointError(`not a Whittle checkpoint (format ${JSON.stringify(meta.format ?? null)})`);
  if (meta.version !== String(CHECKPOINT_VERSION)) throw new CheckpointError(`checkpoint version ${meta.version} is not supported (this build reads ${CHECKPOINT_VERSION})`);
  const state = checkState(parseJson(meta, 'state'));
  const hyperparameters = parseJson(meta, 'hyperparameters') as Hyperparameters;
  const metrics = parseJson(meta, 'metrics');
  if (!Array.isArray(metrics)) throw new CheckpointError('checkpoint metrics is not a list');
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const info of header.tensors.values()) {
    if (info.dtype !== 'F32') throw new CheckpointError(`checkpoint tensor ${info.name} is ${info.dtype}, not F32`);
    tensors.set(info.name, { shape: info.shape, data: await readTensor(src, header, info.name, { as: 'f32' }) });
  }
  return { name: meta.name ?? '', state, hyperparameters, metrics: (metrics as StepMetrics[]).map(revive), tensors };
}

// ---------------------------------------------------------------------------------------------
// Storage

/**
 * Where checkpoints live (memory, Node files, OPFS in the browser). Names are `[A-Za-z0-9._-]+`;
 * list returns a job's names sorted, which is chronological for checkpointName's names.
 */
export interface CheckpointStore {
  save(jobId: string, name: string, bytes: Uint8Array): Promise<void>;
  /** The bytes, or null when there is no such checkpoint. */
  load(jobId: string, name: string): Promise<Uint8Array | null>;
  list(jobId: string): Promise<string[]>;
  delete(jobId: string, name: string): Promise<void>;
}

const SAFE_NAME = /^[A-Za-z0-9._-]+$/;

/** Rejects names that could escape a folder or clash with the store's own files. */
export function checkStoreName(what: 'job id' | 'checkpoint name', name: string): void {
  if (!SAFE_NAME.test(name) || name === '.' || name === '..' || name.length > 200) {
    throw new CheckpointError(`${what} ${JSON.stringify(name)} must be 1-200 characters of A-Z a-z 0-9 . _ - (and not . or ..)`);
  }
}

export class MemoryCheckpointStore implements CheckpointStore {
  private readonly jobs = new Map<string, Map<string, Uint8Array>>();

  async save(jobId: string, name: string, bytes: Uint8Array): Promise<void> {
    checkStoreName('job id', jobId);
    checkStoreName('checkpoint name', name);
    let job = this.jobs.get(jobId);
    if (!job) this.jobs.set(jobId, (job = new Map()));
    job.set(name, bytes.slice());
  }

  async load(jobId: string, name: string): Promise<Uint8Array | null> {
    return this.jobs.get(jobId)?.get(name)?.slice() ?? null;
  }

  async list(jobId: string): Promise<string[]> {
    return [...(this.jobs.get(jobId)?.keys() ?? [])].sort();
  }

  async delete(jobId: string, name: string): Promise<void> {
    this.jobs.get(jobId)?.delete(name);
  }
}

/** Saves, then deletes all but the newest `keep` checkpoints of the job. Returns the deleted names. */
export async function saveAndPrune(store: CheckpointStore, jobId: string, name: string, bytes: Uint8Array, keep = 3): Promise<string[]> {
  await store.save(jobId, name, bytes);
  const names = await store.list(jobId);
  const old = names.slice(0, Math.max(0, names.length - Math.max(1, keep)));
  for (const n of old) await store.delete(jobId, n);
  return old;
}

/** The newest checkpoint of a job, or null when it has none. */
export async function loadLatestCheckpoint(store: CheckpointStore, jobId: string): Promise<Checkpoint | null> {
  const names = await store.list(jobId);
  const last = names[names.length - 1];
  if (last === undefined) return null;
  const bytes = await store.load(jobId, last);
  return bytes ? parseCheckpoint(bytes) : null;
}
