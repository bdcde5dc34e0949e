import { join } from "node:path";
import { ArrayLog, FrameStamps, MapStream, type ArtifactRecord, type ArtifactSink, type MapOptions } from "../../pipeline/artifact.js";
import type { FrameResult } from "../../pipeline/pipeline.js";

/**
 * core_depth_midas/depth.npz:
 * - `depth` float32 (float16 with output.float16) [F, S, S]: relative inverse depth per analysis frame at
 *   the branch size S (streamed into the file frame by frame, never held whole);
 * - `frame_index` int64 [F], `timestamp` float64 [F], `source_frame_index` int64 [F] (the frame's number in the video) (seconds);
 * - `frame_size` int32 [2]: the analysis frame's width and height (the map covers the whole frame).
 */
export class DepthArtifact implements ArtifactSink {
  readonly component = "core_depth_midas" as const;
  private readonly stamps = new FrameStamps();
  private readonly log = new ArrayLog();

  private constructor(
    private readonly map: MapStream,
    private readonly runDir: string,
    private readonly size: number,
    private readonly frameSize: readonly [number, number],
  ) {}

  get journal() {
    return { writer: this.map.writer, columns: [this.stamps.index, this.stamps.time, this.stamps.source] };
  }

  get path(): string {
    return this.map.writer.path;
  }

  static async create(runDir: string, size: number, frameSize: readonly [number, number], options: MapOptions = {}): Promise<DepthArtifact> {
    const map = await MapStream.open(join(runDir, "core_depth_midas", "depth.npz"), "depth", [null, size, size], options);
    return new DepthArtifact(map, runDir, size, frameSize);
  }

  async write(r: FrameResult): Promise<void> {
    const d = r.depth;
    if (!d) return;
    if (d.width !== this.size || d.height !== this.size) throw new RangeError(`depth map ${d.width}x${d.height} in a ${this.size}x${this.size} artifact`);
    await this.map.write(d.data);
    this.stamps.push(r);
  }

  async finish(): Promise<ArtifactRecord> {
    await this.map.end(this.log);
    const w = this.map.writer;
    const n = this.stamps.rows;
    await this.stamps.write(this.log, w);
    await this.log.write(w, "frame_size", "int32", [2], Int32Array.from(this.frameSize));
    await w.close();
    return this.log.record(this.component, w, this.runDir, n);
  }

  abort(): Promise<void> {
    return this.map.writer.abort();
  }
}
