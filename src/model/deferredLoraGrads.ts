/**
 * The LoRA weight gradients (dA, dB) of a layer's groups, taken together: each group's backward
 * leaves them out (`deferGrad`) and hands its members here, and flush() computes them in as few
 * `layerGrad` dispatches as the bindings allow (one per layer when the inputs lie in at most two
 * buffers and the output gradients in at most three). The caller must leave every handed-in
 * tensor (x, dy, u, du) untouched until flush().
 */
import type { BufferBinding, Gpu, Recorder } from '../gpu';
import type { PassSeed } from '../kernels/loraCommon';
import { groupRegion, LAYER_GRAD_DY_BINDINGS, LAYER_GRAD_X_BINDINGS, layerGrad, MAX_LAYER_GRAD_MEMBERS, type GroupMember, type LayerGradMember } from '../kernels/loraGroup';

/** A whole buffer, or a range of one, as an element offset into the whole buffer. */
type At = { buffer: GPUBuffer; offset: number };

function at(b: BufferBinding): At {
  return 'buffer' in b ? { buffer: b.buffer, offset: (b.offset ?? 0) / 4 } : { buffer: b, offset: 0 };
}

/** One group's deferred gradients: what groupBackward would have computed with its GRAD kernel. */
export interface DeferredGroup {
  T: number;
  K: number;
  r: number;
  members: readonly GroupMember[];
  dropoutP: number;
  dropoutPass?: PassSeed;
  scale: number;
  accumulate: boolean;
  x: BufferBinding;
  /** The members' dy at their yOffset (elements from the start of `dy`). */
  dy: BufferBinding;
  /** u and du of member 0; member i's follow i * groupRegion(T, r) floats on. */
  u: BufferBinding;
  du: BufferBinding;
  grads: BufferBinding;
}

interface Batch {
  T: number;
  r: number;
  scale: number;
  dropoutP: number;
  dropoutPass: PassSeed | undefined;
  accumulate: boolean;
  u: GPUBuffer;
  du: GPUBuffer;
  grads: GPUBuffer;
  dy: GPUBuffer[];
  x: GPUBuffer[];
  members: LayerGradMember[];
}

function samePass(a: PassSeed | undefined, b: PassSeed | undefined): boolean {
  return a === b || (a?.values === b?.values && a?.multiplier === b?.multiplier);
}

export class DeferredLoraGrads {
  private readonly groups: DeferredGroup[] = [];

  add(group: DeferredGroup): void {
    this.groups.push(group);
  }

  get size(): number {
    return this.groups.length;
  }

  /** Records the deferred gradients (dispatches counted in `dispatches`) and forgets them. */
  flush(gpu: Gpu, rec: Recorder): void {
    const batches: Batch[] = [];
    for (const g of this.groups) {
      const x = at(g.x);
      const dy = at(g.dy);
      const u = at(g.u);
      const du = at(g.du);
      const grads = at(g.grads).buffer;
      const fits = (b: Batch) =>
        b.T === g.T && b.r === g.r && b.scale === g.scale && b.dropoutP === g.dropoutP && samePass(b.dropoutPass, g.dropoutPass) && b.accumulate === g.accumulate &&
        b.u === u.buffer && b.du === du.buffer && b.grads === grads &&
        b.members.length + g.members.length <= MAX_LAYER_GRAD_MEMBERS &&
        new Set([...b.dy, dy.buffer]).size <= LAYER_GRAD_DY_BINDINGS &&
        new Set([...b.x, x.buffer]).size <= LAYER_GRAD_X_BINDINGS;
      let batch = batches.at(-1);
      if (!batch || !fits(batch)) {
        batch = { T: g.T, r: g.r, scale: g.scale, dropoutP: g.dropoutP, dropoutPass: g.dropoutPass, accumulate: g.accumulate, u: u.buffer, du: du.buffer, grads, dy: [], x: [], members: [] };
        batches.push(batch);
      }
      if (!batch.dy.includes(dy.buffer)) batch.dy.push(dy.buffer);
      if (!batch.x.includes(x.buffer)) batch.x.push(x.buffer);
      const region = groupRegion(g.T, g.r);
      for (const [i, m] of g.members.entries()) {
        batch.members.push({
          outFeatures: m.outFeatures,
          inFeatures: g.K,
          aOffset: m.aOffset,
          bOffset: m.bOffset,
          dy: batch.dy.indexOf(dy.buffer),
          dyOffset: dy.offset + m.yOffset,
          x: batch.x.indexOf(x.buffer),
          xOffset: x.offset,
          uOffset: u.offset + i * region,
          duOffset: du.offset + i * region,
          ...(m.dropoutSeed !== undefined ? { dropoutSeed: m.dropoutSeed } : {}),
        });
      }
    }
    this.groups.length = 0;
    for (const b of batches) {
      layerGrad(gpu, rec, { T: b.T, r: b.r, members: b.members, dy: b.dy, x: b.x, u: b.u, du: b.du, grads: b.grads, scale: b.scale, dropoutP: b.dropoutP, ...(b.dropoutPass ? { dropoutPass: b.dropoutPass } : {}), accumulate: b.accumulate });
    }
  }
}
