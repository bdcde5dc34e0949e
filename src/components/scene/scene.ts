import type { FrameContext } from "../../pipeline/component.js";
import type { ModelHandle } from "../../pipeline/model.js";
import { tensor, toFloat32 } from "../../tensor.js";
import { PLACES365_LABELS, topK, type SceneLabel, type ScenePrediction } from "./labels.js";

/** What Places365 says about one frame: the top_k scene categories, most probable first. */
export interface SceneResult {
  top: ScenePrediction[];
}

/**
 * scene: ResNet50 Places365 on the frame resized on its shorter side and centre-cropped to the branch
 * size; the 365 logits become softmax probabilities, of which the profile's top_k are kept with their
 * names (labels.ts).
 */
export class SceneComponent {
  constructor(
    readonly model: ModelHandle,
    readonly topK: number,
    readonly labels: readonly SceneLabel[] = PLACES365_LABELS,
  ) {}

  async analyze(ctx: FrameContext, signal?: AbortSignal): Promise<SceneResult> {
    const s = this.model.inputSize;
    const spec = this.model.contract.inputs[0]!;
    const input = await ctx.clock.timeAsync("preprocess", async () => {
      const img = (await ctx.fitted.get(this.model.catalogModel.family.resize ?? "center_crop", s)).image;
      return tensor(spec.name, "UINT8", [1, s, s, 3], img.data);
    });
    const out = await this.model.infer([input], signal, ctx.clock);
    return ctx.clock.time("postprocess", () => ({
      top: topK(toFloat32(out[this.model.contract.outputs[0]!.name]!), this.topK, this.labels, this.model.callName),
    }));
  }
}
