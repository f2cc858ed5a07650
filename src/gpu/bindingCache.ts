/**
 * Bind groups and uniform parameters kept across recordings, so that a repeated step (the same
 * shape, the same plan) creates no bind group and writes no uniform: creating bind groups was
 * most of the CPU cost of encoding a training step (15-40 µs each on lavapipe, thousands a step).
 *
 * Uniforms are content-addressed: equal parameter bytes share one 256-byte slot of a few large
 * uniform buffers, written once with queue.writeBuffer when the slot is filled. Bind groups are
 * keyed by pipeline, bound buffer ranges (by buffer identity) and uniform slot. Entries unused for
 * KEEP_RECORDINGS recordings are dropped (values that change every step, such as a learning rate
 * in a uniform, would otherwise pile up), and their slots reused: a slot is refilled only after
 * the commands that read its old bytes were submitted, and writeBuffer is ordered after them.
 * Slots that a recorded command list binds (see replay.ts) are pinned and never swept.
 */
import type { BufferPool } from './bufferPool';

/** Bytes of the smallest uniform slot: WebGPU's largest minUniformBufferOffsetAlignment. */
export const UNIFORM_SLOT = 256;
/** Bytes per uniform buffer; larger parameter blocks get slots of 512, 1024, ... bytes. */
const CHUNK_BYTES = 65536;
/** Recordings an unused entry survives. */
export const KEEP_RECORDINGS = 32;
const SWEEP_EVERY = 8;

interface UniformSlot {
  chunk: number;
  offset: number;
  slotBytes: number;
  lastUsed: number;
}

/** Free slots by slot size (a power of two, at least UNIFORM_SLOT). */
interface SlotFree {
  chunk: number;
  offset: number;
  slotBytes: number;
}

interface CachedGroup {
  group: GPUBindGroup;
  lastUsed: number;
}

export interface BindingCacheStats {
  bindGroups: number;
  uniformSlots: number;
  uniformBytes: number;
  /** Uniform slots pinned by recorded command lists. */
  pinnedSlots: number;
}

export class BindingCache {
  private epoch = 0;
  private readonly uniforms = new Map<string, UniformSlot>();
  private readonly groups = new Map<string, CachedGroup>();
  private readonly chunks: GPUBuffer[] = [];
  private readonly freeSlots = new Map<number, SlotFree[]>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  /** Uniform slots (by content key) that recorded command lists still bind: never swept. */
  private readonly pinned = new Map<string, number>();
  /** Counts clear()s: command lists recorded under an older generation bind dead objects. */
  generation = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly pool: BufferPool,
  ) {}

  /** A stable id for a buffer object (a new object never shares one). */
  bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) this.bufferIds.set(buffer, (id = this.nextBufferId++));
    return id;
  }

  /**
   * The slot holding these parameter bytes, filled now if no slot holds them yet. `content` is
   * the key to pin() it with.
   */
  uniform(bytes: Uint8Array): { buffer: GPUBuffer; offset: number; key: string; content: string } {
    if (bytes.byteLength > CHUNK_BYTES) throw new Error(`uniform parameters of ${bytes.byteLength} bytes exceed ${CHUNK_BYTES}`);
    // Params pads to 16 bytes, so the bytes are whole u16 pairs: one char per u16.
    const key = String.fromCharCode(...new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1));
    let slot = this.uniforms.get(key);
    if (!slot) {
      const slotBytes = Math.max(UNIFORM_SLOT, 2 ** Math.ceil(Math.log2(bytes.byteLength)));
      const free = this.freeSlots.get(slotBytes)?.pop() ?? this.newChunk(slotBytes);
      slot = { ...free, lastUsed: this.epoch };
      this.device.queue.writeBuffer(this.chunks[slot.chunk]!, slot.offset, bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.uniforms.set(key, slot);
    }
    slot.lastUsed = this.epoch;
    return { buffer: this.chunks[slot.chunk]!, offset: slot.offset, key: `${slot.chunk}:${slot.offset}`, content: key };
  }

  /** Keeps these uniform slots (content keys from uniform()) filled until unpin(): a recorded command list binds them. */
  pin(contents: Iterable<string>): void {
    for (const c of contents) this.pinned.set(c, (this.pinned.get(c) ?? 0) + 1);
  }

  unpin(contents: Iterable<string>): void {
    for (const c of contents) {
      const n = this.pinned.get(c);
      if (n === undefined) continue; // cleared meanwhile
      if (n > 1) this.pinned.set(c, n - 1);
      else this.pinned.delete(c);
    }
  }

  /** The cached bind group under `key`, made by `create` (and counted) on a miss. */
  bindGroup(key: string, create: () => GPUBindGroup): { group: GPUBindGroup; created: boolean } {
    const hit = this.groups.get(key);
    if (hit) {
      hit.lastUsed = this.epoch;
      return { group: hit.group, created: false };
    }
    const group = create();
    this.groups.set(key, { group, lastUsed: this.epoch });
    return { group, created: true };
  }

  /** Marks the end of one recording; every few, drops what the last KEEP_RECORDINGS did not use. */
  endRecording(): void {
    this.epoch++;
    if (this.epoch % SWEEP_EVERY !== 0) return;
    const cutoff = this.epoch - KEEP_RECORDINGS;
    // A group's uniform slot is touched whenever the group is, so no live group loses its slot.
    for (const [k, g] of this.groups) if (g.lastUsed < cutoff) this.groups.delete(k);
    for (const [k, u] of this.uniforms) {
      if (u.lastUsed >= cutoff || this.pinned.has(k)) continue;
      this.uniforms.delete(k);
      this.freeSlots.get(u.slotBytes)!.push({ chunk: u.chunk, offset: u.offset, slotBytes: u.slotBytes });
    }
  }

  /**
   * Drops every cached object and gives the uniform buffers back to the pool (a device loss, or
   * a caller that wants the pool's byte count back to where it was).
   */
  clear(): void {
    this.generation++;
    this.groups.clear();
    this.uniforms.clear();
    this.pinned.clear();
    this.freeSlots.clear();
    for (const c of this.chunks) this.pool.release(c);
    this.chunks.length = 0;
  }

  stats(): BindingCacheStats {
    return { bindGroups: this.groups.size, uniformSlots: this.uniforms.size, uniformBytes: this.chunks.length * CHUNK_BYTES, pinnedSlots: this.pinned.size };
  }

  /** A new uniform buffer cut into slots of slotBytes; returns the first, frees the rest. */
  private newChunk(slotBytes: number): SlotFree {
    const chunk = this.chunks.length;
    this.chunks.push(this.pool.acquire(CHUNK_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, `uniforms${chunk}`));
    let free = this.freeSlots.get(slotBytes);
    if (!free) this.freeSlots.set(slotBytes, (free = []));
    for (let at = CHUNK_BYTES - slotBytes; at >= slotBytes; at -= slotBytes) free.push({ chunk, offset: at, slotBytes });
    return { chunk, offset: 0, slotBytes };
  }
}
