import type { FrameContext } from "../../pipeline/component.js";
import type { ModelHandle } from "../../pipeline/model.js";
import type { FittedFrame } from "../../pipeline/frame.js";
import type { StageClock } from "../../pipeline/stats.js";
import { tensor, toFloat32, type Tensor } from "../../tensor.js";

/**
 * Optical flow from one analysis frame to the next: `data` holds 2 x S x S values, the dx plane then
 * the dy plane, in pixels of the S x S input (multiply dx by frameWidth / S and dy by frameHeight / S
 * for pixels of the analysis frame).
 */
export interface FlowField {
  fromIndex: number;
  toIndex: number;
  /** The two frames' numbers in the video. */
  fromSourceIndex: number;
  toSourceIndex: number;
  fromTimestamp: number;
  toTimestamp: number;
  width: number;
  height: number;
  data: Float32Array;
}

/**
 * core_optical_flow: RAFT on the pair (t, t+1) of consecutive analysis frames, each resized to the branch
 * size once. The component keeps the previous frame's input, so frames must reach `analyze` in order
 * (the pipeline guarantees it: the part of `analyze` before its first await runs in frame order). The
 * first frame has no pair and gives undefined; frame t+1 gives the flow from t to t+1. A frame after a
 * timestamp break (FrameContext.afterBreak: the video's time restarted, often a cut between concatenated
 * segments) is not paired with the frame before it either: that pair spans an unknown time and maybe
 * two different shots, so it gives undefined and the flow artifact has no row for it.
 */
export class FlowComponent {
  readonly size: number;
  private previous: { index: number; sourceIndex: number; timestamp: number; input: Promise<Tensor> } | undefined;

  constructor(readonly model: ModelHandle) {
    this.size = model.inputSize;
  }

  /** Forgets the previous frame (a new video or stream starts). */
  reset(): void {
    this.previous = undefined;
  }

  /** The flow from frame `a` to frame `b` (any size; each is resized to the branch size): 2 x S x S values. */
  async pair(a: FittedFrame, b: FittedFrame, clock: StageClock, signal?: AbortSignal): Promise<Float32Array> {
    const [in0, in1] = this.model.contract.inputs;
    const s = this.size;
    const mode = this.model.catalogModel.family.resize ?? "stretch";
    const inputs = await clock.timeAsync("preprocess", async () => {
      const [fa, fb] = await Promise.all([a.get(mode, s), b.get(mode, s)]);
      return [tensor(in0!.name, "UINT8", [1, s, s, 3], fa.image.data), tensor(in1!.name, "UINT8", [1, s, s, 3], fb.image.data)];
    });
    const out = await this.model.infer(inputs, signal, clock);
    return toFloat32(out[this.model.contract.outputs[0]!.name]!);
  }

  async analyze(ctx: FrameContext, signal?: AbortSignal): Promise<FlowField | undefined> {
    const s = this.size;
    const [in0, in1] = this.model.contract.inputs;
    const input = ctx.clock.timeAsync("preprocess", async () => {
      const img = (await ctx.fitted.get(this.model.catalogModel.family.resize ?? "stretch", s)).image;
      return tensor(in1!.name, "UINT8", [1, s, s, 3], img.data);
    });
    // Set before the first await, so that frames pair in the order they arrive.
    const prev = ctx.afterBreak ? undefined : this.previous;
    this.previous = { index: ctx.index, sourceIndex: ctx.sourceIndex, timestamp: ctx.timestamp, input };
    if (!prev) {
      await input;
      return undefined;
    }
    const [first, second] = await Promise.all([prev.input, input]);
    const out = await this.model.infer([{ ...first, name: in0!.name }, second], signal, ctx.clock, ctx.checksums);
    return ctx.clock.time("postprocess", () => ({
      fromIndex: prev.index,
      toIndex: ctx.index,
      fromSourceIndex: prev.sourceIndex,
      toSourceIndex: ctx.sourceIndex,
      fromTimestamp: prev.timestamp,
      toTimestamp: ctx.timestamp,
      width: s,
      height: s,
      data: toFloat32(out[this.model.contract.outputs[0]!.name]!),
    }));
  }
}
