import type { Analyzer, ArtifactSetup, Component, ComponentSetup, FrameContext } from "../../pipeline/component.js";
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
