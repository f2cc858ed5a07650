/**
 * A job's LoRA adapters: the final one (stored in PEFT layout when the job succeeds), any of its
 * checkpoints, or an imported PEFT adapter, loaded onto a leased model or exported as PEFT files.
 */
import { exportPeftAdapter, importPeftAdapter, type PeftExport } from '../formats/peft';
import { blobSource } from '../formats/safetensors';
import { LoraAdapter } from '../model/lora';
import { parseCheckpoint } from '../train/checkpoint';
import type { JobRecord } from './job';
import { JobRunnerError, type JobRecords } from './jobRecords';
import { weightDtypeFor, type ModelPool, type PooledModel } from './modelPool';
import { adapterConfigBlobKey, blobBytes } from './store';

/** Which weights a playground pane generates with. */
export type AdapterRef =
  | { kind: 'base' }
  /** The job's final adapter; for a job still training or paused, its newest checkpoint. */
  | { kind: 'job'; jobId: string }
  | { kind: 'checkpoint'; jobId: string; name: string }
  /** An imported PEFT adapter: adapter_config.json (parsed) and adapter_model.safetensors. */
  | { kind: 'peft'; config: unknown; weights: Blob };

export class JobAdapters {
  constructor(
    private readonly records: JobRecords,
    private readonly pool: ModelPool,
  ) {}

  /**
   * What `{ kind: 'job' }` means now: the job's final adapter when it has one (the job record is
   * returned), else its newest checkpoint's name.
   */
  async resolveJob(jobId: string): Promise<{ final: JobRecord & { adapterKey: string } } | { checkpoint: string }> {
    const job = await this.records.get(jobId);
    if (job.adapterKey) return { final: { ...job, adapterKey: job.adapterKey } };
    const latest = (await this.records.store.checkpoints.list(job.id)).at(-1);
    if (!latest) throw new JobRunnerError(`job ${job.id} has no adapter and no checkpoint yet`);
    return { checkpoint: latest };
  }

  /** The job's adapter in PEFT layout: the final one, or a checkpoint's. */
  async exportPeft(jobId: string, checkpoint?: string): Promise<PeftExport> {
    const job = await this.records.get(jobId);
    const blobs = this.records.store.blobs;
    if (checkpoint === undefined) {
      if (!job.adapterKey) throw new JobRunnerError(`job ${jobId} has no final adapter yet (status ${job.status}); export a checkpoint instead`);
      const model = await blobs.get(job.adapterKey);
      const config = await blobs.get(adapterConfigBlobKey(jobId));
      if (!model || !config) throw new JobRunnerError(`job ${jobId}'s adapter files are missing from the store`);
      return { adapterModel: await blobBytes(model), adapterConfig: JSON.parse(await config.text()) as PeftExport['adapterConfig'] };
    }
    const gpu = await this.pool.gpu();
    const lease = await this.pool.lease(gpu, job.baseModel.source, job.weightDtype ?? weightDtypeFor(gpu, job.dtype), false);
    try {
      const adapter = await this.load(lease, { kind: 'checkpoint', jobId, name: checkpoint });
      try {
        return await exportPeftAdapter(adapter!, { baseModelNameOrPath: job.baseModel.source.name });
      } finally {
        adapter!.destroy();
      }
    } finally {
      this.pool.release(lease);
    }
  }

  /** A fresh adapter on the leased model (null for the base model); the caller destroys it. */
  async load(lease: PooledModel, ref: AdapterRef): Promise<LoraAdapter | null> {
    switch (ref.kind) {
      case 'base':
        return null;
      case 'checkpoint':
        return this.checkpointAdapter(lease, ref.jobId, ref.name);
      case 'peft':
        return importPeftAdapter(lease.gpu, lease.model, { adapterConfig: ref.config, adapterModel: blobSource(ref.weights) });
      case 'job': {
        const resolved = await this.resolveJob(ref.jobId);
        if ('checkpoint' in resolved) return this.checkpointAdapter(lease, ref.jobId, resolved.checkpoint);
        const job = resolved.final;
        const weights = await this.records.store.blobs.get(job.adapterKey);
        const config = await this.records.store.blobs.get(adapterConfigBlobKey(job.id));
        if (!weights || !config) throw new JobRunnerError(`job ${job.id}'s adapter files are missing from the store`);
        return importPeftAdapter(lease.gpu, lease.model, { adapterConfig: JSON.parse(await config.text()), adapterModel: blobSource(weights) });
      }
    }
  }

  private async checkpointAdapter(lease: PooledModel, jobId: string, name: string): Promise<LoraAdapter> {
    const bytes = await this.records.store.checkpoints.load(jobId, name);
    if (!bytes) throw new JobRunnerError(`job ${jobId} has no checkpoint ${name}`);
    const cp = await parseCheckpoint(bytes);
    const adapter = new LoraAdapter(lease.gpu, lease.model.config, lease.model.weights, cp.hyperparameters.lora);
    try {
      adapter.loadTensors((n) => cp.tensors.get(n));
    } catch (e) {
      adapter.destroy();
      throw e;
    }
    return adapter;
  }
}
