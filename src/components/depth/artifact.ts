import { join } from "node:path";
import { NpzWriter, type NpyArrayStream } from "../../artifacts/npz.js";
import { ArrayLog, toFloat16Bits, type ArtifactRecord, type ArtifactSink } from "../../pipeline/artifact.js";
import { Column, int64Of } from "../../pipeline/columns.js";
import type { FrameResult } from "../../pipeline/pipeline.js";

/**
 * core_depth_midas/depth.npz:
 * - `depth` float32 (float16 with output.float16) [F, S, S]: relative inverse depth per analysis frame at
 *   the branch size S (streamed into the file frame by frame, never held whole);
 * - `frame_index` int64 [F], `timestamp` float64 [F] (seconds);
 * - `frame_size` int32 [2]: the analysis frame's width and height (the map covers the whole frame).
 */
export class DepthArtifact implements ArtifactSink {
  readonly component = "core_depth_midas" as const;
  private readonly index = new Column(Float64Array);
  private readonly time = new Column(Float64Array);
  private readonly log = new ArrayLog();

  private constructor(
    private readonly writer: NpzWriter,
    private readonly stream: NpyArrayStream<"float32" | "float16">,
    private readonly runDir: string,
    private readonly size: number,
    private readonly frameSize: readonly [number, number],
    private readonly float16: boolean,
  ) {}

  get path(): string {
    return this.writer.path;
  }

  static async create(runDir: string, size: number, frameSize: readonly [number, number], float16 = false): Promise<DepthArtifact> {
    const writer = await NpzWriter.create(join(runDir, "core_depth_midas", "depth.npz"));
    try {
      const stream = await writer.beginArray("depth", float16 ? "float16" : "float32", [null, size, size]);
      return new DepthArtifact(writer, stream, runDir, size, frameSize, float16);
    } catch (e) {
      await writer.abort();
      throw e;
    }
  }

  async write(r: FrameResult): Promise<void> {
    const d = r.depth;
    if (!d) return;
    if (d.width !== this.size || d.height !== this.size) throw new RangeError(`depth map ${d.width}x${d.height} in a ${this.size}x${this.size} artifact`);
    if (this.float16) await (this.stream as NpyArrayStream<"float16">).write(toFloat16Bits(d.data));
    else await (this.stream as NpyArrayStream<"float32">).write(d.data);
    this.index.push(r.index);
    this.time.push(r.timestamp);
  }

  async finish(): Promise<ArtifactRecord> {
    const shape = await this.stream.end();
    this.log.add("depth", this.float16 ? "float16" : "float32", shape);
    const n = this.index.rows;
    await this.log.write(this.writer, "frame_index", "int64", [n], int64Of(this.index.values()));
    await this.log.write(this.writer, "timestamp", "float64", [n], this.time.values());
    await this.log.write(this.writer, "frame_size", "int32", [2], Int32Array.from(this.frameSize));
    await this.writer.close();
    return this.log.record(this.component, this.writer, this.runDir, n);
  }

  abort(): Promise<void> {
    return this.writer.abort();
  }
}
