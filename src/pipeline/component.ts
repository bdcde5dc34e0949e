import type { ModelContract } from "../backend/backend.js";
import type { CatalogModel } from "../catalog/types.js";
import type { Profile } from "../profiles/schema.js";
import type { ResolvedModel } from "../routing/index.js";
import type { ArtifactOptions, ArtifactRecord, ArtifactSink, MapOptions } from "./artifact.js";
import type { FittedFrame } from "./frame.js";
import type { ModelHandle } from "./model.js";
import type { StageClock } from "./stats.js";

/** What a component sees of one frame while it is analysed. */
export interface FrameContext {
  index: number;
  /** Seconds. */
  timestamp: number;
  /** The frame's number in the video. */
  sourceIndex: number;
  /** The first frame after a timestamp break (flow forms no pair across it). */
  afterBreak?: boolean;
  /** The frame and its fitted versions (shared by the components of this frame). */
  fitted: FittedFrame;
  clock: StageClock;
  /**
   * The size that detection boxes are reported in. `main` analyses frames scaled down to the analysis
   * size and reports boxes in the video's own pixels; frames from elsewhere keep their own size.
   */
  outputSize: { width: number; height: number };
  /** The maps (depth, flow) go to artifacts as they are: their models are asked for checksums. */
  checksums?: boolean;
}


/** What a component builds its analyser for one session (a run, a stream, single frames) from. */
export interface ComponentSetup {
  profile: Profile;
  /** The profile's components.<name> entry (undefined when the profile has none: a component given in code). */
  settings: Record<string, unknown> | undefined;
  /** Frame rate of the analysed frames (the tracker's). */
  fps: number;
  /** The model routing gave a slot of this component (its ModelHandle), undefined when it gave none. */
  model(slot: string): ModelHandle | undefined;
  /** The .onnx file of a slot's model on the embedded backend (undefined on Triton). */
  modelFile(slot: string): string | undefined;
}

/** What a component's artifact is opened with in a run folder. */
export interface ArtifactSetup {
  runDir: string;
  /** The analysis frame's width and height. */
  frameSize: readonly [number, number];
  /** The video's width and height (display orientation): where boxes are reported. */
  sourceSize: readonly [number, number];
  /** output.float16 and output.direct_io, for streamed maps. */
  maps: MapOptions;
  /** How the npz is opened (a new file, or a resumed run's at its last commit). */
  options: ArtifactOptions;
}

/**
 * A model outside the catalog that a component calls as it is, with its own contract: the component
 * prepares the model's inputs itself (e.g. FP32 NCHW with its own normalisation) and reads its outputs.
 */
export interface ComponentModel {
  /** Its slot: the key in resolved_model_mapping, and what ComponentSetup.model() is asked with. */
  slot: string;
  /** The server's model name on Triton; on the embedded backend, the name its session goes by. */
  name: string;
  /** The .onnx file on the embedded backend (absolute; a profile's paths are made so from its folder). */
  file?: string;
  /** Checked against what the backend says of the model; the backend's metadata when omitted. */
  contract?: ModelContract;
  /** What the manifest calls its family (default: the component's name). */
  family?: string;
}

/** What a component may add once its artifact is finished (e.g. a text export of it). */
export interface RunEnd {
  runDir: string;
  profile: Profile;
}

/**
 * A model family's public contract: which profile entry and routing slots it owns, and how it makes the
 * per-session Analyzer. The built-in families live in src/components/<family>/ and are listed in
 * src/components/builtins.ts; users pass their own (ModelManagerOptions.components) or name them in a
 * profile (`components.<name>: { module: ./mine.js }` or `{ family: image_classifier }`, src/components/load.ts).
 */
export interface Component {
  /** The profile's components.<name> entry and the manifest's `component` of its artifacts. */
  readonly name: string;
  /** Where its result stands in a FrameResult (`r[key]`). */
  readonly key: string;
  /** The routing slots it takes models from, in the order their models are listed in the manifest. */
  readonly slots: readonly string[];
  /** The artifacts it writes, relative to the run folder (artifact() opens files[0]). */
  readonly files: readonly string[];
  /** Files it writes only when the profile asks (finishRun()). */
  readonly optionalFiles?: readonly string[];
  /**
   * Models outside the catalog, routed as named (no branches): a user's own ONNX or Triton model. The
   * manager checks each is there (the file, or READY on the server) and reads its contract before the run.
   */
  models?(settings: Record<string, unknown> | undefined, profile: Profile): ComponentModel[];
  /** Started when a run starts, while ffmpeg decodes (e.g. reading a vocabulary); failures are reported where needed. */
  preload?(profile: Profile): void;
  /** The contract a routed model is called with, when not the catalog's ensemble (and its output format). */
  contract?(
    model: CatalogModel,
    routed: ResolvedModel,
    profile: Profile,
    backend: "triton" | "embedded",
  ): { contract: ModelContract; format: string | null; callName?: string; maxInFlight?: number };
  /** The session's analyser, or undefined when routing gave it no model. */
  open(setup: ComponentSetup): Promise<Analyzer | undefined>;
}

/** One component's work in one session. */
export interface Analyzer<R = unknown> {
  /** The Component's name and key. */
  readonly name: string;
  readonly key: string;
  /**
   * Needs the previous frame (flow pairs): a resumed run feeds it the frame before its first new one
   * again. analyze() runs synchronously up to its first await in frame order, which is when it may pair.
   */
  readonly pairs?: boolean;
  /** Called once before the first frame (e.g. embedding prompts). */
  prepare?(clock: StageClock, signal?: AbortSignal): Promise<void>;
  /** The frame's result; undefined leaves no entry in the FrameResult. */
  analyze(ctx: FrameContext, signal?: AbortSignal): Promise<R | undefined>;
  /** Runs on results in frame order (tracking); `size` is where the results' boxes are. */
  inOrder?(result: R, size: { width: number; height: number }): R;
  /** The state inOrder() carries from frame to frame, for a run's commit (JSON), and its restore on resume. */
  state?(): unknown;
  restore?(state: unknown): void;
  /** Opens the artifact a run writes (files[0] of its Component). */
  artifact?(setup: ArtifactSetup): Promise<ArtifactSink>;
  /** Buffers of a written result the backend may reuse. */
  buffers?(result: R): ArrayBufferView[];
  /** Extra files made from the finished artifact. */
  finishRun?(sink: ArtifactSink, end: RunEnd): Promise<Array<{ record: ArtifactRecord; file: string }>>;
  /** Optional drawing hook for renderers: the result's marks on an RGB picture of the frame. */
  draw?(result: R, picture: { width: number; height: number; data: Uint8Array }): void;
}
