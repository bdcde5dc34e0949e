import { VideoAnalysisError } from "../errors.js";

/**
 * Softmax of each row of `[rows, cols]` after multiplying by `scale`, in float64 with the row's maximum
 * subtracted (stable for large values), rounded to FP32. CLIP's probabilities over prompts (scale 100 on
 * cosine similarities) and Places365's over its 365 classes (one row of logits) both come from here.
 */
export function softmaxRows(matrix: ArrayLike<number>, cols: number, scale = 1): Float32Array {
  const rows = Number.isInteger(cols) && cols > 0 ? Math.floor(matrix.length / cols) : 0;
  if (rows * cols !== matrix.length || !(cols > 0)) {
    throw new VideoAnalysisError("INVALID_ARGUMENT", `softmaxRows: ${matrix.length} values do not make rows of ${cols}.`, {
      details: { length: matrix.length, cols },
    });
  }
  const out = new Float32Array(matrix.length);
  const exps = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, scale * matrix[base + c]!);
    let sum = 0;
    for (let c = 0; c < cols; c++) {
      exps[c] = Math.exp(scale * matrix[base + c]! - max);
      sum += exps[c]!;
    }
    for (let c = 0; c < cols; c++) out[base + c] = exps[c]! / sum;
  }
  return out;
}
