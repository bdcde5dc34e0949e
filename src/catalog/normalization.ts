import type { Normalization } from "./types.js";

/**
 * The normalisations of SPEC section 1, one constant each, shared by every family that uses them. Every
 * one divides by 255 (never multiplies by 1/255, which differs in the last bit for 126 of the 256 byte
 * values): Ultralytics' `im / 255` and torchvision's ToTensor + Normalize compute exactly this.
 */
export const NORMALIZATIONS = {
  /** YOLO: x/255. */
  unit: { divisor: 255, mean: [0, 0, 0], std: [1, 1, 1], description: "x/255" },
  /** RAFT: x/255*2-1. */
  signed: { divisor: 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], description: "x/255*2-1" },
  /** DPT (MiDaS v3): mean 0.5, std 0.5, which is the same as x/255*2-1. */
  dpt: { divisor: 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], description: "DPT: (x/255-0.5)/0.5" },
  /** ImageNet mean/std (Places365 ResNet50, MiDaS v2.1). */
  imagenet: {
    divisor: 255,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    description: "ImageNet mean/std",
  },
  /** OpenAI CLIP. */
  clip: {
    divisor: 255,
    mean: [0.48145466, 0.4578275, 0.40821073],
    std: [0.26862954, 0.26130258, 0.27577711],
    description: "CLIP mean/std",
  },
} as const satisfies Record<string, Normalization>;
