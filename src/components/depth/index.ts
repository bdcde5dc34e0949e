import type { Analyzer, ArtifactSetup, Component, ComponentSetup, FrameContext } from "../../pipeline/component.js";
import { DepthArtifact } from "./artifact.js";
import { DepthComponent, type DepthMap } from "./depth.js";

declare module "../../pipeline/pipeline.js" {
  interface ComponentResults {
    /** core_depth_midas. */
    depth?: DepthMap;
  }
}

/** core_depth_midas: one MiDaS depth map per frame, streamed into depth.npz. */
export class DepthAnalyzer implements Analyzer<DepthMap> {
  readonly name = "core_depth_midas";
  readonly key = "depth";
  constructor(readonly component: DepthComponent) {}

  analyze(ctx: FrameContext, signal?: AbortSignal): Promise<DepthMap> {
    return this.component.analyze(ctx, signal);
  }

  artifact(a: ArtifactSetup): Promise<DepthArtifact> {
    return DepthArtifact.create(a.runDir, this.component.size, a.frameSize, { ...a.maps, ...a.options });
  }

  buffers(r: DepthMap): ArrayBufferView[] {
    return [r.data];
  }
}

export const depth: Component = {
  name: "core_depth_midas",
  key: "depth",
  slots: ["core_depth_midas"],
  files: ["core_depth_midas/depth.npz"],
  async open(s: ComponentSetup) {
    const m = s.model("core_depth_midas");
    return m ? new DepthAnalyzer(new DepthComponent(m)) : undefined;
  },
};
