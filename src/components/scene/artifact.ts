import { join } from "node:path";
import type { NpzWriter } from "../../artifacts/npz.js";
import { ArrayLog, openNpz, type ArtifactOptions, type ArtifactRecord, type ArtifactSink } from "../../pipeline/artifact.js";
import { Column, int64Of } from "../../pipeline/columns.js";
import type { FrameResult } from "../../pipeline/pipeline.js";
import { PLACES365_LABELS, type SceneLabel } from "./labels.js";

/**
 * scene/places.npz:
 * - `top_k_indices` int32 [F, k]: Places365 category indices per analysis frame, most probable first;
 * - `top_k_scores` float32 [F, k]: their softmax probabilities;
 * - `top_k_labels` unicode [F, k]: their labels ("apartment_building/outdoor");
 * - `label_names` unicode [365]: every category's label, by index;
 * - `frame_index` int64 [F], `timestamp` float64 [F], `source_frame_index` int64 [F] (the frame's number in the video).
 */
export class SceneArtifact implements ArtifactSink {
  readonly component = "scene" as const;
  private readonly index = new Column(Float64Array);
  private readonly time = new Column(Float64Array);
  private readonly source = new Column(Float64Array);
  private readonly top: Column<Int32Array>;
  private readonly scores: Column<Float32Array>;
  private readonly log = new ArrayLog();

  private constructor(
    private readonly writer: NpzWriter,
    private readonly runDir: string,
    private readonly k: number,
    private readonly labels: readonly SceneLabel[],
  ) {
    this.top = new Column(Int32Array, k);
    this.scores = new Column(Float32Array, k);
  }

  get journal() {
    return { writer: this.writer, columns: [this.index, this.time, this.top, this.scores, this.source] };
  }

  get path(): string {
    return this.writer.path;
  }

  static async create(runDir: string, k: number, labels: readonly SceneLabel[] = PLACES365_LABELS, options: ArtifactOptions = {}): Promise<SceneArtifact> {
    const writer = await openNpz(join(runDir, "scene", "places.npz"), {}, options);
    return new SceneArtifact(writer, runDir, Math.min(k, labels.length), labels);
  }

  async write(r: FrameResult): Promise<void> {
    const s = r.scene;
    if (!s) return;
    const top = s.top.slice(0, this.k);
    this.top.pushRow(top.map((t) => t.index));
    this.scores.pushRow(top.map((t) => t.score));
    this.index.push(r.index);
    this.time.push(r.timestamp);
    this.source.push(r.sourceIndex);
  }

  async finish(): Promise<ArtifactRecord> {
    const w = this.writer;
    const n = this.index.rows;
    const k = this.k;
    const idx = this.top.values();
    await this.log.write(w, "top_k_indices", "int32", [n, k], idx);
    await this.log.write(w, "top_k_scores", "float32", [n, k], this.scores.values());
    const names = Array.from(idx, (i) => this.labels[i]!.label);
    await this.log.writeStrings(w, "top_k_labels", names, [n, k]);
    const all = this.labels.map((l) => l.label);
    await this.log.writeStrings(w, "label_names", all);
    await this.log.write(w, "frame_index", "int64", [n], int64Of(this.index.values()));
    await this.log.write(w, "timestamp", "float64", [n], this.time.values());
    await this.log.write(w, "source_frame_index", "int64", [n], int64Of(this.source.values()));
    await w.close();
    return this.log.record(this.component, w, this.runDir, n);
  }

  abort(): Promise<void> {
    return this.writer.abort();
  }
}
