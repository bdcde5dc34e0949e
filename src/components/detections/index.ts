import type { ByteTrackState } from "../../detections/byte-track.js";
import type { Detections } from "../../detections/detections.js";
import { JPEG_INPUT, TIER_SETTINGS, trackNames, yoloEnd2EndOutputs, type BatchingTier } from "../../catalog/index.js";
import type { CatalogModel } from "../../catalog/types.js";
import { classNamesFor, configClassNames, parseClassNames, readOnnxMetadata, yoloClassNames } from "../../detections/class-names.js";
import type { ModelContract } from "../../backend/backend.js";
import type { Profile } from "../../profiles/schema.js";
import type { ResolvedModel } from "../../routing/index.js";
import { VideoAnalysisError } from "../../errors.js";
import type { ArtifactSink } from "../../pipeline/artifact.js";
import type { Analyzer, ArtifactSetup, Component, ComponentSetup, FrameContext, RunEnd } from "../../pipeline/component.js";
import { DetectionsArtifact, MOT_FILE, writeMotArtifact } from "./artifact.js";
import { DetectionsComponent, DetectionTracker } from "./detections.js";
import { ownYoloLayout, type YoloLayout } from "./layout.js";

declare module "../../pipeline/pipeline.js" {
  interface ComponentResults {
    /** core_object_detections, tracked when the profile's tracker is enabled. */
    detections?: Detections;
  }
}

/** core_object_detections: YOLO per frame, ByteTrack in frame order, detections.npz (and mot.txt with output.mot). */
export class DetectionsAnalyzer implements Analyzer<Detections> {
  readonly name = "core_object_detections";
  readonly key = "detections";
  constructor(
    readonly component: DetectionsComponent,
    readonly tracker: DetectionTracker,
  ) {}

  analyze(ctx: FrameContext, signal?: AbortSignal): Promise<Detections> {
    return this.component.analyze(ctx, signal);
  }

  inOrder(d: Detections, size: { width: number; height: number }): Detections {
    return this.tracker.update(d, size.width, size.height);
  }

  state(): ByteTrackState | null {
    return this.tracker.state();
  }

  restore(s: unknown): void {
    this.tracker.restore((s ?? null) as ByteTrackState | null);
  }

  artifact(a: ArtifactSetup): Promise<DetectionsArtifact> {
    return DetectionsArtifact.create(a.runDir, a.sourceSize, this.component.classNames, a.options);
  }

  async finishRun(sink: ArtifactSink, end: RunEnd) {
    if (!end.profile.output.mot) return [];
    return [{ record: await writeMotArtifact(end.runDir, sink as DetectionsArtifact), file: MOT_FILE }];
  }
}

const SLOT = "core_object_detections";

export const detections: Component = {
  name: "core_object_detections",
  key: "detections",
  slots: [SLOT],
  files: ["core_object_detections/detections.npz"],
  optionalFiles: [MOT_FILE],
  contract(cm, r, profile, backend) {
    const det = profile.components.core_object_detections!;
    if (det.input === "jpeg") return trackD(r, cm, profile, backend, det.tier);
    const format = det.output_format ?? "raw";
    if (format !== "end2end") return { contract: cm.ensemble, format };
    if (backend !== "triton") {
      throw new VideoAnalysisError(
        "UNIMPLEMENTED",
        "components.core_object_detections.output_format end2end needs a Triton End2End engine (NMS on the server); the embedded backend runs raw YOLO exports: set output_format: raw",
        { model: cm.name },
      );
    }
    return { contract: { inputs: cm.ensemble.inputs, outputs: yoloEnd2EndOutputs() }, format };
  },
  models(settings, profile) {
    // A model of the user's own (settings.model): called as named, its layout and names read from it in open().
    const model = (settings as { model?: string } | undefined)?.model;
    if (!model) return [];
    return [profile.backend.embedded ? { slot: SLOT, name: SLOT, file: model, family: "yolo" } : { slot: SLOT, name: model, family: "yolo" }];
  },
  async open(s: ComponentSetup) {
    const m = s.model(SLOT);
    if (!m) return undefined;
    const d = s.profile.components.core_object_detections!;
    const file = s.modelFile(SLOT);
    let layout: YoloLayout;
    if (m.catalog) {
      const out = m.contract.outputs;
      const raw = d.output_format === "raw" && out[0]?.shape.length === 3 && out[0].shape[1]! > 4 ? out[0].shape[1]! - 4 : undefined;
      layout = { size: m.inputSize, input: "pixels", format: d.output_format, outputs: out.map((o) => o.name), classes: raw };
    } else {
      const imgsz = file ? Number(/\d+/.exec(onnxMetadata(file)["imgsz"] ?? "")?.[0]) || undefined : undefined;
      layout = ownYoloLayout(m.contract, { key: `components.${SLOT}.model`, model: m.callName, file, imgsz });
      m.outputFormat = layout.format;
    }
    // Class names from the model: its Triton config (`parameters { key: "names" }`), or its ONNX metadata
    // (an embedded .onnx file); else COCO's for 80 classes.
    const served = await configClassNames(m.backend, m.callName);
    const count = layout.classes ?? served?.length ?? modelNames(file)?.length ?? 80;
    const names = served ? classNamesFor(served, count) : yoloClassNames(file, count);
    m.classNames = names;
    const component = new DetectionsComponent(m, d.detection, layout, names, d.input === "jpeg" ? d.jpeg_quality : undefined);
    return new DetectionsAnalyzer(component, new DetectionTracker(d.tracker, s.fps));
  },
};

/**
 * Track D: JPEG bytes to `<server model>_gpu_e2e<tier suffix>` (batched: one image per request, the
 * server's dynamic batcher groups them), End2End answers. The client keeps up to the tier's batch (at
 * most 32) in flight unless concurrency.per_model names the ensemble.
 */
function trackD(r: ResolvedModel, cm: CatalogModel, profile: Profile, backend: "triton" | "embedded", tier: BatchingTier) {
  const fmt = profile.components.core_object_detections?.output_format;
  if (backend !== "triton" || fmt !== "end2end") {
    throw new VideoAnalysisError(
      "INVALID_ARGUMENT",
      "components.core_object_detections.input jpeg sends JPEG bytes to a Triton track D ensemble (DALI + End2End): it needs backend triton and output_format end2end",
      { model: r.model },
    );
  }
  const callName = trackNames(r.server_model, cm.inputSize!, tier).trackD;
  const contract: ModelContract = {
    inputs: [{ ...JPEG_INPUT, shape: [-1, -1] }],
    outputs: yoloEnd2EndOutputs().map((t) => ({ ...t, shape: [-1, ...t.shape] })),
  };
  return { contract, format: "end2end", callName, maxInFlight: profile.concurrency.per_model[callName] ?? Math.min(32, TIER_SETTINGS[tier].maxBatchSize) };
}

/** An ONNX file's metadata, {} when unreadable (its names and imgsz are conveniences, the contract decides). */
function onnxMetadata(file: string): Record<string, string> {
  try {
    return readOnnxMetadata(file);
  } catch {
    return {};
  }
}

/** The class names an ONNX file's metadata lists (Ultralytics' `names`), undefined without a file or names. */
function modelNames(file: string | undefined): string[] | undefined {
  const text = file ? onnxMetadata(file)["names"] : undefined;
  return text ? parseClassNames(text) : undefined;
}
