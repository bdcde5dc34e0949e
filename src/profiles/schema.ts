import { z } from "zod";
import { BYTETRACK_VARIANTS, resolveByteTrackOptions, type ByteTrackVariant } from "../detections/byte-track.js";

/**
 * The profile's schema. Keys are snake_case as in the YAML; every object is strict, so a misspelt key
 * is an error, never silently ignored. Defaults are filled in, so a parsed profile is complete.
 */

const positiveInt = () => z.int().min(1);
const probability = () => z.number().min(0).max(1);
const nonEmpty = () => z.string().min(1);

/** Size thresholds on max(analysis width, analysis height): <= small -> small, <= medium -> medium, else large. */
export const thresholdsSchema = z
  .strictObject({ small: positiveInt(), medium: positiveInt() })
  .refine((t) => t.small < t.medium, { message: "expected small < medium", path: ["medium"] });

const tlsSchema = z.strictObject({
  /** PEM file of the CA that signed the server's certificate (system roots when omitted). */
  ca: nonEmpty().optional(),
  /** Client certificate and key (PEM files), for mutual TLS. */
  cert: nonEmpty().optional(),
  key: nonEmpty().optional(),
});

export const tritonBackendSchema = z.strictObject({
  /**
   * Triton's gRPC protocol (port 8001) or its HTTP/REST one (port 8000, KServe v2 with binary tensors).
   * gRPC is the default: it costs the client less CPU per frame (README, bench client).
   */
  protocol: z.enum(["grpc", "http"]).default("grpc"),
  /** The server's endpoint for the protocol, host:port. */
  url: nonEmpty().optional(),
  /** Several targets of the same repository; requests are spread over them. */
  urls: z.array(nonEmpty()).min(1).optional(),
  tls: tlsSchema.optional(),
  /** Sent with every call (auth tokens...). */
  headers: z.record(z.string(), z.string()).default({}),
  /** Client-side deadline of one call. */
  deadline_ms: positiveInt().default(30000),
  /** Retries of a call that failed with UNAVAILABLE (never for other errors). */
  retries: z.int().min(0).max(10).default(2),
  /**
   * Frames and large outputs through POSIX shared memory instead of the messages: "auto" when the URLs
   * are loopback addresses and the server registers a region, "system" always (the server must be on
   * this host), "off" never.
   */
  shared_memory: z.enum(["auto", "system", "off"]).default("auto"),
  /**
   * Seconds a run waits for a server that went away mid-run (killed, restarted, a model reloaded) to be
   * READY again before it gives up; the frames in flight are sent again. 0: fail at once.
   */
  outage_budget_s: z.number().min(0).default(120),
});

export const embeddedBackendSchema = z.strictObject({
  /** Folder holding `<model>.onnx` for every model not listed in `models`; relative to the profile's folder. */
  models_dir: nonEmpty().optional(),
  /** Model name -> .onnx file (relative to the profile's folder), overriding models_dir. */
  models: z.record(z.string(), nonEmpty()).default({}),
  /** onnxruntime intra-op threads per session (onnxruntime's default when omitted). */
  intra_op_threads: positiveInt().optional(),
  /**
   * Worker threads the models are spread over, or "auto": one per 4 CPU cores, 1 to 4 (the cores go
   * to ffmpeg's decoder first; more workers than models gain nothing).
   */
  workers: z.union([positiveInt(), z.literal("auto")]).default("auto"),
});

export const backendSchema = z.strictObject({
  triton: tritonBackendSchema.optional(),
  embedded: embeddedBackendSchema.optional(),
});

export const analysisSchema = z.strictObject({
  /** Frames analysed per second of video (at most the video's own rate). */
  fps: z.number().positive().max(1000).default(2),
  /** Frames are scaled down (aspect kept, never up) so their longer side is at most this; null: source size. */
  max_side: positiveInt().nullable().default(null),
  /**
   * Leave out, before decoding, the frames that the analysis rate does not pick and that no other frame
   * is predicted from (H.264 or HEVC in MP4/MOV): the frames analysed are exactly the same, ffmpeg does less.
   * false: decode every frame.
   */
  sparse_decode: z.boolean().default(true),
});

/** How the input video is read. */
export const inputSchema = z.strictObject({
  /**
   * Decoded timestamps that restart or go back (an MPEG-TS of concatenated segments): "rebase" (default)
   * shifts the later frames so time continues one frame after the last one before the break, and the
   * manifest lists each break; "error" stops the run with VIDEO_INVALID. Rebase is the default because
   * such files are common (recorded broadcasts, joined HLS segments), players show them continuously and
   * ffmpeg without -copyts rebases them too; with "error" a run never reports a time the file does not hold.
   */
  timestamp_breaks: z.enum(["rebase", "error"]).default("rebase"),
  /** Decoding errors (a damaged packet ffmpeg conceals and decodes past) stop the run (--strict). Default: counted, warned about and recorded in the manifest. */
  strict: z.boolean().default(false),
});

