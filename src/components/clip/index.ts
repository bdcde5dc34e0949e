import { catalogModel, clipText } from "../../catalog/index.js";
import { VideoAnalysisError } from "../../errors.js";
import type { ModelHandle } from "../../pipeline/model.js";
import type { StageClock } from "../../pipeline/stats.js";
import { serverModelName, type Profile } from "../../profiles/index.js";
import type { ResolvedModel } from "../../routing/index.js";
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
/** What ModelManager.clipText() embeds prompts with: the profile's text model, outside any run. */
export interface ClipTextEmbedder {
  embedText(prompt: string, clock: StageClock, signal?: AbortSignal): Promise<Float32Array>;
}

/** The text model's session for clipText(): `ready` says what the backend has, `handle` makes the model's handle. */
export async function openClipText(
  profile: Profile,
  ready: (serverName: string) => boolean,
  backendKind: string,
  handle: (r: ResolvedModel, slot: string) => ModelHandle,
): Promise<ClipTextEmbedder> {
  const settings = profile.components.core_clip;
  if (!settings?.enabled) throw new VideoAnalysisError("FAILED_PRECONDITION", `clipText() needs core_clip, which profile ${profile.name} does not enable; enable components.core_clip`);
  const m = catalogModel(clipText, undefined, settings.architecture);
  const server = serverModelName(profile, m.name);
  if (!ready(server)) throw new VideoAnalysisError("MODEL_NOT_READY", `${server} is not available on the ${backendKind} backend`, { model: server });
  const r: ResolvedModel = {
    component: "core_clip", role: "text", family: clipText.id, architecture: m.architecture.id, model: m.name, server_model: server,
    size: null, input_size: null, wanted: m.name, reason: "unbranched", fallbacks: [], ready: true, letterbox: null,
  };
  return new ClipComponent(undefined, handle(r, "core_clip.text"), await clipTokenizer(settings.bpe_path), settings.prompts, settings.top_k);
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
