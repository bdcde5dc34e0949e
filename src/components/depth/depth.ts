import type { FrameContext } from "../../pipeline/component.js";
import type { ModelHandle } from "../../pipeline/model.js";
import { tensor, toFloat32 } from "../../tensor.js";

/**
 * One depth map: MiDaS/DPT relative inverse depth (larger is nearer; no unit, no fixed scale), at the
 * branch's input size S x S, row-major. The analysis frame was stretched to S x S, so resizing the map
 * to the frame's size puts every value over its pixel.
 */
export interface DepthMap {
  width: number;
  height: number;
  data: Float32Array;
}

/**
 * core_depth_midas: the frame resized to the branch size (the family's `stretch`), one call, the
 * `[1, S, S]` output as a map. No copy of the output: `data` is the backend's buffer.
 */
export class DepthComponent {
  readonly size: number;

  constructor(readonly model: ModelHandle) {
    this.size = model.inputSize;
  }

  async analyze(ctx: FrameContext, signal?: AbortSignal): Promise<DepthMap> {
    const s = this.size;
    const spec = this.model.contract.inputs[0]!;
    const input = await ctx.clock.timeAsync("preprocess", async () => {
      const img = (await ctx.fitted.get(this.model.catalogModel.family.resize ?? "stretch", s)).image;
      return tensor(spec.name, "UINT8", [1, s, s, 3], img.data);
    });
    const out = await this.model.infer([input], signal, ctx.clock, ctx.checksums);
    return ctx.clock.time("postprocess", () => {
      const t = out[this.model.contract.outputs[0]!.name]!;
      return { width: s, height: s, data: toFloat32(t) };
    });
  }
}
