export type Numeric = Float32Array | Float64Array | Int32Array;
type NumericCtor<T extends Numeric> = { new (n: number): T };

/**
 * A column of numbers that grows by doubling: the per-frame indices, timestamps and small per-frame
 * results of an artifact, kept until the file is closed (8 bytes a frame for timestamps: 3,000 frames
 * of a 10-minute video at 5 fps hold 24 KB). `width` values per row.
 *
 * @example
 * const c = new Column(Float32Array, 3); // rows of 3 values, growing by doubling
 * c.pushRow([0.2, 0.4, 0.6]);
 * c.push(0.1, 0.3, 0.5);
 * console.log(c.rows, c.values()); // 2 Float32Array(6) [ 0.2, 0.4, 0.6, 0.1, 0.3, 0.5 ] (float32)
 */
export class Column<T extends Numeric> {
  private buf: T;
  private n = 0;

  constructor(
    private readonly ctor: NumericCtor<T>,
    readonly width = 1,
  ) {
    this.buf = new ctor(64 * width);
  }

  /** Rows so far. */
  get rows(): number {
    return this.n / this.width;
  }

  push(...values: number[]): void {
    this.pushRow(values);
  }

  pushRow(values: ArrayLike<number>): void {
    if (values.length !== this.width) throw new RangeError(`Column: a row has ${this.width} values, got ${values.length}`);
    if (this.n + this.width > this.buf.length) {
      const grown = new this.ctor(this.buf.length * 2);
      grown.set(this.buf as never);
      this.buf = grown;
    }
    for (let i = 0; i < values.length; i++) this.buf[this.n + i] = values[i]!;
    this.n += this.width;
  }

  /** The raw bytes of the rows from `row` on (a view; valid until the next push): what a commit saves. */
  bytesFrom(row: number): Uint8Array {
    const v = this.buf.subarray(row * this.width, this.n);
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }

  /** Appends whole rows given as raw bytes (what bytesFrom gave): a resumed run's committed rows. */
  pushBytes(bytes: Uint8Array): void {
    const item = this.buf.BYTES_PER_ELEMENT;
    if (bytes.byteLength % (item * this.width) !== 0) throw new RangeError(`Column: ${bytes.byteLength} bytes are not whole rows of ${this.width} x ${item} bytes`);
    const copy = new Uint8Array(bytes);
    const values = new this.ctor(copy.byteLength / item);
    new Uint8Array(values.buffer).set(copy);
    for (let i = 0; i < values.length; i += this.width) this.pushRow(values.subarray(i, i + this.width));
  }

  /** The values so far (a view; valid until the next push). */
  values(): T {
    return this.buf.subarray(0, this.n) as T;
  }
}

/** Frame indices as int64 (numpy's default integer) for the .npz files. */
export function int64Of(values: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]!);
  return out;
}
