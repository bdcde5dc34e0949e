import { NORMALIZATIONS } from "../normalization.js";
import type { Family } from "../types.js";

/** CLIP ViT-B/32's embedding width. */
export const CLIP_EMBED_DIM = 512;

/** CLIP's tokenizer constants: start and end of text, and the fixed context length. */
export const CLIP_TOKENS = { sot: 49406, eot: 49407, context: 77 } as const;

/** CLIP ViT-B/32 image tower: one embedding per frame. */
export const clipImage: Family = {
  id: "clip_image",
  component: "core_clip",
  role: "image",
  title: "CLIP ViT-B/32 image",
  architectures: [{ id: "vit_b32", stem: "clip_image", inRepository: true, note: "OpenAI CLIP ViT-B/32 (position embeddings interpolated for 336/448)" }],
  defaultArchitecture: "vit_b32",
  branches: [
    { size: "small", input: 224, checklist: "required" },
    { size: "medium", input: 336 },
    { size: "large", input: 448 },
  ],
  routing: "thresholds",
  input: "image",
  // openai/CLIP's preprocessing exactly: Resize(S, BICUBIC) on a PIL image (Pillow's antialiased
  // bicubic of the shorter side), CenterCrop(S), /255, CLIP mean/std. Equal to its output to 1e-6.
  resize: "center_crop_bicubic",
  normalization: NORMALIZATIONS.clip,
  ensemble: (s) => ({
    inputs: [{ name: "INPUT__0", datatype: "UINT8", shape: [1, s!, s!, 3] }],
    outputs: [{ name: "OUTPUT__0", datatype: "FP32", shape: [1, CLIP_EMBED_DIM] }],
  }),
  onnx: (s) => ({
    inputs: [{ name: "pixel_values", datatype: "FP32", shape: [1, 3, s!, s!] }],
    outputs: [{ name: "image_embeds", datatype: "FP32", shape: [1, CLIP_EMBED_DIM] }],
  }),
};

/**
 * CLIP text tower: one prompt per call, token ids padded to 77. The output holds every token's projected
 * embedding; the client takes the row of the EOT token (the largest id).
 */
export const clipText: Family = {
  id: "clip_text",
  component: "core_clip",
  role: "text",
  title: "CLIP text",
  architectures: [{ id: "vit_b32", stem: "clip_text", inRepository: true, note: "OpenAI CLIP ViT-B/32 text transformer with its projection" }],
  defaultArchitecture: "vit_b32",
  branches: [],
  checklist: "required",
  routing: "fixed",
  input: "tokens",
  ensemble: () => ({
    inputs: [{ name: "INPUT__0", datatype: "INT64", shape: [1, CLIP_TOKENS.context] }],
    outputs: [{ name: "OUTPUT__0", datatype: "FP32", shape: [1, CLIP_TOKENS.context, CLIP_EMBED_DIM] }],
  }),
  onnx: () => ({
    inputs: [{ name: "input_ids", datatype: "INT64", shape: [1, CLIP_TOKENS.context] }],
    outputs: [{ name: "token_embeds", datatype: "FP32", shape: [1, CLIP_TOKENS.context, CLIP_EMBED_DIM] }],
  }),
};
