import { test } from "node:test";
import assert from "node:assert/strict";
import { isVideoAnalysisError } from "../../../src/errors.js";
import {
  CLIP_LOGIT_SCALE,
  l2Normalize,
  l2NormalizeRows,
  selectTextEmbedding,
  similarityMatrix,
} from "../../../src/components/clip/similarity.js";
import { softmaxRows } from "../../../src/components/softmax.js";

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `index ${i}: ${a[i]} vs ${b[i]} (tol ${tol})`);
};
const isCode = (code: string) => (e: unknown) => isVideoAnalysisError(e) && e.code === code;

test("l2NormalizeRows: unit rows, input untouched, zero rows stay zero", () => {
  const data = new Float32Array([3, 4, 0, 0, 0, 0, 1, 1, 1]);
  const out = l2NormalizeRows(data, 3);
  close(out, [0.6, 0.8, 0, 0, 0, 0, 1 / Math.sqrt(3), 1 / Math.sqrt(3), 1 / Math.sqrt(3)], 1e-7);
  assert.equal(data[0], 3);
  close(l2Normalize([0, -2]), [0, -1], 0);
  assert.throws(() => l2NormalizeRows(new Float32Array(5), 3), isCode("INVALID_ARGUMENT"));
  assert.throws(() => l2NormalizeRows(new Float32Array(5), 0), isCode("INVALID_ARGUMENT"));
});

test("similarityMatrix: [frames, prompts] cosines, row-major, scale-free", () => {
  const frames = new Float32Array([1, 0, 0, 0, 2, 0]); // 2 frames, dim 3
  const prompts = new Float32Array([5, 0, 0, 0, 1, 1, 1, 1, 0]); // 3 prompts
  const s = similarityMatrix(frames, prompts, 3);
  assert.ok(s instanceof Float32Array);
  const r = Math.SQRT1_2;
  close(s, [1, 0, r, 0, r, r], 1e-7);
  // Already-normalised input skips normalisation and gives plain dot products.
  close(similarityMatrix([1, 0], [0.5, 0.5], 2, { normalized: true }), [0.5], 0);
  assert.equal(similarityMatrix([], [1, 0], 2).length, 0);
  assert.throws(() => similarityMatrix([1, 0, 0], [1, 0], 2), isCode("INVALID_ARGUMENT"));
});

test("similarityMatrix on 512-d random embeddings equals a float64 reference", () => {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  const dim = 512;
  const frames = Float32Array.from({ length: 4 * dim }, rand);
  const prompts = Float32Array.from({ length: 29 * dim }, rand);
  const s = similarityMatrix(frames, prompts, dim);
  assert.equal(s.length, 4 * 29);
  const norm = (v: Float32Array, i: number) => Math.hypot(...v.subarray(i * dim, (i + 1) * dim));
  for (const [f, p] of [[0, 0], [3, 28], [2, 17]] as const) {
    let dot = 0;
    for (let j = 0; j < dim; j++) dot += frames[f * dim + j]! * prompts[p * dim + j]!;
    assert.ok(Math.abs(s[f * 29 + p]! - dot / (norm(frames, f) * norm(prompts, p))) < 1e-6);
  }
});

test("softmaxRows with CLIP's logit scale reproduces CLIP-style probabilities (synthetic vectors)", () => {
  // CLIP's README: "a diagram", "a dog", "a cat" -> [0.9927937, 0.00421068, 0.00299572]. Build an
  // image embedding and three text embeddings whose cosines give exactly those probabilities at
  // scale 100: c_i = c_0 + ln(p_i / p_0) / 100.
  const p = [0.9927937, 0.00421068, 0.00299572];
  const c = p.map((pi) => 0.3 + Math.log(pi / p[0]!) / CLIP_LOGIT_SCALE);
  const dim = 4;
  const image = new Float32Array([2, 0, 0, 0]); // not unit-norm on purpose
  const texts = new Float32Array(3 * dim);
  c.forEach((ci, i) => {
    texts[i * dim] = ci;
    texts[i * dim + 1 + i] = Math.sqrt(1 - ci * ci);
  });
  const sims = similarityMatrix(image, texts, dim);
  close(sims, c, 1e-7);
  const probs = softmaxRows(sims, 3, CLIP_LOGIT_SCALE);
  const total = p.reduce((a, b) => a + b, 0);
  close(probs, p.map((x) => x / total), 2e-6);
  assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-6);
});

test("softmaxRows: per row, stable for large values, scale 1 is a plain softmax", () => {
  const m = softmaxRows([0, 0, 1000, 1000, 0, Math.log(3)], 2, 1);
  close(m, [0.5, 0.5, 0.5, 0.5, 0.25, 0.75], 1e-7);
  assert.throws(() => softmaxRows([1, 2, 3], 2), isCode("INVALID_ARGUMENT"));
  assert.deepEqual([...softmaxRows([Math.log(3), 0], 2)].map((x) => +x.toFixed(6)), [0.75, 0.25]);
});

test("selectTextEmbedding: the EOT row of a per-token [1,77,D] output", () => {
  const dim = 4;
  const out = new Float32Array(77 * dim);
  for (let r = 0; r < 77; r++) out.fill(r, r * dim, (r + 1) * dim);
  const ids = new BigInt64Array(77);
  ids.set([49406n, 320n, 1929n, 49407n]);
  const e = selectTextEmbedding(out, [1, 77, dim], ids);
  assert.deepEqual(Array.from(e), [3, 3, 3, 3]);
  e[0] = -1; // a copy, not a view
  assert.equal(out[3 * dim], 3);
  // EOT padding (Hugging Face style): the first EOT is taken.
  const eotPadded = Array.from({ length: 77 }, (_, i) => (i === 0 ? 49406 : i < 5 ? 320 : 49407));
  assert.deepEqual(Array.from(selectTextEmbedding(out, [77, dim], eotPadded)), [5, 5, 5, 5]);
});

test("selectTextEmbedding: pooled [1,D] passes through; bad shapes are CONTRACT_MISMATCH", () => {
  const pooled = new Float32Array([1, 2, 3]);
  assert.deepEqual(Array.from(selectTextEmbedding(pooled, [1, 3], [49406, 49407])), [1, 2, 3]);
  const ids = new Array(77).fill(0);
  assert.throws(() => selectTextEmbedding(new Float32Array(10), [1, 77, 512], ids, "clip_text"), (e: unknown) =>
    isVideoAnalysisError(e) && e.code === "CONTRACT_MISMATCH" && e.model === "clip_text",
  );
  assert.throws(() => selectTextEmbedding(new Float32Array(76 * 2), [1, 76, 2], ids), isCode("CONTRACT_MISMATCH"));
  assert.throws(() => selectTextEmbedding(new Float32Array(8), [1, 2, 2, 2], ids), isCode("CONTRACT_MISMATCH"));
});
