import { NORMALIZATIONS } from "../normalization.js";
import type { Family } from "../types.js";

/** RAFT optical flow between frame t and frame t+1: (dx, dy) per pixel of the input size. */
export const raft: Family = {
  id: "raft",
  component: "core_optical_flow",
  title: "RAFT optical flow",
  architectures: [{ id: "raft", stem: "raft", inRepository: true, note: "RAFT (full), 12 refinement iterations in the export" }],
  defaultArchitecture: "raft",
  branches: [
    { size: "small", input: 256, checklist: "required" },
    { size: "medium", input: 384, checklist: "additional" },
    { size: "large", input: 512, checklist: "additional" },
  ],
  routing: "thresholds",
  input: "image_pair",
  resize: "stretch",
  normalization: NORMALIZATIONS.signed,
  ensemble: (s) => ({
    inputs: [
      { name: "INPUT0__0", datatype: "UINT8", shape: [1, s!, s!, 3] },
      { name: "INPUT1__0", datatype: "UINT8", shape: [1, s!, s!, 3] },
    ],
    outputs: [{ name: "OUTPUT__0", datatype: "FP32", shape: [1, 2, s!, s!] }],
  }),
  onnx: (s) => ({
    inputs: [
      { name: "image1", datatype: "FP32", shape: [1, 3, s!, s!] },
      { name: "image2", datatype: "FP32", shape: [1, 3, s!, s!] },
    ],
    outputs: [{ name: "flow", datatype: "FP32", shape: [1, 2, s!, s!] }],
  }),
};
