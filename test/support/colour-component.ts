// A component of a user's own, defined only here (tests load it as a profile's `module`, and pass it in
// code): the mean colour of each frame, from a tiny ONNX model the tests build (ReduceMean over H and W of
// FP32 [1,3,8,8]), written with the SDK's public building blocks. It imports the package's public entry only.
import { FrameRows, NORMALIZATIONS, normalizeNhwcToNchw, tensor, toFloat32, type Analyzer, type ArtifactSetup, type Component, type FrameContext, type ModelHandle } from "../../src/index.js";

export interface ColourSettings {
  /** The .onnx file (embedded backend) or the server's model name. */
  model: string;
}

const SIDE = 8;

class ColourAnalyzer implements Analyzer<Float32Array> {
  constructor(
    readonly name: string,
    readonly key: string,
    private readonly model: ModelHandle,
  ) {}

  async analyze(ctx: FrameContext, signal?: AbortSignal): Promise<Float32Array> {
    const img = (await ctx.fitted.get("stretch", SIDE)).image;
    const x = tensor(this.model.contract.inputs[0]!.name, "FP32", [1, 3, SIDE, SIDE], normalizeNhwcToNchw(img.data, [1, SIDE, SIDE, 3], NORMALIZATIONS.unit));
    const out = await this.model.infer([x], signal, ctx.clock);
    return toFloat32(out[this.model.contract.outputs[0]!.name]!).slice(0, 3);
  }

  artifact(a: ArtifactSetup) {
    return FrameRows.open<Float32Array>(a.runDir, a.options, {
      component: this.name,
      key: this.key,
      file: `${this.name}/mean.npz`,
      columns: [{ name: "mean_rgb", dtype: "float32", width: 3 }],
      row: (r) => [r],
    });
  }
}

/** The component, under the name the profile gives it (a module's default export may be such a function). */
export default function colour(name: string, settings: unknown): Component {
  const model = (settings as Partial<ColourSettings> | undefined)?.model;
  if (typeof model !== "string") throw new TypeError(`components.${name}.model: expected the colour model's file or name`);
  return {
    name,
    key: name,
    slots: [name],
    files: [`${name}/mean.npz`],
    models: (_s, profile) => [profile.backend.embedded ? { slot: name, name: `${name}_mean`, file: model } : { slot: name, name: model }],
    async open(setup) {
      const m = setup.model(name);
      return m ? new ColourAnalyzer(name, name, m) : undefined;
    },
  };
}
