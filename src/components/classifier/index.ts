import { readFileSync } from "node:fs";
import { z } from "zod";
import type { Normalization, ResizeMode } from "../../catalog/types.js";
import { modelClassNames } from "../../detections/class-names.js";
import { VideoAnalysisError } from "../../errors.js";
import type { Analyzer, ArtifactSetup, Component, ComponentSetup, FrameContext } from "../../pipeline/component.js";
import type { ModelHandle } from "../../pipeline/model.js";
import { normalizeNhwcToNchw } from "../../preprocess/normalize.js";
import { tensor, toFloat32 } from "../../tensor.js";
import { softmaxRows } from "../softmax.js";
import { openTopK, topKIndices, type ClassScore } from "../top-k.js";

/**
 * image_classifier: a generic family for any ImageNet-style ONNX classifier (one image in, one row of class
 * scores out), named in a profile under a name of the user's:
 *
 *   components:
 *     my_classes: { family: image_classifier, model: models/resnet50.onnx, labels: models/imagenet.txt, top_k: 5 }
 *
 * Each analysed frame is fitted to the model's input (resize mode and size from the settings and the model),
 * normalised with mean/std into FP32 NCHW (or sent as UINT8 NHWC pixels when that is what the model takes:
 * a Triton ensemble that preprocesses itself), and its top_k classes go to `<name>/classes.npz` (the top-k
 * artifact of ../top-k.ts). Labels come from the labels file, else the model's `names` metadata, else
 * "class<i>". It is also the worked example of a family: its Component, Analyzer and artifact are this file.
 */
const settingsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  family: z.literal("image_classifier"),
  /** The .onnx file (embedded backend) or the server's model name (Triton). */
  model: z.string().min(1),
  /** One label per line, line i = class i. */
  labels: z.string().min(1).optional(),
  top_k: z.int().min(1).default(5),
  /** How a frame is fitted to the S x S input (torchvision's ImageNet eval: center_crop_bicubic or center_crop). */
  resize: z.enum(["center_crop", "center_crop_bicubic", "stretch", "stretch_crop_bilinear", "letterbox"]).default("center_crop"),
  /** S, for a model whose input size is dynamic. */
  input_size: z.int().min(1).optional(),
  mean: z.tuple([z.number(), z.number(), z.number()]).default([0.485, 0.456, 0.406]),
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]).default([0.229, 0.224, 0.225]),
  /** What the model's output holds: logits (a softmax is taken) or probabilities already. */
  scores: z.enum(["logits", "probabilities"]).default("logits"),
});

export type ImageClassifierSettings = z.output<typeof settingsSchema>;

/** One frame's classes, most probable first. */
export interface ClassifierResult {
  top: Array<ClassScore & { label: string }>;
}

function parseSettings(name: string, raw: unknown): ImageClassifierSettings {
  const r = settingsSchema.safeParse(raw);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `components.${[name, ...i.path.map(String)].join(".")}: ${i.message}`);
  throw new VideoAnalysisError("PROFILE_INVALID", `image_classifier ${name}: ${issues.join("; ")}`, { details: { component: name, issues } });
}

function readLabels(file: string, name: string): string[] {
  try {
    return readFileSync(file, "utf8").split(/\r?\n/).map((l) => l.trim()).filter((l, i, all) => l !== "" || i < all.length - 1);
  } catch (e) {
    throw new VideoAnalysisError("NOT_FOUND", `components.${name}.labels: cannot read ${file} (${(e as Error).message}); give a text file with one label per line`, { details: { file } });
  }
}

/** The image_classifier family: a Component named `name` from its profile settings. */
export function imageClassifier(name: string, raw: unknown): Component {
  const s = parseSettings(name, raw);
  const file = `${name}/classes.npz`;
  return {
    name,
    key: name,
    slots: [name],
    files: [file],
    models: (_settings, profile) =>
      profile.backend.embedded
        ? [{ slot: name, name, file: s.model, family: "image_classifier" }]
        : [{ slot: name, name: s.model, family: "image_classifier" }],
    async open(setup: ComponentSetup) {
      const m = setup.model(name);
      return m ? new ClassifierAnalyzer(name, file, m, s, setup.modelFile(name)) : undefined;
    },
  };
}

class ClassifierAnalyzer implements Analyzer<ClassifierResult> {
  readonly key: string;
  private readonly size: number;
  private readonly nhwc: boolean;
  private readonly classes: number;
  private readonly labels: readonly string[];
  private readonly norm: Normalization;

  constructor(
    readonly name: string,
    private readonly file: string,
    private readonly model: ModelHandle,
    private readonly s: ImageClassifierSettings,
    modelFile: string | undefined,
  ) {
    this.key = name;
    const input = model.contract.inputs[0];
    const output = model.contract.outputs[0];
    const bad = (why: string) =>
      new VideoAnalysisError("CONTRACT_MISMATCH", `components.${name}: ${model.callName} ${why}; image_classifier takes one image (FP32 [N,3,S,S] or UINT8 [N,S,S,3]) and gives one row of class scores`, { model: model.callName });
    if (!input || !output || input.shape.length !== 4) throw bad(`has input ${input ? `${input.name} ${input.datatype} [${input.shape}]` : "none"}`);
    this.nhwc = input.datatype === "UINT8" && input.shape[3] === 3;
    if (!this.nhwc && !(input.datatype === "FP32" && input.shape[1] === 3)) throw bad(`has input ${input.name} ${input.datatype} [${input.shape}]`);
    const side = this.nhwc ? input.shape[1]! : input.shape[2]!;
    const size = side > 0 ? side : s.input_size;
    if (!size) throw bad(`has a dynamic input size [${input.shape}]: set components.${name}.input_size`);
    this.size = size;
    const c = output.shape.at(-1)!;
    if (!(c > 0)) throw bad(`has output ${output.name} [${output.shape}] with no fixed class count`);
    this.classes = c;
    this.labels = s.labels ? readLabels(s.labels, name) : modelClassNames(modelFile, c);
    if (this.labels.length !== c) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `components.${name}.labels: ${s.labels} has ${this.labels.length} labels, ${s.model} gives ${c} classes`, { model: model.callName });
    }
    this.norm = { divisor: 255, mean: s.mean, std: s.std, description: `x/255, mean ${s.mean.join("/")}, std ${s.std.join("/")}` };
  }

  async analyze(ctx: FrameContext, signal?: AbortSignal): Promise<ClassifierResult> {
    const S = this.size;
    const spec = this.model.contract.inputs[0]!;
    const input = await ctx.clock.timeAsync("preprocess", async () => {
      const img = (await ctx.fitted.get(this.s.resize as ResizeMode, S)).image;
      if (this.nhwc) return tensor(spec.name, "UINT8", [1, S, S, 3], img.data);
      return tensor(spec.name, "FP32", [1, 3, S, S], normalizeNhwcToNchw(img.data, [1, S, S, 3], this.norm));
    });
    const out = await this.model.infer([input], signal, ctx.clock);
    return ctx.clock.time("postprocess", () => {
      const values = toFloat32(out[this.model.contract.outputs[0]!.name]!).subarray(0, this.classes);
      const probs = this.s.scores === "logits" ? softmaxRows(values, this.classes) : values;
      return { top: topKIndices(probs, this.s.top_k).map((index) => ({ index, label: this.labels[index]!, score: probs[index]! })) };
    });
  }

  artifact(a: ArtifactSetup) {
    return openTopK(a.runDir, a.options, { component: this.name, key: this.key, file: this.file }, this.s.top_k, this.labels);
  }
}
