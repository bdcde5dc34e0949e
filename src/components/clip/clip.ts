import type { FrameContext } from "../../pipeline/component.js";
import type { ModelHandle } from "../../pipeline/model.js";
import type { StageClock } from "../../pipeline/stats.js";
import { tensor, toFloat32 } from "../../tensor.js";
import { topKIndices } from "../top-k.js";
import { softmaxRows } from "../softmax.js";
import { CLIP_LOGIT_SCALE, l2Normalize, selectTextEmbedding, similarityMatrix } from "./similarity.js";
import { ClipTokenizer } from "./tokenizer.js";

/** What CLIP says about one frame. */
export interface ClipFrameResult {
  /** The image embedding, L2-normalised (length D = 512 for ViT-B/32). */
  embedding: Float32Array;
  /** Cosine similarity with each prompt's embedding, in the profile's prompt order. */
  similarity: Float32Array;
  /** CLIP's zero-shot probabilities: softmax over the prompts of 100 x similarity. */
  probabilities: Float32Array;
  /** The profile's top_k prompts, most probable first. */
  top: Array<{ index: number; prompt: string; probability: number }>;
}

const tokenizers = new Map<string, Promise<ClipTokenizer>>();

/**
 * CLIP's tokenizer, loaded once per process and file: the profile's `bpe_path`, else $CLIP_BPE_PATH, else
 * the copy shipped with the SDK (see tokenizer.ts).
 */
export function clipTokenizer(bpePath?: string): Promise<ClipTokenizer> {
  const key = bpePath ?? "";
  let t = tokenizers.get(key);
  if (!t) {
    t = ClipTokenizer.load({ bpePath });
    t.catch(() => tokenizers.delete(key));
    tokenizers.set(key, t);
  }
  return t;
}

/**
 * core_clip: image embeddings per frame (the frame resized on its shorter side and centre-cropped to the
 * branch size), text embeddings per prompt (one clip_text call each, token ids through CLIP's BPE, the
 * EOT row of the per-token output), and the frame x prompt similarities. The prompts' embeddings are
 * computed once, by `prepare()`, before any frame.
 */
export class ClipComponent {
  private text: Float32Array | undefined;
  private dim = 0;
  private readonly textCache = new Map<string, Promise<Float32Array>>();

  constructor(
    readonly imageModel: ModelHandle | undefined,
    readonly textModel: ModelHandle | undefined,
    readonly tokenizer: ClipTokenizer | undefined,
    readonly prompts: readonly string[],
    readonly topK: number,
  ) {}

  /** The prompts' unit-norm embeddings, [P, D] row-major (after prepare()). */
  get textEmbeddings(): Float32Array | undefined {
    return this.text;
  }

  /** Embedding width D (after the first embedding). */
  get embeddingDim(): number {
    return this.dim;
  }

  /** Embeds every prompt (concurrently, within the text model's in-flight limit). */
  async prepare(clock: StageClock, signal?: AbortSignal): Promise<void> {
    if (this.text || this.prompts.length === 0) return;
    const rows = await Promise.all(this.prompts.map((p) => this.embedText(p, clock, signal)));
    const d = rows[0]!.length;
    const all = new Float32Array(rows.length * d);
    rows.forEach((r, i) => all.set(r, i * d));
    this.text = all;
  }

  /** A prompt's unit-norm text embedding (cached per prompt). */
  embedText(prompt: string, clock: StageClock, signal?: AbortSignal): Promise<Float32Array> {
    if (typeof prompt !== "string" || prompt.trim() === "") throw new TypeError("clipText: the prompt must be a non-empty string");
    let p = this.textCache.get(prompt);
    if (!p) {
      p = this.computeText(prompt, clock, signal);
      p.catch(() => this.textCache.delete(prompt));
      this.textCache.set(prompt, p);
    }
    return p;
  }

  private async computeText(prompt: string, clock: StageClock, signal?: AbortSignal): Promise<Float32Array> {
    const model = this.textModel;
    const tok = this.tokenizer;
    if (!model || !tok) throw new RangeError("CLIP text embeddings need the clip_text model and the tokenizer");
    const spec = model.contract.inputs[0]!;
    const ids = clock.time("preprocess", () => tok.tokenize(prompt, spec.shape[1]));
    const out = await model.infer([tensor(spec.name, "INT64", [1, ids.length], ids)], signal, clock);
    return clock.time("postprocess", () => {
      const t = out[model.contract.outputs[0]!.name]!;
      const e = l2Normalize(selectTextEmbedding(toFloat32(t), t.shape, ids, model.callName));
      this.dim = e.length;
      return e;
    });
  }

  /** The frame's unit-norm image embedding. */
  async embedImage(ctx: FrameContext, signal?: AbortSignal): Promise<Float32Array> {
    const model = this.imageModel;
    if (!model) throw new RangeError("CLIP image embeddings need the clip_image model");
    const s = model.inputSize;
    const spec = model.contract.inputs[0]!;
    const input = await ctx.clock.timeAsync("preprocess", async () => {
      const img = (await ctx.fitted.get(model.catalogModel.family.resize ?? "center_crop", s)).image;
      return tensor(spec.name, "UINT8", [1, s, s, 3], img.data);
    });
    const out = await model.infer([input], signal, ctx.clock);
    return ctx.clock.time("postprocess", () => {
      const e = l2Normalize(toFloat32(out[model.contract.outputs[0]!.name]!));
      this.dim = e.length;
      return e;
    });
  }

  /** Image embedding, similarities with the prepared prompts, and the top prompts. */
  async analyze(ctx: FrameContext, signal?: AbortSignal): Promise<ClipFrameResult> {
    const embedding = await this.embedImage(ctx, signal);
    return ctx.clock.time("postprocess", () => this.score(embedding));
  }

  /** Similarities and probabilities of a unit-norm image embedding against the prepared prompts. */
  score(embedding: Float32Array): ClipFrameResult {
    const text = this.text;
    if (!text) return { embedding, similarity: new Float32Array(0), probabilities: new Float32Array(0), top: [] };
    const similarity = similarityMatrix(embedding, text, embedding.length, { normalized: true });
    const probabilities = softmaxRows(similarity, this.prompts.length, CLIP_LOGIT_SCALE);
    const top = topKIndices(probabilities, this.topK).map((index) => ({ index, prompt: this.prompts[index]!, probability: probabilities[index]! }));
    return { embedding, similarity, probabilities, top };
  }
}
