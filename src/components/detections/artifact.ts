import { join } from "node:path";
import { writeFileAtomic } from "../../artifacts/atomic.js";
import type { NpzWriter } from "../../artifacts/npz.js";
import { COCO80_NAMES } from "../../detections/class-names.js";
import { motRow } from "../../detections/mot.js";
import { ArrayLog, openNpz, type ArtifactOptions, type ArtifactRecord, type ArtifactSink } from "../../pipeline/artifact.js";
import { Column, int64Of } from "../../pipeline/columns.js";
import type { FrameResult } from "../../pipeline/pipeline.js";

export const MOT_FILE = "core_object_detections/mot.txt";

/**
 * core_object_detections/detections.npz, one row per (tracked) detection, N rows:
 * - `frame_index` int64 [N], `timestamp` float64 [N], `source_frame_index` int64 [N] (the frame's number in the video);
 * - `track_id` int32 [N]: ByteTrack's id (-1 when the profile disables tracking);
 * - `class_id` int32 [N] (COCO-80 order; `class_names` unicode [80]), `score` float32 [N];
 * - `box` float32 [N, 4]: x1, y1, x2, y2 in the video's pixels (display orientation);
 * - `frames_index` int64 [F], `frames_timestamp` float64 [F], `frames_source_index` int64 [F]: every analysed frame, with or without
 *   detections (a frame missing from `frame_index` had none);
 * - `source_size` int32 [2]: width and height the boxes refer to.
 */
export class DetectionsArtifact implements ArtifactSink {
  readonly component = "core_object_detections" as const;
  private readonly frameIndex = new Column(Float64Array);
  private readonly time = new Column(Float64Array);
  private readonly source = new Column(Float64Array);
  private readonly track = new Column(Int32Array);
  private readonly cls = new Column(Int32Array);
  private readonly score = new Column(Float32Array);
  private readonly box = new Column(Float32Array, 4);
  private readonly framesIndex = new Column(Float64Array);
  private readonly framesTime = new Column(Float64Array);
  private readonly framesSource = new Column(Float64Array);
  private readonly log = new ArrayLog();

  private constructor(
    private readonly writer: NpzWriter,
    private readonly runDir: string,
    private readonly sourceSize: readonly [number, number],
    private readonly classNames: readonly string[],
  ) {}

  get journal() {
    return { writer: this.writer, columns: [this.frameIndex, this.time, this.track, this.cls, this.score, this.box, this.framesIndex, this.framesTime, this.source, this.framesSource] };
  }

  get path(): string {
    return this.writer.path;
  }

  static async create(runDir: string, sourceSize: readonly [number, number], classNames: readonly string[] = COCO80_NAMES, options: ArtifactOptions = {}): Promise<DetectionsArtifact> {
    const writer = await openNpz(join(runDir, "core_object_detections", "detections.npz"), {}, options);
    return new DetectionsArtifact(writer, runDir, sourceSize, classNames);
  }

  async write(r: FrameResult): Promise<void> {
    const d = r.detections;
    if (!d) return;
    this.framesIndex.push(r.index);
    this.framesTime.push(r.timestamp);
    this.framesSource.push(r.sourceIndex);
    for (let i = 0; i < d.length; i++) {
      this.frameIndex.push(r.index);
      this.time.push(r.timestamp);
      this.source.push(r.sourceIndex);
      this.track.push(d.trackIds ? d.trackIds[i]! : -1);
      this.cls.push(d.classIds[i]!);
      this.score.push(d.scores[i]!);
      this.box.pushRow(d.xyxy.subarray(4 * i, 4 * i + 4));
    }
  }

  async finish(): Promise<ArtifactRecord> {
    const w = this.writer;
    const n = this.score.rows;
    const f = this.framesIndex.rows;
    await this.log.write(w, "frame_index", "int64", [n], int64Of(this.frameIndex.values()));
    await this.log.write(w, "timestamp", "float64", [n], this.time.values());
    await this.log.write(w, "source_frame_index", "int64", [n], int64Of(this.source.values()));
    await this.log.write(w, "track_id", "int32", [n], this.track.values());
    await this.log.write(w, "class_id", "int32", [n], this.cls.values());
    await this.log.write(w, "score", "float32", [n], this.score.values());
    await this.log.write(w, "box", "float32", [n, 4], this.box.values());
    await this.log.writeStrings(w, "class_names", this.classNames);
    await this.log.write(w, "frames_index", "int64", [f], int64Of(this.framesIndex.values()));
    await this.log.write(w, "frames_timestamp", "float64", [f], this.framesTime.values());
    await this.log.write(w, "frames_source_index", "int64", [f], int64Of(this.framesSource.values()));
    await this.log.write(w, "source_size", "int32", [2], Int32Array.from(this.sourceSize));
    await w.close();
    return this.log.record(this.component, w, this.runDir, f);
  }

  abort(): Promise<void> {
    return this.writer.abort();
  }

  /** Analysis frames written so far. */
  get frames(): number {
    return this.framesIndex.rows;
  }

  /** The rows written so far (one per box). */
  rows(): { source: Float64Array; track: Int32Array; score: Float32Array; box: Float32Array } {
    return { source: this.source.values(), track: this.track.values(), score: this.score.values(), box: this.box.values() };
  }
}

/**
 * core_object_detections/mot.txt (profile output.mot): MOTChallenge rows of the tracked detections,
 * `frame, id, left, top, width, height, score, -1, -1, -1`, in the video's pixels, one line per box,
 * `frame` being the video's frame number from 1 (the row's source_frame_index + 1).
 * Made at the end from the detections artifact's rows, so it is exactly the npz's boxes, and a resumed
 * run (whose rows come back from the journal) needs nothing more. Ids are -1 with the tracker off.
 */
export async function writeMotArtifact(runDir: string, d: DetectionsArtifact): Promise<ArtifactRecord> {
  const { source, track, score, box } = d.rows();
  const lines: string[] = [];
  for (let i = 0; i < score.length; i++) lines.push(motRow(source[i]! + 1, track[i]!, box.subarray(4 * i, 4 * i + 4), score[i]!));
  const text = lines.join("");
  await writeFileAtomic(join(runDir, MOT_FILE), text);
  return { component: "core_object_detections", path: MOT_FILE, bytes: Buffer.byteLength(text), frames: d.frames, arrays: {} };
}
