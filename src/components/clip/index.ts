import type { StageClock } from "../../pipeline/stats.js";
import type { Analyzer, ArtifactSetup, Component, ComponentSetup, FrameContext } from "../../pipeline/component.js";
import type { ArtifactSink } from "../../pipeline/artifact.js";
import { ClipArtifact } from "./artifact.js";
import { ClipComponent, clipTokenizer, type ClipFrameResult } from "./clip.js";

declare module "../../pipeline/pipeline.js" {
  interface ComponentResults {
    /** core_clip. */
    clip?: ClipFrameResult;
  }
}

/** core_clip: image embeddings and prompt similarities per frame, in embeddings.npz (with an image model). */
export class ClipAnalyzer implements Analyzer<ClipFrameResult> {
  readonly name = "core_clip";
  readonly key = "clip";
  constructor(readonly component: ClipComponent) {
    const image = component.imageModel;
    if (image) {
      this.artifact = (a) => {
        const dim = image.contract.outputs[0]!.shape.at(-1)!;
        return ClipArtifact.create(a.runDir, dim, component.prompts, component.textEmbeddings ?? new Float32Array(0), component.topK, a.options);
      };
    }
  }

  prepare(clock: StageClock, signal?: AbortSignal): Promise<void> {
    return this.component.prepare(clock, signal);
  }

  analyze(ctx: FrameContext, signal?: AbortSignal): Promise<ClipFrameResult> {
    return this.component.analyze(ctx, signal);
  }

  /** Only with an image model: without one there is nothing per frame to write. */
  readonly artifact?: (a: ArtifactSetup) => Promise<ArtifactSink>;
}
export const clip: Component = {
  name: "core_clip",
  key: "clip",
  slots: ["core_clip.image", "core_clip.text"],
  files: ["core_clip/embeddings.npz"],
  preload(profile) {
    const c = profile.components.core_clip;
    if (c?.enabled) clipTokenizer(c.bpe_path).catch(() => undefined);
  },
  async open(s: ComponentSetup) {
    const image = s.model("core_clip.image");
    const text = s.model("core_clip.text");
    if (!image && !text) return undefined;
    const c = s.profile.components.core_clip!;
    const tokenizer = text ? await clipTokenizer(c.bpe_path) : undefined;
    return new ClipAnalyzer(new ClipComponent(image, text, tokenizer, c.prompts, c.top_k));
  },
};