export const fallbackSchema = z.strictObject({
  /** The model routing wanted. */
  from: nonEmpty(),
  /** The model to use instead (same family). */
  to: nonEmpty(),
  /** When the rule applies: the wanted branch is disabled by the profile, or not READY on the server. */
  when: z.array(z.enum(["disabled", "not_ready"])).min(1).default(["disabled", "not_ready"]),
});

export const routingSchema = z.strictObject({
  thresholds: thresholdsSchema.default({ small: 320, medium: 448 }),
  fallbacks: z.array(fallbackSchema).default([]),
});

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

export const componentsSchema = z.strictObject({
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
});

export const concurrencySchema = z.strictObject({
  /** Requests in flight at once per model. */
  max_in_flight: positiveInt().default(2),
  /** Per-model overrides (model name -> requests in flight). */
  per_model: z.record(z.string(), positiveInt()).default({}),
  /**
   * Worker threads that fit frames to the branches' inputs (resize, crop, letterbox), or "auto": none
   * below 8 cores (there the work costs the same CPU on any thread), else one per 8 cores, at most 2
   * (one keeps up with a few hundred frames a second).
   */
  preprocess_workers: z.union([z.int().min(0), z.literal("auto")]).default("auto"),
});

export const outputSchema = z.strictObject({
  /** Run folder, relative to the profile's folder; `main --out` (run's `out`) overrides it. */
  dir: nonEmpty().optional(),
  /** Replace an existing run folder instead of stopping. */
  overwrite: z.boolean().default(false),
  /**
   * Also write core_object_detections/mot.txt: MOTChallenge rows (frame, id, left, top, width, height,
   * score, -1, -1, -1) of the tracked detections, frames numbered as in the video from 1, for the
   * standard scoring tools (py-motmetrics, TrackEval).
   */
  mot: z.boolean().default(false),
  /** Store depth and flow as float16 in the .npz files (half the size). */
  float16: z.boolean().default(false),
  /**
   * Write depth and flow with O_DIRECT where the file system allows it, past the page cache (far less
   * CPU per gigabyte); false: through the page cache, e.g. for a network file system slow with it.
   */
  direct_io: z.boolean().default(true),
  /** Write the manifest's resolved profile with secrets (header values) masked. */
  mask_secrets: z.boolean().default(true),
  /**
   * Commit the run as it goes (a journal in the run folder), so that an interrupted run can be resumed
   * (`main --resume`); false: a run that stops leaves nothing to resume.
   */
  resumable: z.boolean().default(true),
  /** Seconds between commits of a resumable run (0: after every frame). What a kill can lose, at most. */
  commit_interval_s: z.number().min(0).default(5),
  /** Write report.html (charts, tracks, annotated frames; one self-contained page) into the run folder. */
  report: z.boolean().default(true),
});

export const profileSchema = z.strictObject({
  /** Schema version of the file. */
  version: z.literal(1),
  name: nonEmpty(),
  description: z.string().optional(),
  backend: backendSchema,
  analysis: analysisSchema.prefault({}),
  input: inputSchema.prefault({}),
  routing: routingSchema.prefault({}),
  /** Catalog name -> the name the server knows it by. */
  model_names: z.record(z.string(), nonEmpty()).default({}),
  concurrency: concurrencySchema.prefault({}),
  components: componentsSchema,
  output: outputSchema.prefault({}),
});

/** A profile as parsed: every default filled in, paths of embedded models made absolute. */
export type Profile = z.output<typeof profileSchema>;
/** A profile as written (defaults may be left out): type an object profile with it, so a misspelt key fails to compile. */
export type ProfileInput = z.input<typeof profileSchema>;
export type TritonBackendConfig = z.output<typeof tritonBackendSchema>;
export type EmbeddedBackendConfig = z.output<typeof embeddedBackendSchema>;
export type Thresholds = z.output<typeof thresholdsSchema>;
export type FallbackRule = z.output<typeof fallbackSchema>;
export type DetectionSettings = z.output<typeof detectionSchema>;
export type TrackerSettings = z.output<typeof trackerSchema>;
export type ComponentSettings = NonNullable<Profile["components"][keyof Profile["components"]]>;
