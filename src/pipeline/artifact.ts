import { join, relative } from "node:path";
import { NpzWriter, type NpyArrayStream, type NpyDtype, type NpyInput, type NpzWriterOptions, type StreamShape } from "../artifacts/npz.js";
import { floatToHalf } from "../tensor.js";
import { Column, int64Of, type Numeric } from "./columns.js";
import type { FrameResult } from "./pipeline.js";

/** dtype and shape of one array of an .npz artifact. */
export interface ArrayInfo {
  dtype: string;
  shape: number[];
}

/** One artifact of a run, as the manifest lists it. */
export interface ArtifactRecord {
  /** The component's name (a built-in's, or a profile's own component's). */
  component: string;
  /** Relative to the run folder, with forward slashes: <component>/<file>.npz. */
  path: string;
  bytes: number;
  /** Analysis frames the file covers. */
  frames: number;
  arrays: Record<string, ArrayInfo>;
}

/**
 * Where one component's results go during a run: an .npz written under a temporary name as frames come
 * (in frame order), renamed into place by finish(), deleted by abort().
 */
export interface ArtifactSink {
  readonly component: string;
  /** Final absolute path. */
  readonly path: string;
  write(result: FrameResult): Promise<void>;
  /** Writes what is kept until the end and renames the file into place. */
  finish(): Promise<ArtifactRecord>;
  /** Deletes the temporary file. Safe at any time. */
  abort(): Promise<void>;
  /**
   * What a run's commit saves (journal.ts): the npz being written and the columns held in memory until
   * finish(), always in the same order.
   */
  readonly journal: { writer: NpzWriter; columns: readonly Column<Numeric>[] };
  /** A resumed run: `frames` analysis frames went in before the commit (its columns are back already). */
  resumed?(frames: number): void;
}

/**
 * Opens an artifact's npz: a new file, or, for a resumed run, the interrupted run's file at its last
 * commit (the run's journal says where; see journal.ts).
 */
export type OpenNpz = (path: string, options: NpzWriterOptions) => Promise<NpzWriter>;

export interface ArtifactOptions {
  /** How the npz is opened (default: NpzWriter.create). */
  open?: OpenNpz;
}

export function openNpz(path: string, options: NpzWriterOptions, artifact: ArtifactOptions = {}): Promise<NpzWriter> {
  return artifact.open ? artifact.open(path, options) : NpzWriter.create(path, options);
}

/**
 * Tracks the arrays written to an NpzWriter, for the manifest.
 *
 * @example
 * const w = await NpzWriter.create("speed.npz");
 * const log = new ArrayLog(); // what the file holds, for the manifest's `artifacts` record
 * await w.addArray("speed", "float32", [3], Float32Array.of(1, 2, 3));
 * log.add("speed", "float32", [3]);
 * await log.writeStrings(w, "unit", ["m/s"]);
 * await w.close();
 * console.log(log.record("speed", w, ".", 3)); // { path: "speed.npz", component: "speed", frames: 3, arrays: { speed: ..., unit: ... }, ... }
 */
export class ArrayLog {
  readonly arrays: Record<string, ArrayInfo> = {};

  add(name: string, dtype: string, shape: readonly number[]): void {
    this.arrays[name] = { dtype, shape: [...shape] };
  }

  strings(name: string, values: readonly string[], shape: readonly number[] = [values.length]): void {
    const width = values.reduce((m, s) => Math.max(m, [...s].length), 1);
    this.add(name, `<U${width}`, shape);
  }

  /** Writes an array into the npz and notes it for the manifest. */
  async write<D extends NpyDtype>(writer: NpzWriter, name: string, dtype: D, shape: readonly number[], data: NpyInput<D>): Promise<void> {
    await writer.addArray(name, dtype, shape, data);
    this.add(name, dtype, shape);
  }

  /** Writes strings into the npz and notes them for the manifest. */
  async writeStrings(writer: NpzWriter, name: string, values: readonly string[], shape: readonly number[] = [values.length]): Promise<void> {
    await writer.addStrings(name, values, shape);
    this.strings(name, values, shape);
  }

