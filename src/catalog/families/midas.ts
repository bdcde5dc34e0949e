import { NORMALIZATIONS } from "../normalization.js";
import type { Family } from "../types.js";

/** MiDaS/DPT monocular depth: relative inverse depth, one value per input pixel. */
export const midas: Family = {
  id: "midas",
  component: "core_depth_midas",
  title: "MiDaS/DPT depth",
  architectures: [
    { id: "dpt_hybrid", stem: "midas", inRepository: true, note: "MiDaS v3 DPT-Hybrid; normalised with mean 0.5, std 0.5" },
  ],
  defaultArchitecture: "dpt_hybrid",
  branches: [
    { size: "small", input: 256, checklist: "required" },
    { size: "medium", input: 384, checklist: "required" },
    { size: "large", input: 512, checklist: "required" },
  ],
  routing: "thresholds",
  input: "image",
  // Reference preprocessing (isl-org/MiDaS midas/transforms.py via run.py): Resize keeping the aspect
  // ratio to a multiple of 32 (cv2.INTER_CUBIC), then the family's mean/std. A fixed S x S branch cannot
  // keep the aspect ratio; MiDaS's own fixed-shape mode (run.py --square, used for its ONNX/TensorRT
  // exports) stretches to S x S with INTER_CUBIC. The SDK stretches with OpenCV's INTER_LINEAR
  // arithmetic instead; what that costs in depth error is not measured yet.
  resize: "stretch",
  normalization: NORMALIZATIONS.dpt,
  ensemble: (s) => ({
    inputs: [{ name: "INPUT__0", datatype: "UINT8", shape: [1, s!, s!, 3] }],
    outputs: [{ name: "OUTPUT__0", datatype: "FP32", shape: [1, s!, s!] }],
  }),
  onnx: (s) => ({
    inputs: [{ name: "pixel_values", datatype: "FP32", shape: [1, 3, s!, s!] }],
    outputs: [{ name: "predicted_depth", datatype: "FP32", shape: [1, s!, s!] }],
  }),
};
