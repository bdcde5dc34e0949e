import type { Analyzer, ArtifactSetup, Component, ComponentSetup, FrameContext } from "../../pipeline/component.js";
import { openTopK } from "../top-k.js";
import { PLACES365_LABELS } from "./labels.js";
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

  /** scene/places.npz: the top-k artifact (../top-k.ts) over Places365's labels ("apartment_building/outdoor"). */
  artifact(a: ArtifactSetup) {
    return openTopK(a.runDir, a.options, { component: "scene", key: "scene", file: "scene/places.npz" }, this.component.topK, PLACES365_LABELS.map((l) => l.label));
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
