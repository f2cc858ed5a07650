/**
 * Packs a kernel's uniform parameters in declaration order. WGSL structs of scalar u32/i32/f32
 * fields are laid out 4 bytes apart, so the order of calls must match the struct's fields.
 */
export class Params {
  private readonly view: DataView;
  private offset = 0;

  constructor(capacity = 256) {
    this.view = new DataView(new ArrayBuffer(capacity));
  }

  u32(v: number): this {
    this.view.setUint32(this.offset, v >>> 0, true);
    this.offset += 4;
    return this;
  }

  i32(v: number): this {
    this.view.setInt32(this.offset, v | 0, true);
    this.offset += 4;
    return this;
  }

  f32(v: number): this {
    this.view.setFloat32(this.offset, v, true);
    this.offset += 4;
    return this;
  }

  /** The packed bytes, padded to 16 (uniform structs are 16-byte aligned). */
  bytes(): Uint8Array {
    const size = Math.max(16, Math.ceil(this.offset / 16) * 16);
    return new Uint8Array(this.view.buffer, 0, size);
  }
}
