/**
 * CLIP's embedding arithmetic: L2 normalisation, the frame x prompt cosine-similarity matrix (its
 * softmax over prompts, at CLIP_LOGIT_SCALE, is softmaxRows in ../softmax.ts), and picking the text
 * embedding (the EOT row) out of a per-token text output.
 *
 * Matrices are Float32Array, row-major: `[rows, dim]` embeddings, `[frames, prompts]` similarities.
 * Sums are accumulated in float64.
 */
import { VideoAnalysisError } from "../../errors.js";
import { eotIndex } from "./tokenizer.js";

/** CLIP's learned logit scale, exp(4.6052) = 100 in the released models (clamped at 100 in training). */
export const CLIP_LOGIT_SCALE = 100;

function checkShape(what: string, data: ArrayLike<number>, rows: number, dim: number): void {
  if (!Number.isInteger(dim) || dim <= 0 || !Number.isInteger(rows) || rows < 0 || data.length !== rows * dim) {
    throw new VideoAnalysisError(
      "INVALID_ARGUMENT",
      `${what}: ${data.length} values do not make ${rows} rows of ${dim} (expected ${rows * dim}).`,
      { details: { length: data.length, rows, dim } },
    );
  }
}

/**
 * A copy of `data` (`[rows, dim]`) with each row scaled to unit L2 norm. An all-zero row stays zero
 * (its cosine with anything is then 0, not NaN).
 */
export function l2NormalizeRows(data: ArrayLike<number>, dim: number): Float32Array {
  const rows = dim > 0 ? Math.floor(data.length / dim) : 0;
  checkShape("l2NormalizeRows", data, rows, dim);
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let sum = 0;
    for (let j = 0; j < dim; j++) {
      const v = data[base + j]!;
      sum += v * v;
    }
    const inv = sum > 0 ? 1 / Math.sqrt(sum) : 0;
    for (let j = 0; j < dim; j++) out[base + j] = data[base + j]! * inv;
  }
  return out;
}

/** A unit-norm copy of one vector. */
export function l2Normalize(v: ArrayLike<number>): Float32Array {
  return l2NormalizeRows(v, v.length);
}

export interface SimilarityOptions {
  /** Set when both inputs are already unit-norm, to skip normalising them again. */
  normalized?: boolean;
}

/**
 * Cosine similarities of every frame embedding with every prompt embedding: `frames` is
 * `[F, dim]`, `prompts` is `[P, dim]`, the result is `[F, P]` row-major (row f = frame f).
 */
export function similarityMatrix(
  frames: ArrayLike<number>,
  prompts: ArrayLike<number>,
  dim: number,
  options: SimilarityOptions = {},
): Float32Array {
  const f = dim > 0 ? Math.floor(frames.length / dim) : 0;
  const p = dim > 0 ? Math.floor(prompts.length / dim) : 0;
  checkShape("similarityMatrix (frames)", frames, f, dim);
  checkShape("similarityMatrix (prompts)", prompts, p, dim);
  const a = options.normalized ? frames : l2NormalizeRows(frames, dim);
  const b = options.normalized ? prompts : l2NormalizeRows(prompts, dim);
  const out = new Float32Array(f * p);
  for (let i = 0; i < f; i++) {
    const ai = i * dim;
    for (let k = 0; k < p; k++) {
      const bk = k * dim;
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += a[ai + j]! * b[bk + j]!;
      out[i * p + k] = dot;
    }
  }
  return out;
}

/**
 * The text embedding of one prompt from the text model's output. A per-token output (`[1, 77, D]` or
 * `[77, D]`, the SPEC's clip_text contract) gives the row at the EOT position of `ids` (the first
 * position of the largest id); a pooled output (`[1, D]` or `[D]`) is returned as is. Returns a copy,
 * not yet normalised. A shape that fits neither, or a token row of another length, is a
 * CONTRACT_MISMATCH.
 */
export function selectTextEmbedding(
  output: Float32Array,
  shape: readonly number[],
  ids: ArrayLike<number> | BigInt64Array,
  model?: string,
): Float32Array {
  const dims = shape.length > 0 && shape[0] === 1 && shape.length > 1 ? shape.slice(1) : [...shape];
  const total = dims.reduce((a, b) => a * b, 1);
  if (total !== output.length) {
    throw new VideoAnalysisError(
      "CONTRACT_MISMATCH",
      `CLIP text output has ${output.length} values but its shape [${shape.join(",")}] says ${total}.`,
      { model, details: { shape: [...shape] } },
    );
  }
  if (dims.length === 1) return output.slice();
  if (dims.length === 2) {
    const [seq, dim] = dims as [number, number];
    if (seq !== ids.length) {
      throw new VideoAnalysisError(
        "CONTRACT_MISMATCH",
        `CLIP text output has ${seq} token rows but the prompt was sent as ${ids.length} token ids.`,
        { model, details: { shape: [...shape], tokens: ids.length } },
      );
    }
    const row = eotIndex(ids);
    return output.slice(row * dim, (row + 1) * dim);
  }
  throw new VideoAnalysisError(
    "CONTRACT_MISMATCH",
    `CLIP text output shape [${shape.join(",")}] is neither per-token [1,77,D] nor pooled [1,D].`,
    { model, details: { shape: [...shape] } },
  );
}
