import { z } from "zod";
import { COMPONENT_SETTINGS, thresholdsSchema } from "../catalog/settings.js";

export { thresholdsSchema, detectionSchema, trackerSchema } from "../catalog/settings.js";

/**
 * The profile's schema. Keys are snake_case as in the YAML; every object is strict, so a misspelt key
 * is an error, never silently ignored. Defaults are filled in, so a parsed profile is complete.
 */

const positiveInt = () => z.int().min(1);
const nonEmpty = () => z.string().min(1);

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

export const componentsSchema = z.strictObject(COMPONENT_SETTINGS).catchall(
  /**
   * A component of the user's own, under a name of theirs (src/components/load.ts): an ES module of theirs,
   * or a generic family the SDK ships, with its settings (checked by the component).
   */
  z.looseObject({
    enabled: z.boolean().default(true),
    /** An ES module (relative to the profile's folder) whose `default` or `component` export is a Component, or a function (name, settings) giving one. */
    module: nonEmpty().optional(),
    /** A generic family the SDK ships: image_classifier (docs: README, "Your own components"). */
    family: z.enum(["image_classifier"]).optional(),
    /** Its model: an .onnx file (relative to the profile's folder) on the embedded backend, the server's model name on Triton. */
    model: nonEmpty().optional(),
    /** A labels file (one label per line, relative to the profile's folder), for families that take one. */
    labels: nonEmpty().optional(),
  }),
);

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
   * Also write mot.txt beside the detections artifact: MOTChallenge rows (frame, id, left, top, width, height,
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
export type { DetectionSettings, TrackerSettings } from "../catalog/settings.js";
export type ComponentSettings = NonNullable<Profile["components"][keyof Profile["components"]]>;
