import { FrameRows, type ArtifactOptions } from "../pipeline/artifact.js";

/** One of a frame's k best classes: the model's output index and its softmax probability. */
export interface ClassScore {
  index: number;
  score: number;
}

/**
 * A classifier's per-frame top-k as an artifact (scene/places.npz, a profile's image classifier):
 * - `top_k_indices` int32 [F, k]: class indices per analysis frame, most probable first;
 * - `top_k_scores` float32 [F, k]: their softmax probabilities;
 * - `top_k_labels` unicode [F, k]: their labels;
 * - `label_names` unicode [C]: every class's label, by index;
 * - `frame_index` int64 [F], `timestamp` float64 [F], `source_frame_index` int64 [F].
 */
export function openTopK(
  runDir: string,
  options: ArtifactOptions,
  where: { component: string; key: string; file: string },
  topK: number,
  labels: readonly string[],
): Promise<FrameRows<{ top: readonly ClassScore[] }>> {
  const k = Math.min(topK, labels.length);
  return FrameRows.open(runDir, options, {
    ...where,
    columns: [
      { name: "top_k_indices", dtype: "int32", width: k },
      { name: "top_k_scores", dtype: "float32", width: k },
    ],
    row: (r) => {
      const top = r.top.slice(0, k);
      return [top.map((t) => t.index), top.map((t) => t.score)];
    },
    extra: async (w, [indices], n) => {
      await w.strings("top_k_labels", Array.from(indices!, (i) => labels[i]!), [n, k]);
      await w.strings("label_names", labels);
    },
  });
}

/**
 * Indices of the k largest values, largest first (ties: lower index first). One pass keeping a sorted
 * buffer of k: O(n) for the usual k = 5, no full sort.
 */
export function topKIndices(values: ArrayLike<number>, k: number): number[] {
  const n = Math.min(k, values.length);
  const idx: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (idx.length === n && !(v > values[idx[n - 1]!]!)) continue;
    let pos = idx.length === n ? n - 1 : idx.length;
    while (pos > 0 && v > values[idx[pos - 1]!]!) {
      idx[pos] = idx[pos - 1]!;
      pos--;
    }
    idx[pos] = i;
  }
  return idx;
}