  record(component: string, writer: NpzWriter, runDir: string, frames: number): ArtifactRecord {
    return { component, path: relative(runDir, writer.path).split("\\").join("/"), bytes: writer.size, frames, arrays: this.arrays };
  }
}

/** How depth and flow maps are stored: float16 (output.float16) and O_DIRECT writes (output.direct_io). */
export interface MapOptions extends ArtifactOptions {
  float16?: boolean;
  directIo?: boolean;
}

/**
 * One float map per frame streamed into the first member of a new .npz (depth, flow): float32, or
 * float16 with output.float16. If the member cannot be begun, the file is aborted.
 *
 * @example
 * const maps = await MapStream.open("depth.npz", "depth", [null, 2, 2]); // the frame count is not known in advance
 * await maps.write(Float32Array.of(1, 2, 3, 4));
 * await maps.write(Float32Array.of(5, 6, 7, 8));
 * const log = new ArrayLog();
 * await maps.end(log);
 * await maps.writer.close();
 * console.log(log.arrays["depth"]); // { dtype: "float32", shape: [ 2, 2, 2 ] }
 */
export class MapStream {
  private constructor(
    readonly writer: NpzWriter,
    private readonly stream: NpyArrayStream<"float32" | "float16">,
    private readonly name: string,
    private readonly float16: boolean,
  ) {}

  static async open(path: string, name: string, shape: StreamShape, options: MapOptions = {}): Promise<MapStream> {
    const float16 = options.float16 ?? false;
    const writer = await openNpz(path, { direct: options.directIo ?? true }, options);
    try {
      return new MapStream(writer, await writer.beginArray(name, float16 ? "float16" : "float32", shape), name, float16);
    } catch (e) {
      await writer.abort();
      throw e;
    }
  }

  write(map: Float32Array): Promise<void> {
    if (this.float16) return (this.stream as NpyArrayStream<"float16">).write(toFloat16Bits(map));
    return (this.stream as NpyArrayStream<"float32">).write(map);
  }

  /** Ends the member and notes it in `log`. */
  async end(log: ArrayLog): Promise<void> {
    log.add(this.name, this.float16 ? "float16" : "float32", await this.stream.end());
  }
}

/** IEEE half-precision bit patterns of float32 values (for output.float16). */
export function toFloat16Bits(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatToHalf(values[i]!);
  return out;
}

/**
 * The per-frame columns an artifact ends with: `frame_index` int64, `timestamp` float64 and
 * `source_frame_index` int64 [F] (the frame's number in the video). Journaled like any Column.
 *
 * @example
 * const stamps = new FrameStamps();
 * stamps.push({ index: 0, timestamp: 0, sourceIndex: 0, width: 768, height: 432 });
 * stamps.push({ index: 1, timestamp: 1, sourceIndex: 10, width: 768, height: 432 });
 * const w = await NpzWriter.create("frames.npz");
 * const log = new ArrayLog();
 * await stamps.write(log, w);
 * await w.close();
 * console.log(Object.keys(log.arrays)); // [ "frame_index", "timestamp", "source_frame_index" ]
 */
export class FrameStamps {
  readonly index = new Column(Float64Array);
  readonly time = new Column(Float64Array);
  readonly source = new Column(Float64Array);

  get rows(): number {
    return this.index.rows;
  }

  push(r: FrameResult): void {
    this.index.push(r.index);
    this.time.push(r.timestamp);
    this.source.push(r.sourceIndex);
  }

  async write(log: ArrayLog, w: NpzWriter): Promise<void> {
    const n = this.rows;
    await log.write(w, "frame_index", "int64", [n], int64Of(this.index.values()));
    await log.write(w, "timestamp", "float64", [n], this.time.values());
    await log.write(w, "source_frame_index", "int64", [n], int64Of(this.source.values()));
  }
}

/** One column of a FrameRows artifact: `width` values per frame (shape [F] for 1, [F, width] otherwise). */
export interface RowSpec {
  name: string;
  dtype: "float32" | "float64" | "int32";
  width?: number;
}

