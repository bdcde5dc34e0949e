import { NORMALIZATIONS } from "../normalization.js";
import type { Family } from "../types.js";

/** Number of Places365 scene categories. */
export const PLACES365_CLASSES = 365;

/** ResNet50 trained on Places365: one logit per scene category. */
export const places365: Family = {
  id: "places365",
  component: "scene",
  title: "ResNet50 Places365",
  // The preprocess models keep seed 002's names (preprocess_places365_<S>): one architecture, so no clash.
  architectures: [{ id: "resnet50", stem: "places365_resnet50", preprocessStem: "places365", inRepository: true, note: "CSAIL's ResNet50 Places365 (global pooling, so larger inputs work)" }],
  defaultArchitecture: "resnet50",
  branches: [
    { size: "small", input: 224, checklist: "required" },
    { size: "medium", input: 336, checklist: "additional" },
    { size: "large", input: 448, checklist: "additional" },
  ],
  routing: "thresholds",
  input: "image",
  // Reference preprocessing (CSAILVision/places365 run_placesCNN_basic.py): Resize((256, 256)) (the whole
  // picture stretched to a square, PIL bilinear with antialiasing), CenterCrop(224), ImageNet mean/std.
  // Matched exactly at 224 (Pillow's arithmetic, preprocess/pil-resize.ts); the 336 and 448 branches keep
  // its 8/7 margin (stretch to 384 and 512). Before, the SDK took the centre square (aspect kept) with a
  // bilinear resize without antialiasing: on places_cam_example.jpg its pixels were off by 32 on average.
  resize: "stretch_crop_bilinear",
  normalization: NORMALIZATIONS.imagenet,
  ensemble: (s) => ({
    inputs: [{ name: "INPUT__0", datatype: "UINT8", shape: [1, s!, s!, 3] }],
    outputs: [{ name: "OUTPUT__0", datatype: "FP32", shape: [1, PLACES365_CLASSES] }],
  }),
  onnx: (s) => ({
    inputs: [{ name: "input", datatype: "FP32", shape: [1, 3, s!, s!] }],
    outputs: [{ name: "logits", datatype: "FP32", shape: [1, PLACES365_CLASSES] }],
  }),
};
