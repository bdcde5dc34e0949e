import type { Analyzer, ArtifactSetup, Component, ComponentSetup, FrameContext } from "../../pipeline/component.js";
import { SceneArtifact } from "./artifact.js";
import { SceneComponent, type SceneResult } from "./scene.js";

declare module "../../pipeline/pipeline.js" {
  interface ComponentResults {
    /** scene (Places365). */
    scene?: SceneResult;
  }
}

/** scene: Places365's top_k categories per frame, in places.npz. */
export class SceneAnalyzer implements Analyzer<SceneResult> {
  readonly name = "scene";
  readonly key = "scene";
  constructor(readonly component: SceneComponent) {}

  analyze(ctx: FrameContext, signal?: AbortSignal): Promise<SceneResult> {
    return this.component.analyze(ctx, signal);
  }

  artifact(a: ArtifactSetup): Promise<SceneArtifact> {
    return SceneArtifact.create(a.runDir, this.component.topK, undefined, a.options);
  }
}

export const scene: Component = {
  name: "scene",
  key: "scene",
  slots: ["scene"],
  files: ["scene/places.npz"],
  async open(s: ComponentSetup) {
    const m = s.model("scene");
    return m ? new SceneAnalyzer(new SceneComponent(m, s.profile.components.scene!.top_k)) : undefined;
  },
};
