import { relative } from "node:path";
import { NpzWriter, type NpyArrayStream, type NpyDtype, type NpyInput, type NpzWriterOptions, type StreamShape } from "../artifacts/npz.js";
import type { ComponentName } from "../catalog/types.js";
import { floatToHalf } from "../tensor.js";
import type { Column, Numeric } from "./columns.js";
import type { FrameResult } from "./pipeline.js";

/** dtype and shape of one array of an .npz artifact. */
export interface ArrayInfo {
  dtype: string;
  shape: number[];
}

/** One artifact of a run, as the manifest lists it. */
export interface ArtifactRecord {
  component: ComponentName;
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
  readonly component: ComponentName;
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

/** Tracks the arrays written to an NpzWriter, for the manifest. */
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

  record(component: ComponentName, writer: NpzWriter, runDir: string, frames: number): ArtifactRecord {
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
