// A training step's micro-batches and their dropout seeds, as the trainer runs them.
import { buildBatch, type Batch, type BatchPlan } from '../data/batching';
import type { ExampleList } from '../data/exampleList';
import type { TokenSequence } from '../data/examples';
import { fmix32 } from '../util/random';

/** The dropout seed of micro-batch `micro` of step `step` (0-based, within the epoch) of epoch `epoch`. */
export function dropoutSeedOf(seed: number, epoch: number, step: number, micro: number): number {
  let h = fmix32((seed ^ 0x2545f491) >>> 0);
  h = fmix32((h + Math.imul(epoch + 1, 0x9e3779b9)) >>> 0);
  h = fmix32((h + Math.imul(step + 1, 0x85ebca77)) >>> 0);
  return fmix32((h + Math.imul(micro + 1, 0xc2b2ae3d)) >>> 0);
}

/** The batch with empty rows (padding, mask 0) appended up to `rows`. */
function padRows(batch: Batch, rows: number, padId: number): Batch {
  const n = rows * batch.T;
  const tokens = new Uint32Array(n).fill(padId);
  const targets = new Uint32Array(n).fill(padId);
  const mask = new Float32Array(n);
  tokens.set(batch.tokens);
  targets.set(batch.targets);
  mask.set(batch.mask);
  return { ...batch, B: rows, tokens, targets, mask };
}

/**
 * A step's micro-batches, all of one shape [rows, plan.T]: the engine accumulates a step's
 * loss totals in the scratch buffers of one batch shape, and one shape also means one set of
 * compiled dispatch sizes (and one recorded pass to replay). A short last micro-batch is filled
 * with empty rows (mask 0). Rows: batchSize, fewer when tokensPerBatch caps them.
 */
export function microBatches(train: ExampleList<TokenSequence>, plan: BatchPlan, o: { batchSize: number; tokensPerBatch: number | undefined; padId: number }): Batch[] {
  const budget = o.tokensPerBatch;
  const rows = Math.max(1, Math.min(o.batchSize, budget === undefined ? Infinity : Math.floor(budget / plan.T)));
  if (plan.examples.length <= rows) return [buildBatch(train, plan, o.padId)];
  const out: Batch[] = [];
  for (let at = 0; at < plan.examples.length; at += rows) {
    const b = buildBatch(train, { examples: plan.examples.slice(at, at + rows), T: plan.T }, o.padId);
    out.push(b.B === rows ? b : padRows(b, rows, o.padId));
  }
  return out;
}
