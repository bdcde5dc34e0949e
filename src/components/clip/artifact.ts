import { join } from "node:path";
import type { NpzWriter, NpyArrayStream } from "../../artifacts/npz.js";
import { ArrayLog, FrameStamps, openNpz, type ArtifactOptions, type ArtifactRecord, type ArtifactSink } from "../../pipeline/artifact.js";
import { Column } from "../../pipeline/columns.js";
import type { FrameResult } from "../../pipeline/pipeline.js";

/**
 * core_clip/embeddings.npz:
 * - `image_embeddings` float32 [F, D]: unit-norm image embedding per analysis frame (streamed);
 * - `text_embeddings` float32 [P, D]: unit-norm embedding per prompt; `prompts` unicode [P];
 * - `similarity` float32 [F, P]: cosine similarity (frame x prompt);
 * - `probabilities` float32 [F, P]: CLIP's zero-shot softmax over the prompts of 100 x similarity;
 * - `top_k_indices` int32 [F, k]: the profile's top_k prompts per frame, most probable first;
 * - `frame_index` int64 [F], `timestamp` float64 [F], `source_frame_index` int64 [F] (the frame's number in the video).
 */
export class ClipArtifact implements ArtifactSink {
  readonly component = "core_clip" as const;
  private readonly stamps = new FrameStamps();
  private readonly similarity: Column<Float32Array>;
  private readonly probabilities: Column<Float32Array>;
  private readonly top: Column<Int32Array>;
  private readonly log = new ArrayLog();

  private constructor(
    private readonly writer: NpzWriter,
    private readonly stream: NpyArrayStream<"float32">,
    private readonly runDir: string,
    private readonly prompts: readonly string[],
    private readonly text: Float32Array,
    private readonly dim: number,
    private readonly topK: number,
  ) {
    this.similarity = new Column(Float32Array, prompts.length);
    this.probabilities = new Column(Float32Array, prompts.length);
    this.top = new Column(Int32Array, topK);
  }

  get journal() {
    return { writer: this.writer, columns: [this.stamps.index, this.stamps.time, this.similarity, this.probabilities, this.top, this.stamps.source] };
  }

  get path(): string {
    return this.writer.path;
  }

  /** `text` holds the prompts' unit-norm embeddings, [P, dim]. */
  static async create(runDir: string, dim: number, prompts: readonly string[], text: Float32Array, topK: number, options: ArtifactOptions = {}): Promise<ClipArtifact> {
    const writer = await openNpz(join(runDir, "core_clip", "embeddings.npz"), {}, options);
    try {
      const stream = await writer.beginArray("image_embeddings", "float32", [null, dim]);
      return new ClipArtifact(writer, stream, runDir, prompts, text, dim, Math.min(topK, prompts.length));
    } catch (e) {
      await writer.abort();
      throw e;
    }
  }

  async write(r: FrameResult): Promise<void> {
    const c = r.clip;
    if (!c) return;
    await this.stream.write(c.embedding);
    this.similarity.pushRow(c.similarity);
    this.probabilities.pushRow(c.probabilities);
    this.top.pushRow(c.top.slice(0, this.topK).map((t) => t.index));
    this.stamps.push(r);
  }

  async finish(): Promise<ArtifactRecord> {
    const w = this.writer;
    const shape = await this.stream.end();
    this.log.add("image_embeddings", "float32", shape);
    const n = this.stamps.rows;
    const p = this.prompts.length;
    await this.log.write(w, "text_embeddings", "float32", [p, this.dim], this.text);
    await this.log.writeStrings(w, "prompts", this.prompts);
    await this.log.write(w, "similarity", "float32", [n, p], this.similarity.values());
    await this.log.write(w, "probabilities", "float32", [n, p], this.probabilities.values());
    await this.log.write(w, "top_k_indices", "int32", [n, this.topK], this.top.values());
    await this.stamps.write(this.log, w);
    await w.close();
    return this.log.record(this.component, w, this.runDir, n);
  }

  abort(): Promise<void> {
    return this.writer.abort();
  }
}
