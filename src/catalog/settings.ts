import { z } from "zod";
import { BYTETRACK_VARIANTS, resolveByteTrackOptions, type ByteTrackVariant } from "../detections/byte-track.js";

// Each built-in family's settings in a profile (components.<name>), with the catalog's other data on the
// families: src/profiles/schema.ts composes them into the profile's schema.

const positiveInt = () => z.int().min(1);
const probability = () => z.number().min(0).max(1);
const nonEmpty = () => z.string().min(1);

/** Size thresholds on max(analysis width, analysis height): <= small -> small, <= medium -> medium, else large. */
export const thresholdsSchema = z
  .strictObject({ small: positiveInt(), medium: positiveInt() })
  .refine((t) => t.small < t.medium, { message: "expected small < medium", path: ["medium"] });

/** What every component section has. */
const componentBase = {
  enabled: z.boolean().default(true),
  /** Complexity axis (yolo11n ... yolo11x); the family's production architecture when omitted. */
  architecture: nonEmpty().optional(),
  /** Branch input sizes that routing may choose; all but opt-in ones (YOLO 960) when omitted. */
  branches: z.array(positiveInt()).min(1).optional(),
  /** Overrides routing.thresholds for this component. */
  thresholds: thresholdsSchema.optional(),
};

export const detectionSchema = z.strictObject({
  /** Candidates scoring below this are dropped before NMS. */
  conf: probability().default(0.25),
  /** IoU above which the lower-scoring of two boxes is suppressed. */
  iou: probability().default(0.7),
  /** Detections kept per frame after NMS. */
  max_det: positiveInt().default(300),
  /** Candidates entering NMS at most (highest scores first). */
  max_nms: positiveInt().default(30000),
  /** NMS across classes (true) or per class (false). */
  agnostic: z.boolean().default(false),
  /** COCO class ids to keep; all when null. */
  classes: z.array(z.int().min(0).max(79)).nullable().default(null),
});

/**
 * ByteTrack's settings (src/detections/byte-track.ts says what raising or lowering each does). `variant`
 * gives the defaults of the knobs left out; the parsed profile holds every knob resolved, so the
 * manifest records exactly what ran.
 */
export const trackerSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** default: the Python original's association, detector boxes; python: ifzhang/ByteTrack; cpp: the C++ deployment. */
    variant: z.enum(BYTETRACK_VARIANTS as [ByteTrackVariant, ...ByteTrackVariant[]]).default("default"),
    /** The box written for a track: its matched detection's, or the Kalman filter's (variant's default: detection; python, cpp: track). */
    box: z.enum(["detection", "track"]).optional(),
    /** Associate on each track's Kalman prediction or on its last updated box (variant's default). */
    match_on: z.enum(["prediction", "last_box"]).optional(),
    /** The Kalman state: xywh (BoT-SORT's, the default variant's) or xyah (ByteTrack's, python and cpp). */
    kalman: z.enum(["xyah", "xywh"]).optional(),
    /** Cost 1 - IoU x score instead of 1 - IoU in the first association (variant's default). */
    fuse_score: z.boolean().optional(),
    /** Detections above this are "high": matched first, and may start tracks. */
    track_thresh: probability().default(0.5),
    /** A new track needs a detection at or above this (variant's default: track_thresh + 0.1, cpp 0.6). */
    high_thresh: probability().optional(),
    /** Detections at or below this are ignored; null: no floor (variant's default: 0.1, cpp null). */
    low_thresh: probability().nullable().optional(),
    /** Cost limit of the first association: raising it accepts looser matches. */
    match_thresh: probability().default(0.8),
    /** Cost limit of the low-score association. */
    low_match_thresh: probability().default(0.5),
    /** Frames (at 30 fps, scaled to the analysis rate) a lost track is kept before it is removed. */
    track_buffer: positiveInt().default(30),
  })
  .transform((t) => {
    const o = resolveByteTrackOptions({
      variant: t.variant,
      box: t.box,
      kalman: t.kalman,
      trackThresh: t.track_thresh,
      highThresh: t.high_thresh,
      lowThresh: t.low_thresh === null ? -Infinity : t.low_thresh,
      matchThresh: t.match_thresh,
      lowMatchThresh: t.low_match_thresh,
      trackBuffer: t.track_buffer,
      fuseScore: t.fuse_score,
      matchOn: t.match_on,
    });
    return {
      ...t,
      box: o.box,
      kalman: o.kalman,
      match_on: o.matchOn,
      fuse_score: o.fuseScore,
      high_thresh: o.highThresh,
      low_thresh: Number.isFinite(o.lowThresh) ? o.lowThresh : null,
    };
  });

export const COMPONENT_SETTINGS = {
  core_depth_midas: z.strictObject({ ...componentBase }).optional(),
  core_optical_flow: z.strictObject({ ...componentBase }).optional(),
  core_clip: z
    .strictObject({
      ...componentBase,
      /** Text prompts scored against every frame's embedding (one clip_text call each, cached). */
      prompts: z.array(nonEmpty()).min(1),
      /** Prompts kept per frame in the summary, best first. */
      top_k: positiveInt().default(5),
      /**
       * CLIP's BPE merges (openai/CLIP's bpe_simple_vocab_16e6.txt.gz), relative to the profile's folder;
       * when omitted, $CLIP_BPE_PATH, else the copy shipped with the SDK.
       */
      bpe_path: nonEmpty().optional(),
    })
    .optional(),
  scene: z
    .strictObject({
      ...componentBase,
      /** Places365 categories kept per frame, best first. */
      top_k: positiveInt().default(5),
    })
    .optional(),
  core_object_detections: z
    .strictObject({
      ...componentBase,
      /**
       * A YOLO model of your own instead of the catalog's: an .onnx file (relative to the profile's folder)
       * on the embedded backend, the server's model name on Triton. Its input size, layout and output
       * layout (raw or End2End) are read from the model, its class names from its metadata; no routing.
       */
      model: nonEmpty().optional(),
      /** raw [1,84,N] (the client runs NMS) or end2end (NMS in the engine; the client rescales boxes). */
      output_format: z.enum(["raw", "end2end"]).default("raw"),
      /**
       * pixels: letterboxed UINT8 frames to `<model>`; jpeg: each frame JPEG-encoded (jpeg_quality) to the
       * track D ensemble `<model>_gpu_e2e[_streaming|_batch]` (DALI decode and letterbox on the server, NMS
       * inside: needs output_format end2end).
       */
      input: z.enum(["pixels", "jpeg"]).default("pixels"),
      jpeg_quality: z.int().min(1).max(100).default(90),
      /** Track D's batching tier: which ensemble, and how many requests the client keeps in flight. */
      tier: z.enum(["streaming", "balanced", "batch"]).default("balanced"),
      detection: detectionSchema.prefault({}),
      tracker: trackerSchema.prefault({}),
    })
    .refine((d) => d.input !== "jpeg" || d.output_format === "end2end", {
      message: "input jpeg goes to a track D ensemble, whose answers are End2End: set output_format: end2end",
      path: ["input"],
    })
    .optional(),
} as const;

/** The detections component's key (the YOLO family's settings), for the tools that read them outside the family (triton-repo). */
export const DETECTIONS = "core_object_detections" as const satisfies keyof typeof COMPONENT_SETTINGS;

export type DetectionSettings = z.output<typeof detectionSchema>;
export type TrackerSettings = z.output<typeof trackerSchema>;
