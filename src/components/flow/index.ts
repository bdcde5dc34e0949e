import type { Analyzer, ArtifactSetup, Component, ComponentSetup, FrameContext } from "../../pipeline/component.js";
import { checkFrame, FittedFrame, type RgbFrame } from "../../pipeline/frame.js";
import { StageClock } from "../../pipeline/stats.js";
import { FlowArtifact } from "./artifact.js";
import { FlowComponent, type FlowField } from "./flow.js";

declare module "../../pipeline/pipeline.js" {
  interface ComponentResults {
    /** core_optical_flow: from the previous frame to this one (absent on the first frame and after a timestamp break). */
    flow?: FlowField;
  }
}

/** core_optical_flow: RAFT on consecutive frames, streamed into flow.npz. */
export class FlowAnalyzer implements Analyzer<FlowField> {
  readonly name = "core_optical_flow";
  readonly key = "flow";
  readonly pairs = true;
  constructor(readonly component: FlowComponent) {}

  analyze(ctx: FrameContext, signal?: AbortSignal): Promise<FlowField | undefined> {
    return this.component.analyze(ctx, signal);
  }

  artifact(a: ArtifactSetup): Promise<FlowArtifact> {
    return FlowArtifact.create(a.runDir, this.component.size, a.frameSize, { ...a.maps, ...a.options });
  }

  buffers(r: FlowField): ArrayBufferView[] {
    return [r.data];
  }

  /** RAFT from frame `a` to frame `b` (same size), outside any run: ModelManager.flow(). */
  async between(a: RgbFrame, b: RgbFrame, signal?: AbortSignal): Promise<FlowField> {
    const ia = checkFrame(a, "frame a");
    const ib = checkFrame(b, "frame b");
    if (ia.width !== ib.width || ia.height !== ib.height) throw new RangeError(`flow: the frames differ in size (${ia.width}x${ia.height} and ${ib.width}x${ib.height})`);
    const f = this.component;
    const data = await f.pair(new FittedFrame(ia), new FittedFrame(ib), new StageClock(), signal);
    return {
      fromIndex: a.index ?? 0,
      toIndex: b.index ?? 1,
      fromSourceIndex: a.sourceIndex ?? a.index ?? 0,
      toSourceIndex: b.sourceIndex ?? b.index ?? 1,
      fromTimestamp: a.timestamp ?? 0,
      toTimestamp: b.timestamp ?? 0,
      width: f.size,
      height: f.size,
      data,
    };
  }
}

/** ModelManager.flow(): the flow between two frames with a session's flow analyser. */
export function flowBetween(analyzer: Analyzer, a: RgbFrame, b: RgbFrame, signal?: AbortSignal): Promise<FlowField> {
  return (analyzer as FlowAnalyzer).between(a, b, signal);
}

export const flow: Component = {
  name: "core_optical_flow",
  key: "flow",
  slots: ["core_optical_flow"],
  files: ["core_optical_flow/flow.npz"],
  async open(s: ComponentSetup) {
    const m = s.model("core_optical_flow");
    return m ? new FlowAnalyzer(new FlowComponent(m)) : undefined;
  },
};
