import type { FittedFrame } from "./frame.js";
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

