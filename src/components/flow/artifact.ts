import { join } from "node:path";
import { ArrayLog, MapStream, type ArtifactRecord, type ArtifactSink, type MapOptions } from "../../pipeline/artifact.js";
import { Column, int64Of } from "../../pipeline/columns.js";
import type { FrameResult } from "../../pipeline/pipeline.js";

/**
 * core_optical_flow/flow.npz, one row per pair of consecutive analysis frames:
 * - `flow` float32 (float16 with output.float16) [F-1, 2, S, S]: dx then dy, in pixels of the S x S
 *   input, from frame `frame_index` to frame `next_frame_index` (streamed, never held whole);
 * - `frame_index`, `next_frame_index` int64 [F-1]; `timestamp`, `next_timestamp` float64 [F-1];
 *   `source_frame_index`, `next_source_frame_index` int64 [F-1] (the frames' numbers in the video). No
 *   pair spans a timestamp break (the manifest's analysis.timestamps lists them), so there are F-1 rows
 *   less one per break;
 * - `frame_size` int32 [2]: the analysis frame's width and height (dx * width / S is in frame pixels).
 */
export class FlowArtifact implements ArtifactSink {
  readonly component = "core_optical_flow" as const;
  private readonly from = new Column(Float64Array);
  private readonly to = new Column(Float64Array);
  private readonly fromTime = new Column(Float64Array);
  private readonly toTime = new Column(Float64Array);
  private readonly fromSource = new Column(Float64Array);
  private readonly toSource = new Column(Float64Array);
  private readonly log = new ArrayLog();
  private frames = 0;

  private constructor(
    private readonly map: MapStream,
    private readonly runDir: string,
    private readonly size: number,
    private readonly frameSize: readonly [number, number],
  ) {}

  get journal() {
    return { writer: this.map.writer, columns: [this.from, this.to, this.fromTime, this.toTime, this.fromSource, this.toSource] };
  }

  resumed(frames: number): void {
    this.frames = frames;
  }

  get path(): string {
    return this.map.writer.path;
  }

  static async create(runDir: string, size: number, frameSize: readonly [number, number], options: MapOptions = {}): Promise<FlowArtifact> {
    const map = await MapStream.open(join(runDir, "core_optical_flow", "flow.npz"), "flow", [null, 2, size, size], options);
    return new FlowArtifact(map, runDir, size, frameSize);
  }

  async write(r: FrameResult): Promise<void> {
    this.frames++;
    const f = r.flow;
    if (!f) return;
    if (f.width !== this.size || f.height !== this.size) throw new RangeError(`flow field ${f.width}x${f.height} in a ${this.size}x${this.size} artifact`);
    await this.map.write(f.data);
    this.from.push(f.fromIndex);
    this.to.push(f.toIndex);
    this.fromTime.push(f.fromTimestamp);
    this.toTime.push(f.toTimestamp);
    this.fromSource.push(f.fromSourceIndex);
    this.toSource.push(f.toSourceIndex);
  }

  async finish(): Promise<ArtifactRecord> {
    await this.map.end(this.log);
    const w = this.map.writer;
    const n = this.from.rows;
    for (const [name, col] of [["frame_index", this.from], ["next_frame_index", this.to], ["source_frame_index", this.fromSource], ["next_source_frame_index", this.toSource]] as const) {
      await this.log.write(w, name, "int64", [n], int64Of(col.values()));
    }
    for (const [name, col] of [["timestamp", this.fromTime], ["next_timestamp", this.toTime]] as const) {
      await this.log.write(w, name, "float64", [n], col.values());
    }
    await this.log.write(w, "frame_size", "int32", [2], Int32Array.from(this.frameSize));
    await w.close();
    return this.log.record(this.component, w, this.runDir, this.frames);
  }

  abort(): Promise<void> {
    return this.map.writer.abort();
  }
}