export interface FrameRowsSpec<R> {
  /** The component's name (the manifest's `component`). */
  component: string;
  /** Where its result stands in a FrameResult. */
  key: string;
  /** Relative to the run folder: `<component>/<name>.npz`. */
  file: string;
  columns: readonly RowSpec[];
  /** A result's row: one array of `width` values per column, in the columns' order. */
  row(result: R): ReadonlyArray<ArrayLike<number>>;
  /** Arrays written after the columns, before the frame columns (labels...); `columns` hold every frame's values. */
  extra?(w: { strings(name: string, values: readonly string[], shape?: readonly number[]): Promise<void> }, columns: readonly Numeric[], frames: number): Promise<void>;
}

const ROW_TYPES = { float32: Float32Array, float64: Float64Array, int32: Int32Array } as const;

/**
 * A table of one row per analysed frame: the building block of per-frame results (scene's top-k, the image
 * classifier's, a user component's own). finish() writes each column ([F] or [F, width]), then what `extra`
 * adds, then `frame_index` int64, `timestamp` float64 and `source_frame_index` int64 [F]. Its columns are
 * journaled, so a resumed run continues it with no code of the component's.
 *
 * @example
 * import { mkdir } from "node:fs/promises";
 * // A component's artifact: FrameRows.open in its Analyzer's artifact(setup), write() per frame, finish() at the end.
 * await mkdir("runs/mine/colour", { recursive: true }); // in a run, the run folder makes it
 * const rows = await FrameRows.open("runs/mine", {}, {
 *   component: "colour", key: "colour", file: "colour/mean.npz",
 *   columns: [{ name: "mean_rgb", dtype: "float32", width: 3 }],
 *   row: (r: Float32Array) => [r],
 * });
 * await rows.write({ index: 0, timestamp: 0, sourceIndex: 0, width: 8, height: 8, colour: Float32Array.of(0.5, 0.4, 0.3) });
 * console.log(await rows.finish()); // the manifest's record: colour/mean.npz, 1 frame, mean_rgb float32 [1, 3], frame_index, ...
 */
export class FrameRows<R> implements ArtifactSink {
  readonly component: string;
  private readonly cols: Column<Numeric>[];
  private readonly stamps = new FrameStamps();
  private readonly log = new ArrayLog();

  private constructor(
    private readonly writer: NpzWriter,
    private readonly runDir: string,
    private readonly spec: FrameRowsSpec<R>,
  ) {
    this.component = spec.component;
    this.cols = spec.columns.map((c) => new Column<Numeric>(ROW_TYPES[c.dtype], c.width ?? 1));
  }

  static async open<R>(runDir: string, options: ArtifactOptions, spec: FrameRowsSpec<R>): Promise<FrameRows<R>> {
    return new FrameRows(await openNpz(join(runDir, spec.file), {}, options), runDir, spec);
  }

  get path(): string {
    return this.writer.path;
  }

  /** The journal's column order (frame index and time first, then the spec's, then the source index). */
  get journal() {
    const t = this.stamps;
    return { writer: this.writer, columns: [t.index, t.time, ...this.cols, t.source] };
  }

  async write(r: FrameResult): Promise<void> {
    const v = r[this.spec.key] as R | undefined;
    if (v === undefined) return;
    const rows = this.spec.row(v);
    if (rows.length !== this.cols.length) throw new RangeError(`${this.component}: a row has ${rows.length} columns, the artifact ${this.cols.length}`);
    rows.forEach((x, i) => this.cols[i]!.pushRow(x));
    this.stamps.push(r);
  }

  async finish(): Promise<ArtifactRecord> {
    const w = this.writer;
    const n = this.stamps.rows;
    for (const [i, c] of this.spec.columns.entries()) {
      const width = c.width ?? 1;
      await this.log.write(w, c.name, c.dtype, width === 1 ? [n] : [n, width], this.cols[i]!.values());
    }
    await this.spec.extra?.({ strings: (name, values, shape) => this.log.writeStrings(w, name, values, shape) }, this.cols.map((c) => c.values()), n);
    await this.stamps.write(this.log, w);
    await w.close();
    return this.log.record(this.component, w, this.runDir, n);
  }

  abort(): Promise<void> {
    return this.writer.abort();
  }
}
